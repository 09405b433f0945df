"""The packages depend one way: training uses zoo and edge; edge and zoo never import training; no import loops.

Read from the source with ``ast`` (imports inside functions count too), so a lazy import
cannot hide a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import run_without_tensorflow

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("zoo", "edge", "training")
TF_MODULES = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "tensorflow_datasets")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    return {_module_name(p, root): p for pkg in packages for p in (root / pkg).rglob("*.py")}


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


def graph(root: Path = REPO, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """module -> the project modules it imports (read from the source under ``root``)."""
    modules = _modules(root, packages)
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def find_cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The import loops of ``g`` (each as the path that closes it), by a depth-first walk."""
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
    return cycles


def test_edge_and_zoo_never_import_training():
    bad = [(m, d) for m, deps in graph().items() for d in deps
           if m.split(".")[0] in ("edge", "zoo") and d.split(".")[0] == "training"]
    assert not bad, f"imports against the one-way direction: {bad}"


def test_zoo_never_imports_edge():
    bad = [(m, d) for m, deps in graph().items() for d in deps if m.startswith("zoo") and d.startswith("edge")]
    assert not bad, f"zoo must not depend on the device runtime: {bad}"


def test_no_import_loops():
    assert not find_cycles(graph()), f"import loops: {find_cycles(graph())}"


def test_the_loop_finder_finds_a_loop_hidden_in_a_function(tmp_path):
    """The same graph reading and loop finder as above, on a planted package: a -> b at module level, b -> a
    inside a function (a lazy import hides no dependency), and a relative import; the loop is found."""
    pkg = tmp_path / "pkgx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkgx import b\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    return a\n")
    (pkg / "c.py").write_text("import pkgx.b\n")
    g = graph(tmp_path, ("pkgx",))
    assert g["pkgx.a"] == {"pkgx.b"} and g["pkgx.b"] == {"pkgx.a"} and g["pkgx.c"] == {"pkgx.b"}
    assert find_cycles(g) == [["pkgx.a", "pkgx.b", "pkgx.a"]]


def test_edge_imports_no_tensorflow_at_all():
    """Every edge module, read as source: no TensorFlow import anywhere (not even lazily)."""
    for path in (REPO / "edge").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.split(".")[0] in TF_MODULES], f"{path.name} imports {names}"


@pytest.mark.parametrize("code", [
    "import edge, edge.cli, edge.detector, edge.bundle, edge.scoring, edge.latency, edge.micro, edge.inputs, "
    "edge.anomaly_map, edge.stream, edge.signing",
    "import zoo, zoo.errors, zoo.pretrained, training, training.cli; training.cli.build_parser()",
])
def test_runtime_and_cli_parser_load_without_tensorflow(code):
    """What a device imports (and building the CLI parser) pulls in no TensorFlow, Keras or scikit-learn module."""
    run_without_tensorflow(code)
