"""The run folder: its layout, whether it is finished, its lock, provenance and machine facts.

Every command that writes a run (train, optimize, zoo build, represent) goes through
this module, so "is this run finished?" has one answer::

    RUN/config.json        the TrainConfig (plus a "compression" section for a compressed run)
    RUN/model.keras        the network (best normal-validation loss)
    RUN/threshold.json     the score (kind, options, parameters) and the threshold record
    RUN/score.npz          the score's fitted arrays, when it has any (e.g. nap)
    RUN/history.json       loss per epoch, budget, timing
    RUN/metrics.json       the evaluation (the model beside PCA and kNN)
    RUN/checkpoints/       weights per epoch + state.json (early stopping, "finished")
    RUN/backup/            Keras BackupAndRestore state while the fit is unfinished
    RUN/logs/              TensorBoard scalars
    RUN/plots/*.png
    RUN/.lock              held while a process writes the run
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from pathlib import Path
from typing import Any, Iterator

from zoo.errors import UserError
from zoo.files import pid_alive, write_json

# The one list of a run folder's file names (the detector, fit, the pipeline and the zoo entries use these).
CONFIG = "config.json"
MODEL = "model.keras"
THRESHOLD = "threshold.json"
SCORE_STATE = "score.npz"
HISTORY = "history.json"
METRICS = "metrics.json"
CHECKPOINTS = "checkpoints"
STATE = "checkpoints/state.json"
BACKUP = "backup"
LOGS = "logs"
PLOTS = "plots"
LOCK = ".lock"
REQUIRED = (CONFIG, MODEL, THRESHOLD)
# Everything a training run writes into its folder (a folder holding more holds a user's files too).
RUN_ENTRIES = frozenset({CONFIG, MODEL, THRESHOLD, SCORE_STATE, HISTORY, METRICS, CHECKPOINTS, BACKUP, LOGS, PLOTS, LOCK})
# Sections of config.json that other stages add beside the TrainConfig fields.
SECTIONS = ("compression", "preprocessing")


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file of a run; a damaged one is a UserError naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} is missing ({what})") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is damaged ({what}): {exc}. Restore it, or train the run again into a new folder") from None


def dataset_of(target: str | os.PathLike, default: str = "fashion_mnist") -> str:
    """The dataset a run folder was trained on (its config.json), else ``default`` (a .keras file has no record)."""
    config = Path(target) / CONFIG
    return read_json(config, "the run's config").get("dataset", default) if config.is_file() else default


class Run:
    """A run folder ``path``: what is in it, and whether it is finished."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def file(self, name: str) -> Path:
        """The path of one of the run's files (a name above, e.g. ``runs.CONFIG``)."""
        return self.path / name

    def exists(self) -> bool:
        """True when the folder holds a run (its config.json)."""
        return self.file(CONFIG).is_file()

    def state(self) -> dict:
        """checkpoints/state.json: the per-epoch records and "finished" ({} before the first epoch)."""
        path = self.file(STATE)
        return read_json(path, "the run's training state") if path.is_file() else {}

    def is_finished(self) -> bool:
        """True when training, calibration and evaluation all completed (state.json says so)."""
        return bool(self.state().get("finished")) and all(self.file(f).is_file() for f in (*REQUIRED, METRICS))

    def config(self) -> dict:
        """The raw config.json."""
        return read_json(self.file(CONFIG), "the run's configuration")

    def train_config(self) -> Any:
        """config.json as a ``TrainConfig`` (a compressed run's "compression" section is left out)."""
        from training.config import TrainConfig

        data = self.config()
        if not isinstance(data, dict):
            raise UserError(f"{self.file(CONFIG)} must hold a JSON object. Received: {type(data).__name__}")
        return TrainConfig.from_dict({k: v for k, v in data.items() if k not in SECTIONS})

    def preprocessing(self) -> dict:
        """How raw inputs became the model's inputs (image size and mode, or the vector standardization)."""
        return self.config().get("preprocessing") or {}

    def compression(self) -> dict | None:
        """The "compression" section of config.json (None for a trained run)."""
        return self.config().get("compression") if self.exists() else None

    def require_finished(self) -> "Run":
        """Return self, or raise a UserError saying what is missing and how to continue."""
        if not self.path.is_dir():
            raise UserError(f"expected a run folder. Received: {self.path}"
                            + (" (a file)" if self.path.exists() else " (does not exist)"))
        missing = [f for f in REQUIRED if not self.file(f).is_file()]
        if missing:
            raise UserError(f"run folder {self.path} is incomplete: missing {', '.join(missing)} "
                            "(unfinished run? continue it with `aezoo train --resume --out RUN`)")
        return self

    def write(self, name: str, obj: Any) -> Path:
        """Write one JSON file of the run atomically."""
        return write_json(self.file(name), obj)

    def mark_finished(self) -> None:
        """Record in state.json that everything is written (the last step of a run)."""
        write_json(self.file(STATE), {**self.state(), "finished": True})

    def check_unlocked(self) -> None:
        """Raise UserError when another live process holds the run's lock."""
        owner = _lock_owner(self.file(LOCK))
        if owner is not None and owner != os.getpid() and pid_alive(owner):
            raise UserError(f"{self.path} is being written by another aezoo process (PID {owner}); "
                            "wait for it to finish or choose another --out")

    @contextlib.contextmanager
    def lock(self) -> Iterator["Run"]:
        """Hold the run's exclusive lock (a ``.lock`` file with our PID) while writing it.

        A lock whose process no longer runs is stale and taken over; a live one is a
        UserError naming its PID, so two processes never write one run.
        """
        path = self.file(LOCK)
        for _ in range(2):
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except (PermissionError, NotADirectoryError, FileExistsError) as exc:
                if not isinstance(exc, FileExistsError) or not self.path.is_dir():
                    raise UserError(f"cannot write the run folder {self.path}: {exc.strerror or exc}. "
                                    "Choose a writable --out") from None
                owner = _lock_owner(path)
                if owner is not None and pid_alive(owner):
                    raise UserError(f"{self.path} is being written by another aezoo process (PID {owner}); "
                                    "wait for it to finish or choose another --out") from None
                path.unlink(missing_ok=True)  # stale: its process is gone
        else:
            raise UserError(f"could not take the lock {path}; remove it if no aezoo process is running")
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        try:
            yield self
        finally:
            if _lock_owner(path) == os.getpid():
                path.unlink(missing_ok=True)


def _lock_owner(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def machine_info() -> dict:
    """The CPU model, core count and Python version (recorded with every figure)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def package_versions() -> dict[str, str | None]:
    """Versions of the packages that made a run or bundle (read from metadata; nothing is imported)."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("tensorflow", "tf-keras", "tensorflow-model-optimization", "tensorflow-datasets", "ai-edge-litert",
                 "numpy", "autoencoder-zoo"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


SOURCE_FIELDS = ("test_data", "label_column", "image_size", "color_mode", "input_kind", "window", "hop", "aggregate")


def provenance(config: dict, *, run: str | os.PathLike | None = None, class_names: list[str] | None = None,
               **extra: Any) -> dict:
    """How a model was made, for bundles, manifests and reports: data, class, seed, model, params, versions."""
    k = config.get("normal_class")
    record = {"run": str(run) if run is not None else None, "dataset": config.get("dataset"), "normal_class": k,
              "normal_class_name": class_names[int(k)] if class_names and k is not None and 0 <= int(k) < len(class_names) else None,
              "seed": config.get("seed"), "model": config.get("model"), "params": config.get("params", {}),
              "epochs": config.get("epochs"), "score": config.get("score"), "versions": package_versions(),
              # How the data source was read (test file, series window and hop), so `aezoo evaluate BUNDLE` reads it alike.
              "source": {k: config[k] for k in SOURCE_FIELDS if config.get(k) is not None}}
    record.update(extra)
    return record
