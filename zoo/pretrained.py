"""The pretrained zoo beyond reading it: writing the manifest, merging shards, loading Keras models, the README table.

Reading the manifest and checking entries is ``zoo.catalog`` (what a device needs);
this module is the training side's: ``aezoo zoo build`` records entries here,
``zoo.load`` returns an entry's Keras model (the one function that imports TensorFlow).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable

from zoo.catalog import (MANIFEST, device_key, empty_manifest, entry_key, entry_problems, get_entry, read_manifest,
                         saved_models_dir, sort_key, verify_entry)
from zoo.errors import UserError
from zoo.files import write_json, write_text

TABLE_START = "<!-- zoo-table:start -->"
TABLE_END = "<!-- zoo-table:end -->"
# Build sessions kept in the manifest (the newest ones).
MAX_SESSIONS = 50


# -- the manifest ----------------------------------------------------------------------------------------------


def _write_manifest(manifest: dict, root: Path) -> None:
    entries = sorted(manifest["entries"].values(), key=sort_key)
    manifest["entries"] = {entry_key(r["model"], r["dataset"], r["normal_class"]): r for r in entries}
    manifest["total_entry_seconds"] = round(sum(r["timing"]["entry_seconds"] for r in entries), 1)
    write_json(root / MANIFEST, manifest)


def record_entry(record: dict, root: str | os.PathLike | None = None) -> Path:
    """Add or replace an entry (a ``training.pipeline.run_entry`` record) in the manifest; return its path."""
    root = saved_models_dir(root)
    manifest = read_manifest(root)
    record = {k: v for k, v in record.items() if k != "reports"}
    manifest["entries"][entry_key(record["model"], record["dataset"], record["normal_class"])] = record
    _write_manifest(manifest, root)
    return root / MANIFEST


def record_session(session: dict, root: str | os.PathLike | None = None) -> None:
    """Append a build session (what ran, how long) to the manifest."""
    import datetime

    root = saved_models_dir(root)
    manifest = read_manifest(root)
    session = {"finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **session}
    manifest["sessions"] = (manifest.get("sessions") or [])[-(MAX_SESSIONS - 1):] + [session]
    _write_manifest(manifest, root)


def load(model: str, dataset: str = "fashion_mnist", normal_class: int = 0, *,
         root: str | os.PathLike | None = None, verify: bool = True, keras_version: int = 2) -> Any:
    """Load a pretrained zoo entry's float Keras model (like ``keras.applications`` with ``weights=...``).

    Args:
        model: the variant name, e.g. "conv_ae".
        dataset: the dataset it was trained on. Defaults to "fashion_mnist".
        normal_class: the class it treats as normal. Defaults to 0.
        root: the saved_models folder. Defaults to ``$AEZOO_SAVED_MODELS`` or the repository's saved_models/.
        verify: check model.keras's sha256 against the manifest first. Defaults to True.
        keras_version: 2 (tf_keras) or 3: a Keras 3 model built from the same variant function with
            the entry's parameters, holding the same weights. Defaults to 2.

    Returns:
        The trained ``keras.Model`` (uncompiled). Its device detector: ``edge.Detector.from_zoo(...)``.

    Raises:
        UserError: unknown entry (listing the available ones), or a missing, truncated or
            altered file (naming it, with the expected and actual sha256 and how to restore it).
    """
    root = saved_models_dir(root)
    record = get_entry(model, dataset, normal_class, root=root)
    if verify:
        verify_entry(record, root, ("model.keras",))
    from zoo.registry import load_model, load_weights

    trained = load_model(root / record["path"] / "model.keras")
    if keras_version == 2:
        return trained
    from zoo.models import build

    params = record.get("hyperparameters", {}).get("model", {})
    return load_weights(build(model, keras_version=keras_version, **params), trained)


def merge(shards: Iterable[str | os.PathLike], into: str | os.PathLike) -> list[str]:
    """Combine the saved_models folders of a sharded build into ``into``; return the merged keys.

    Every shard's entries must verify and no key may come from two shards (nor already
    be in ``into``'s manifest): a conflict is refused before anything is copied. Entries
    are copied into a temporary folder first and moved into place together, then the
    manifest is written: a stop half-way (disk full, a kill) leaves no half-copied entry,
    and a rerun recognizes the entries an interrupted merge already moved (their files
    match the shard's record); any other folder in the way is refused, never replaced.
    """
    into = Path(into)
    if into.exists() and not into.is_dir():
        raise UserError(f"--into {into} is a file; expected a saved_models folder (new or existing). Nothing was merged.")
    target = read_manifest(into) if (into / MANIFEST).is_file() else empty_manifest()
    plan: dict[str, tuple[Path, dict]] = {}
    sessions = []
    for shard in map(Path, shards):
        if not (saved_models_dir(shard, must_exist=True) / MANIFEST).is_file():
            raise UserError(f"{shard} has no {MANIFEST}: not a zoo build's output")
        manifest = read_manifest(shard)
        for key, record in manifest["entries"].items():
            where = plan[key][0] if key in plan else into if key in target["entries"] else None
            if where is not None:
                raise UserError(f"entry {key} is in both {where} and {shard}: shards must not overlap. Nothing was merged.")
            verify_entry(record, shard)
            plan[key] = (shard, record)
        sessions += manifest.get("sessions", [])
    in_place = {key for key, (shard, record) in plan.items() if _already_merged(into, key, shard, record)}
    _move_in(into, {key: shard for key, (shard, _) in plan.items() if key not in in_place})
    for key, (_, record) in plan.items():
        target["entries"][key] = record
    target["sessions"] = (target.get("sessions") or []) + sessions
    try:
        _write_manifest(target, into)
    except OSError as exc:
        raise UserError(f"could not write {into / MANIFEST}: {exc}. The entries are in place; run the same merge again "
                        "once there is room (it recognizes them).") from None
    return sorted(plan)


def _already_merged(into: Path, key: str, shard: Path, record: dict) -> bool:
    """True when ``into/key`` holds exactly the shard's entry (an interrupted merge moved it); False when nothing is
    there; a UserError for anything else in the way."""
    dest = into / key
    if not dest.exists() and not dest.is_symlink():
        return False
    if dest.is_dir() and not entry_problems(record, into):
        return True
    raise UserError(f"{dest} exists, is not in {into / MANIFEST} and is not {shard}'s entry {key}: it is not the "
                    "zoo's to replace. Move it away or choose another --into. Nothing was merged.")


def _move_in(into: Path, sources: dict[str, Path]) -> None:
    """Copy each ``shard/key`` into a temporary folder of ``into``, then move them all into place."""
    import shutil
    import tempfile

    from zoo.files import pid_alive

    into.mkdir(parents=True, exist_ok=True)
    for left in into.glob(".merge-*"):  # the temporaries of merges that were killed
        pid = left.name.split("-")[1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(left, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".merge-{os.getpid()}-", dir=into))
    try:
        for key, shard in sorted(sources.items()):
            shutil.copytree(shard / key, tmp / key)
        for key in sorted(sources):
            (into / key).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / key, into / key)
    except OSError as exc:
        raise UserError(f"could not copy the entries into {into}: {exc}. The manifest is unchanged; run the same merge "
                        "again once there is room.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the README table --------------------------------------------------------------------------------------------


def format_auroc(record: dict, which: str) -> str:
    """An entry's AUROC of ``which`` ("int8", "int16x8", "float", "pca", "knn") with 4 digits, or "–"."""
    value = record["metrics"].get(which, {}).get("auroc")
    return "–" if value is None else f"{value:.4f}"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _row(name: str, aurocs: dict[int, float], classes: list[int], *extra: str) -> str:
    vals = list(aurocs.values())
    cells = [_fmt(aurocs.get(k)) for k in classes]
    return f"| {name} | " + " | ".join(cells) + f" | **{sum(vals) / len(vals):.3f}** | {min(vals):.3f} | " + " | ".join(extra) + " |"


BASELINE_ROWS = {"pca": "PCA (90% variance) | reconstruction error", "knn": "kNN (k=5) | distance",
                 "iforest": "IsolationForest (200 trees) | path length", "matrix_profile": "matrix profile | discord distance"}


def zoo_table(manifest: dict | None = None, *, dataset: str | None = None, root: str | os.PathLike | None = None) -> str:
    """Return the Markdown zoo table, one section per dataset (``dataset``: only that one): device AUROC per variant x
    class, mean, min, float mean, recall, size, latency; the baselines fitted in the same runs.

    Deterministic in the manifest (no dates), so a test can compare it with the README.
    """
    manifest = read_manifest(root) if manifest is None else manifest
    datasets = sorted({r.get("dataset") for r in manifest["entries"].values()}, key=lambda d: (d != "fashion_mnist", d))
    datasets = [dataset] if dataset is not None else datasets
    sections = [_dataset_table(manifest, d) for d in datasets]
    return "\n\n".join(sections) if sections else "_No pretrained entries yet: build them with `aezoo zoo build`._"


def _dataset_table(manifest: dict, dataset: str) -> str:
    records = [r for r in manifest["entries"].values() if r.get("dataset") == dataset]
    if not records:
        return f"_No pretrained {dataset} entries yet: build them with `aezoo zoo build --dataset {dataset}`._"
    classes = sorted({int(r["normal_class"]) for r in records})
    by_model: dict[str, dict[int, dict]] = {}
    for r in sorted(records, key=sort_key):
        by_model.setdefault(r["model"], {})[int(r["normal_class"])] = r
    head = "| model | score (device) | " + " | ".join(str(k) for k in classes) + \
        " | mean | min | float mean | recall @5% FPR | bundle KiB | latency µs | same verdict: kernels | float vs device |"
    lines = [f"**{dataset}**", "", head, "|---|---|" + "---:|" * (len(classes) + 8)]
    baselines: dict[str, dict[int, float]] = {b: {} for b in BASELINE_ROWS}
    for name, entries in by_model.items():
        device = {k: r["metrics"][device_key(r)]["auroc"] for k, r in entries.items()}
        floats = [r["metrics"]["float"]["auroc"] for r in entries.values()]
        recall = [r["metrics"][device_key(r)].get("recall_at_fpr", {}).get("0.05", {}).get("recall")
                  for r in entries.values()]
        recall = [v for v in recall if v is not None]
        kib = sum(r["size"].get("bundle_bytes", r["size"]["tflite_bytes"]) for r in entries.values()) / len(entries) / 1024
        lat = sorted(latency_us(r) for r in entries.values())[len(entries) // 2]
        score = "/".join(sorted({f"{r.get('score', 'mse')} ({device_key(r)})" for r in entries.values()}))
        lines.append(_row(f"{name} | {score}", device, classes, f"{sum(floats) / len(floats):.3f}",
                          _fmt(sum(recall) / len(recall) if recall else None), f"{kib:.1f}", f"{lat:.0f}",
                          *(_least_agreement(entries.values(), pair) for pair in AGREEMENT_COLUMNS)))
        for k, r in entries.items():
            for b in baselines:
                if b in r["metrics"]:
                    baselines[b].setdefault(k, r["metrics"][b]["auroc"])
    for b, title in BASELINE_ROWS.items():
        if baselines[b]:
            lines.append(_row(title, dict(sorted(baselines[b].items())), classes, *["–"] * 6))
    protocol = records[0].get("protocol", "").replace("PROTOCOL.md ", "")
    lines += ["", f"{len(records)} entries ({len(by_model)} models x up to {len(classes)} normal classes) on {dataset}. "
              f"AUROC of the full-integer detector a device runs ({protocol}): int8 from QAT, or int16x8 (16-bit "
              "activations) by post-training quantization of the float model; "
              "float mean = the float Keras model's mean AUROC; recall of anomalies at the threshold that flags 5% of the "
              "normal validation inputs; bundle = model.tflite + detector.json; batch-1 median latency (one input, or one "
              "window) through `edge.Detector` on one thread; same verdict = the least, over the classes, fraction of "
              "test inputs (windows for series) with the same verdict on LiteRT's XNNPACK and reference kernels, and "
              "for the float Keras model and the device detector (each at its own threshold) (`aezoo zoo agreement`). "
              "Generated from saved_models/manifest.json by "
              "`aezoo zoo table --write README.md`."]
    return "\n".join(lines)


# The zoo table's agreement columns: pairs of edge.agreement's report, as recorded in each entry.
AGREEMENT_COLUMNS = ("litert_default vs litert_reference", "litert_default vs keras_float")


def _least_agreement(records: Iterable[dict], pair: str) -> str:
    values = [r["agreement"]["pairs"][pair]["verdicts_agree"] for r in records if pair in r.get("agreement", {}).get("pairs", {})]
    return f"{100 * min(values):.2f}%" if values else "–"


def latency_us(record: dict) -> float:
    """The entry's batch-1 median latency through edge.Detector, in microseconds."""
    lat = record["latency"]
    return lat["detector"]["median"] if "detector" in lat else lat["median_us"]


_SECTION = re.compile(re.escape(TABLE_START) + r"\n?(.*?)\n?" + re.escape(TABLE_END), re.S)


def readme_table(readme: str | os.PathLike) -> str:
    """Return the text between the zoo-table markers of a README (UserError when they or the file are missing)."""
    if not Path(readme).is_file():
        raise UserError(f"{readme} is not a file; expected a README holding the lines {TABLE_START} and {TABLE_END}")
    text = Path(readme).read_text(encoding="utf-8")
    match = _SECTION.search(text)
    if match is None:
        raise UserError(f"{readme} has no zoo table section: expected the lines {TABLE_START} and {TABLE_END}. Received: none")
    return match.group(1).strip()


def write_readme_table(readme: str | os.PathLike, table: str) -> bool:
    """Replace the README section between the zoo-table markers with ``table``; return whether it changed."""
    readme_table(readme)  # markers present
    text = Path(readme).read_text(encoding="utf-8")
    new = _SECTION.sub(lambda _: f"{TABLE_START}\n{table.strip()}\n{TABLE_END}", text, count=1)
    if new == text:
        return False
    write_text(readme, new)
    return True
