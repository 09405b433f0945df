"""The catalog of pretrained entries in ``saved_models/``: reading the manifest and checking the entries' sha256s.

What a device needs of the zoo, and nothing else (TensorFlow-free, in the runtime wheel):
``edge.Detector.from_zoo`` finds an entry's bundle here and verifies it. Writing the
manifest, merging shards, loading the Keras models and the README table are
``zoo.pretrained``'s. Layout::

    saved_models/manifest.json                         every entry: files + sha256, metrics, timing, ...
    saved_models/<model>/<dataset>/class_<k>/model.keras       the trained float model
    saved_models/<model>/<dataset>/class_<k>/detector/         the device bundle (model.tflite + detector.json)
    saved_models/<model>/<dataset>/class_<k>/card.json         the model card

The folder is the repository's ``saved_models/`` (beside the ``zoo`` package),
or ``$AEZOO_SAVED_MODELS`` when set. Entries are written by ``aezoo zoo build``
(``training.pipeline.build_zoo``).
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import os
from pathlib import Path
from typing import Any, Iterable

from zoo.errors import UserError
from zoo.files import sha256_file

MANIFEST = "manifest.json"
FORMAT = "aezoo-zoo-manifest"
FORMAT_VERSION = 1
ENV = "AEZOO_SAVED_MODELS"
MAX_TOTAL_BYTES = 50 * 1024 * 1024
# Files of an entry, relative to its folder; all of them are hashed in the manifest. score.npz exists
# only for scores with fitted arrays (e.g. nap).
ENTRY_FILES = ("model.keras", "score.npz", "detector/model.tflite", "detector/detector.json", "card.json")
REQUIRED_FILES = ("model.keras", "detector/model.tflite", "detector/detector.json", "card.json")
def saved_models_dir(root: str | os.PathLike | None = None, *, must_exist: bool = False) -> Path:
    """Return the saved_models folder: ``root``, else ``$AEZOO_SAVED_MODELS``, else the repository's ``saved_models/``.

    With ``must_exist``, a missing folder (or a file) is a UserError naming it.
    """
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise UserError(f"root must be the path of a saved_models folder. Received: root={root!r}")
    env = os.environ.get(ENV)
    path = Path(root) if root is not None else Path(env).expanduser() if env else \
        Path(__file__).resolve().parent.parent / "saved_models"
    if must_exist and not path.is_dir():
        raise UserError(f"the saved_models folder {path} does not exist" + (" (it is a file)" if path.exists() else "")
                        + f". Expected a folder holding {MANIFEST}. Received: {path}")
    return path


def entry_key(model: str, dataset: str, normal_class: int) -> str:
    """Return the entry's key, which is also its folder under saved_models: ``<model>/<dataset>/class_<k>``."""
    return f"{model}/{dataset}/class_{int(normal_class)}"


def file_records(entry_dir: str | os.PathLike, names: Iterable[str] = ENTRY_FILES) -> dict[str, dict]:
    """Return ``{relative name: {"sha256", "bytes"}}`` for the files of an entry folder."""
    entry_dir = Path(entry_dir)
    return {name: {"sha256": sha256_file(entry_dir / name), "bytes": (entry_dir / name).stat().st_size} for name in names}


def sort_key(record: dict) -> tuple:
    """The order of entries in the manifest and in listings: model, dataset, normal class."""
    return (record["model"], record["dataset"], int(record["normal_class"]))


def empty_manifest() -> dict:
    """A manifest with no entries (what a new saved_models folder starts from)."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION,
            "description": "Pretrained autoencoder zoo: one entry per model, dataset and normal class "
                           "(written by `aezoo zoo build`; evaluated as in docs/PROTOCOL.md).",
            "entries": {}, "sessions": []}


def read_manifest(root: str | os.PathLike | None = None) -> dict:
    """Return the manifest of ``root`` (an empty one when the file does not exist yet)."""
    path = saved_models_dir(root) / MANIFEST
    if not path.is_file():
        return empty_manifest()
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); restore it with `git checkout -- {_shown(path)}` "
                        "or rebuild the zoo with `aezoo zoo build`.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(manifest.get("entries"), dict):
        raise UserError(f"{path} is not an aezoo zoo manifest: expected \"format\": \"{FORMAT}\" and an \"entries\" object. "
                        f"Received: format={manifest.get('format') if isinstance(manifest, dict) else type(manifest).__name__!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} has format_version {manifest.get('format_version')!r}; this version of aezoo reads "
                        f"{FORMAT_VERSION}. Rebuild the zoo with `aezoo zoo build`.")
    for key, record in manifest["entries"].items():
        _check_record(path, key, record)
    return manifest


def _check_record(path: Path, key: str, record: Any) -> None:
    """Each entry names its model, dataset, class and folder, and has file and metric objects."""
    def bad(what: str) -> UserError:
        return UserError(f"{path}: entry {key!r} {what}; restore the manifest with `git checkout -- {_shown(path)}` "
                         "or rebuild the entry with `aezoo zoo build`.")

    if not isinstance(record, dict):
        raise bad("is not an object")
    for name, kind in (("model", str), ("dataset", str), ("normal_class", int), ("path", str), ("files", dict),
                       ("metrics", dict), ("threshold", dict), ("size", dict), ("latency", dict)):
        if not isinstance(record.get(name), kind) or isinstance(record.get(name), bool):
            raise bad(f"lacks {name!r} ({kind.__name__})")
    for name, value in record["metrics"].items():
        if not isinstance(value, dict) or not isinstance(value.get("auroc"), (int, float, type(None))):
            raise bad(f"has metrics[{name!r}] without a numeric 'auroc'")
    device = device_key(record)
    if not isinstance(device, str) or device not in record["metrics"] or device not in record["threshold"]:
        raise bad(f"has no metrics and threshold of its device detector (quant {device!r})")
    unknown = sorted(set(record["files"]) - set(ENTRY_FILES))
    if unknown:  # a key such as "/etc/passwd" or "../x" would make verification read a file outside the entry
        raise bad(f"lists files {unknown[:3]} that are not an entry's own (expected some of {list(ENTRY_FILES)})")
    for name, value in record["files"].items():
        if not isinstance(value, dict) or not isinstance(value.get("sha256"), str) or not isinstance(value.get("bytes"), int):
            raise bad(f"has files[{name!r}] without 'sha256' and 'bytes'")
    if record["path"] != key or ".." in Path(record["path"]).parts or Path(record["path"]).is_absolute():
        raise bad(f"has path {record['path']!r}, expected {key!r}")


def list_pretrained(pattern: str = "*", *, dataset: str | None = None, root: str | os.PathLike | None = None,
                    require_manifest: bool = False) -> list[dict]:
    """Return the manifest records of the entries whose model matches ``pattern`` (a glob), sorted.

    With ``require_manifest``, a folder without manifest.json is a UserError (nothing to verify).

    Example::

        [(r["model"], r["normal_class"], r["metrics"][device_key(r)]["auroc"]) for r in zoo.list_pretrained("conv_*")]
    """
    if not isinstance(pattern, str):
        raise UserError(f"pattern must be a glob string such as 'conv_*'. Received: pattern={pattern!r}")
    if require_manifest and not (saved_models_dir(root) / MANIFEST).is_file():
        raise UserError(f"{saved_models_dir(root)} has no {MANIFEST}: nothing to verify. Expected a saved_models folder "
                        f"(build one with `aezoo zoo build`). Received: {saved_models_dir(root)}")
    entries = read_manifest(root)["entries"].values()
    return sorted((r for r in entries if fnmatch.fnmatchcase(r["model"], pattern) and dataset in (None, r["dataset"])),
                  key=sort_key)


def _available(entries: dict) -> str:
    if not entries:
        return "none (build them with `aezoo zoo build --dataset fashion_mnist`)"
    groups: dict[tuple[str, str], list[int]] = {}
    for r in entries.values():
        groups.setdefault((r["model"], r["dataset"]), []).append(int(r["normal_class"]))
    return "; ".join(f"{m}/{d} classes {sorted(ks)}" for (m, d), ks in sorted(groups.items()))


def get_entry(model: str, dataset: str = "fashion_mnist", normal_class: int = 0, *,
              root: str | os.PathLike | None = None) -> dict:
    """Return the manifest record of an entry; an unknown entry is a UserError listing the available ones."""
    root = saved_models_dir(root, must_exist=True)
    if isinstance(normal_class, bool) or not isinstance(normal_class, int):
        raise UserError(f"normal_class must be an integer class id. Received: normal_class={normal_class!r}")
    entries = read_manifest(root)["entries"]
    key = entry_key(model, dataset, normal_class)
    if key not in entries:
        models = sorted({r["model"] for r in entries.values()})
        close = difflib.get_close_matches(str(model), models, n=2) if model not in models else []
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise UserError(f"no pretrained entry {key} in {_shown(root / MANIFEST)}.{hint} Available entries: {_available(entries)}. "
                        f"Received: model={model!r}, dataset={dataset!r}, normal_class={normal_class!r}")
    return entries[key]


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _fix_hint(record: dict, root: Path) -> str:
    key = entry_key(record["model"], record["dataset"], record["normal_class"])
    return (f"Rebuild the entry with `aezoo zoo build --dataset {record['dataset']} --models {record['model']} "
            f"--classes {record['normal_class']}`, or restore the committed files with `git checkout -- {_shown(root / key)}`.")


def entry_problems(record: dict, root: str | os.PathLike | None = None, names: Iterable[str] | None = None) -> list[str]:
    """Return one message per missing, truncated or altered file of an entry ([] when all verify)."""
    root = saved_models_dir(root)
    entry_dir = root / record["path"]
    problems = []
    for name in names if names is not None else record["files"]:
        want = record["files"].get(name)
        path = entry_dir / name
        if want is None:
            problems.append(f"the manifest lists no file {name} for {record['path']}")
        elif not path.is_file():
            problems.append(f"pretrained file {_shown(path)} is missing: expected sha256 {want['sha256']} "
                            f"({want['bytes']} bytes), actual: no file.")
        else:
            size = path.stat().st_size
            actual = sha256_file(path)
            if actual != want["sha256"]:
                what = "truncated" if size < want["bytes"] else "altered"
                problems.append(f"pretrained file {_shown(path)} is {what} or corrupted: its sha256 does not match "
                                f"{MANIFEST}. Expected: {want['sha256']} ({want['bytes']} bytes), actual: {actual} ({size} bytes).")
    return problems


def verify_entry(record: dict, root: str | os.PathLike | None = None, names: Iterable[str] | None = None) -> Path:
    """Check the sha256 of an entry's files (all, or ``names``); return the entry folder or raise UserError."""
    root = saved_models_dir(root)
    problems = entry_problems(record, root, names)
    if problems:
        raise UserError(" ".join(problems) + " " + _fix_hint(record, root))
    return root / record["path"]


def check_entry(key: str, root: str | os.PathLike | None = None) -> list[str]:
    """Return why entry ``key`` is not complete and verified ([] when it is): used to skip finished entries."""
    entries = read_manifest(root)["entries"]
    if key not in entries:
        return [f"{key} is not in the manifest"]
    record = entries[key]
    missing = [name for name in REQUIRED_FILES if name not in record.get("files", {})]
    return [f"{key}: the manifest lacks {missing}"] if missing else entry_problems(record, root)


def detector_dir(model: str, dataset: str = "fashion_mnist", normal_class: int = 0, *,
                 root: str | os.PathLike | None = None, verify: bool = True) -> Path:
    """Return the device detector bundle folder of an entry, its files checked against the manifest."""
    root = saved_models_dir(root)
    record = get_entry(model, dataset, normal_class, root=root)
    if verify:
        verify_entry(record, root, ("detector/model.tflite", "detector/detector.json"))
    return root / record["path"] / "detector"


def total_bytes(root: str | os.PathLike | None = None) -> int:
    """Total size of the files under saved_models (what a clone downloads)."""
    root = saved_models_dir(root)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


def device_key(record: dict) -> str:
    """The key of an entry's device detector in its ``metrics`` and ``threshold``: its quantization mode
    ("int8", or "int16x8" for the nap entries: ``training.pipeline.EntrySettings.quant``)."""
    return record.get("quant", "int8")
