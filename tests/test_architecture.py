"""The packages depend one way: training uses zoo and edge; edge and zoo never import training; no import loops.

Read from the source with ``ast`` (imports inside functions count too), so a lazy import
cannot hide a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("zoo", "edge", "training")
TF_MODULES = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "tensorflow_datasets")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an import names (the longest known prefix), or None for third-party code."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # `from pkg import sub` imports the submodule pkg.sub when there is one.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        found |= {m for m in (_resolve(n, modules) for n in names) if m and m != module}
    return found


def graph() -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def test_edge_and_zoo_never_import_training():
    bad = [(m, d) for m, deps in graph().items() for d in deps
           if m.split(".")[0] in ("edge", "zoo") and d.split(".")[0] == "training"]
    assert not bad, f"imports against the one-way direction: {bad}"


def test_zoo_never_imports_edge():
    bad = [(m, d) for m, deps in graph().items() for d in deps if m.startswith("zoo") and d.startswith("edge")]
    assert not bad, f"zoo must not depend on the device runtime: {bad}"


def test_no_import_loops():
    g = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(g.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert not cycles, f"import loops: {cycles}"


def test_the_loop_detector_finds_a_loop(tmp_path):
    """The check above can fail: a planted loop is found."""
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    seen = []

    def visit(node, stack, state={}):  # noqa: B006 - a throwaway graph walk
        state[node] = 1
        for dep in g[node]:
            if state.get(dep) == 1:
                seen.append(stack + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    visit("a", ["a"])
    assert seen == [["a", "b", "c", "a"]]


def test_edge_imports_no_tensorflow_at_all():
    """Every edge module, read as source: no TensorFlow import anywhere (not even lazily)."""
    for path in (REPO / "edge").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.split(".")[0] in TF_MODULES], f"{path.name} imports {names}"


@pytest.mark.parametrize("code", [
    "import edge, edge.cli, edge.detector, edge.bundle, edge.scoring, edge.latency, edge.micro, edge.inputs",
    "import training, training.cli; training.cli.build_parser()",
])
def test_runtime_and_cli_parser_load_without_tensorflow(code):
    """What a device imports (and building the CLI parser) pulls in no TensorFlow module."""
    check = f"import sys; {code}; bad = [m for m in {TF_MODULES!r} if m in sys.modules]; assert not bad, bad"
    subprocess.run([sys.executable, "-c", check], cwd=REPO, check=True, timeout=120)
