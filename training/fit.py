"""Training with Keras ``fit``: the run folder, resumable checkpoints, threshold, metrics.

A run folder (``aezoo train --out runs/NAME`` or ``training.train(..., out=...)``)::

    config.json      TrainConfig: enough to rebuild and retrain the model
    model.keras      the model with the best normal-validation loss
    history.json     loss and val_loss per epoch, best epoch, timing
    threshold.json   {"score", "method", "value", ...} calibrated on normal validation images
    metrics.json     the protocol's metrics, the model's and the PCA baseline's
    checkpoints/     weights after every epoch (the best and the last are kept) + state.json
    backup/          keras BackupAndRestore state (epoch, batch, optimizer) while a run is unfinished
    logs/            TensorBoard scalars (train/ and validation/)
    plots/*.png
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edge.scoring import THRESHOLD_METHODS, calibrate_threshold
from training.scoring import KINDS, score
from zoo.errors import UserError
from zoo.files import atomic_path, write_json, write_text

RUN_FILES = ("config.json", "model.keras", "threshold.json")
# Mid-epoch backups let a killed run resume where it stopped; each costs a
# small checkpoint write, so they are spaced out.
BACKUP_EVERY_BATCHES = 20


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build the config dataclass ``cls`` from a dict; a key it does not have is a UserError listing the valid ones."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise UserError(f"unknown {cls.__name__} keys {unknown}; expected some of {names}. Received: {sorted(data)}")
    return cls(**data)


@dataclasses.dataclass
class TrainConfig:
    """Everything needed to rebuild and retrain a detector; round-trips to JSON.

    Args:
        model: a zoo model name (``zoo.list_models()``).
        params: keyword arguments for ``zoo.build`` (e.g. ``{"latent_dim": 16}``).
        dataset: "fashion_mnist", "mnist", "cifar10" or an ImageFolder directory.
        normal_class: the class id treated as normal.
        data_dir: data directory passed to the loader (None: its default).
        seed: seeds Python, numpy and TensorFlow, and the shuffling.
        epochs: maximum number of epochs (early stopping may end sooner).
        batch_size: training batch size.
        lr: Adam learning rate.
        patience: epochs without normal-validation improvement before stopping.
        score: anomaly score: "mse", "mae", "ssim" or "elbo" (variational models).
        threshold_method: "percentile", "mean_std" or "best_f1" (see ``edge.scoring.calibrate_threshold``).
        percentile: percentile for "percentile".
        k: number of standard deviations for "mean_std".
        deterministic: enable TensorFlow op determinism (same seed, same result).
        all_classes: train one model on every class of the train split instead
            (embeddings, generation, compression: ``training.representation``).
            Validation is a fixed 10% of each class; ``normal_class`` is unused,
            metrics.json reports reconstruction MSE/PSNR/SSIM (beside PCA of the same
            size) instead of anomaly metrics. Defaults to False.
    """

    model: str = "conv_ae"
    params: dict = dataclasses.field(default_factory=dict)
    dataset: str = "fashion_mnist"
    normal_class: int = 0
    data_dir: str | None = None
    seed: int = 0
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    patience: int = 5
    score: str = "mse"
    threshold_method: str = "percentile"
    percentile: float = 99.0
    k: float = 3.0
    deterministic: bool = True
    all_classes: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-ready dict."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Rebuild a config from :meth:`to_dict` output; unknown keys are a UserError."""
        return config_from_dict(cls, data)

    def to_json(self) -> str:
        """Return the config as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        """Parse :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    def validate(self) -> "TrainConfig":
        """Check every field (model name, class range, numbers); raise UserError quoting the bad value."""
        import zoo

        names = zoo.list_models()
        if self.model not in names:
            import difflib

            close = difflib.get_close_matches(str(self.model), names, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UserError(f"unknown model; expected one of {', '.join(names)}.{hint} Received: model={self.model!r}")
        if not isinstance(self.params, dict):
            raise UserError(f"params must be a dict of model keyword arguments. Received: params={self.params!r}")
        check_data_args(self.dataset, 0 if self.all_classes else self.normal_class, self.data_dir)
        for name, low in (("epochs", 1), ("batch_size", 1), ("patience", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(f"{name} must be an integer >= {low}. Received: {name}={value!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not 0 < self.lr < 10:
            raise UserError(f"lr must be a positive number. Received: lr={self.lr!r}")
        if self.score not in KINDS:
            raise UserError(f"score must be one of {', '.join(KINDS)}. Received: score={self.score!r}")
        if self.threshold_method not in THRESHOLD_METHODS:
            raise UserError(f"threshold_method must be one of {', '.join(THRESHOLD_METHODS)}. Received: threshold_method={self.threshold_method!r}")
        if not 0 < float(self.percentile) <= 100:
            raise UserError(f"percentile must be in (0, 100]. Received: percentile={self.percentile!r}")
        return self


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns: the fitted model (best weights), its history and its evaluation."""

    model: Any
    history: dict
    config: TrainConfig
    threshold: dict
    metrics: dict
    run_dir: Path


def check_data_args(dataset: str, normal_class: Any, data_dir: str | None = None) -> None:
    """Raise UserError unless ``dataset`` is known and ``normal_class`` is one of its class ids."""
    from training import data

    if not isinstance(dataset, str) or (dataset not in data.DATASETS and not Path(dataset).expanduser().is_dir()):
        raise UserError(f"unknown dataset; expected one of {', '.join(data.DATASETS)} or an ImageFolder directory. Received: dataset={dataset!r}")
    n = len(data.class_names(dataset))
    if isinstance(normal_class, bool) or not isinstance(normal_class, (int, np.integer)) or not 0 <= normal_class < n:
        raise UserError(f"normal class must be an integer in 0..{n - 1} for {dataset}. Received: normal_class={normal_class!r}")


def load_one_class_split(dataset: str, normal_class: int, data_dir: str | None = None):
    """Return ``training.data.one_class_split(...)`` (the protocol's split)."""
    from training import data

    return data.one_class_split(dataset, int(normal_class), data_dir=data_dir)


def load_run(path: str | os.PathLike) -> tuple[Any, TrainConfig, dict]:
    """Load a run folder: return (model, config, threshold dict).

    Raises UserError naming the missing files when the folder is incomplete
    (an unfinished run can be continued with ``--resume``).
    """
    import zoo

    path = Path(path)
    if not path.is_dir():
        raise UserError(f"expected a run folder. Received: {path}")
    missing = [f for f in RUN_FILES if not (path / f).is_file()]
    if missing:
        raise UserError(f"run folder {path} is incomplete: missing {', '.join(missing)} (unfinished run? continue it with --resume)")
    data = json.loads((path / "config.json").read_text())
    # A compressed run (training.compress.optimize_run) adds a "compression" section to its TrainConfig.
    data.pop("compression", None)
    config = TrainConfig.from_dict(data)
    threshold = json.loads((path / "threshold.json").read_text())
    model = zoo.load_model(path / "model.keras")  # QAT models (aezoo optimize) included
    return model, config, threshold


def _seed_everything(config: TrainConfig) -> None:
    from zoo.keras import keras, tf

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()


def _make_callbacks(run_dir: Path, config: TrainConfig, steps_per_epoch: int):
    """Callbacks: per-epoch checkpoints + resumable early stopping, backup/restore, TensorBoard scalars."""
    from zoo.keras import keras, tf

    class RunProgress(keras.callbacks.Callback):
        """Early stopping on normal-validation loss whose state survives a resume.

        Per epoch it saves the weights (checkpoints/epoch_NNN.h5) and a
        record (loss, val_loss, best, wait, seconds) in checkpoints/state.json.
        An epoch redone after an interruption replaces its earlier record, so
        the state always follows the epochs that actually led to the weights.
        """

        def __init__(self):
            super().__init__()
            self.ckpt_dir = run_dir / "checkpoints"
            self.state_file = self.ckpt_dir / "state.json"
            self.records: list[dict] = []
            self.stopped_early = False

        def on_train_begin(self, logs=None):
            if self.state_file.is_file():
                self.records = json.loads(self.state_file.read_text())["epochs"]

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            prev = [r for r in self.records if r["epoch"] < epoch]
            last = prev[-1] if prev else {"best": math.inf, "best_epoch": None, "wait": 0}
            value = logs.get("val_loss", math.nan)
            if value < last["best"]:
                best, best_epoch, wait = value, epoch, 0
            else:
                best, best_epoch, wait = last["best"], last["best_epoch"], last["wait"] + 1
            with atomic_path(self.ckpt_dir / f"epoch_{epoch + 1:03d}.h5") as tmp:
                self.model.save_weights(str(tmp))
            self.records = prev + [{"epoch": epoch, **logs, "best": best, "best_epoch": best_epoch, "wait": wait,
                                    "seconds": time.perf_counter() - self._t0}]
            write_json(self.state_file, {"epochs": self.records})
            if wait >= config.patience:
                self.stopped_early = True
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            best_epoch = self.records[-1]["best_epoch"] if self.records else None
            if best_epoch is not None:
                self.model.load_weights(str(self.ckpt_dir / f"epoch_{best_epoch + 1:03d}.h5"))
            keep = {f"epoch_{e + 1:03d}.h5" for e in (best_epoch, self.records[-1]["epoch"] if self.records else None) if e is not None}
            for f in self.ckpt_dir.glob("epoch_*.h5"):
                if f.name not in keep:
                    f.unlink()

    class Backup(keras.callbacks.BackupAndRestore):
        """BackupAndRestore that saves every few batches of each epoch and at every epoch end."""

        def on_epoch_begin(self, epoch, logs=None):
            self._batches_count = 0  # count within the epoch, so backups fall on the same batches every epoch
            super().on_epoch_begin(epoch, logs)

        def on_epoch_end(self, epoch, logs=None):
            self._backup(epoch=epoch, batch=steps_per_epoch - 1)

    class Scalars(keras.callbacks.Callback):
        """TensorBoard epoch scalars written with core ``tf.summary.write`` (no tensorboard package needed)."""

        def __init__(self):
            super().__init__()
            self.writers = {}
            self.meta = tf.compat.v1.SummaryMetadata()
            self.meta.plugin_data.plugin_name = "scalars"

        def on_epoch_end(self, epoch, logs=None):
            for key, value in (logs or {}).items():
                part, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
                if part not in self.writers:
                    self.writers[part] = tf.summary.create_file_writer(str(run_dir / "logs" / part))
                with self.writers[part].as_default():
                    tf.summary.write(f"epoch_{name}", tf.constant(float(value)), step=epoch, metadata=self.meta)
            for w in self.writers.values():
                w.flush()

        def on_train_end(self, logs=None):
            for w in self.writers.values():
                w.close()

    progress = RunProgress()
    every = min(BACKUP_EVERY_BATCHES, steps_per_epoch)
    # RunProgress runs first so an epoch's record exists before the backup marks the epoch done.
    return progress, [progress, Backup(str(run_dir / "backup"), save_freq=every, delete_checkpoint=False), Scalars()]


def _history_from(records: list[dict], stopped_early: bool, n_train: int) -> dict:
    keys = [k for k in records[0] if k not in ("epoch", "best", "best_epoch", "wait", "seconds")] if records else []
    seconds = float(sum(r["seconds"] for r in records))
    return {
        "epoch": [r["epoch"] for r in records],
        **{k: [r.get(k) for r in records] for k in keys},
        "best_epoch": records[-1]["best_epoch"] if records else None,
        "best_val_loss": records[-1]["best"] if records else None,
        "epochs_run": len(records),
        "stopped_early": stopped_early,
        "seconds_per_epoch": [r["seconds"] for r in records],
        "train_seconds": seconds,
        "images_per_second": n_train * len(records) / seconds if seconds else None,
    }


def train(
    config: TrainConfig | None = None,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    split=None,
    callbacks: Sequence[Any] = (),
    verbose: int | str = "auto",
    plots: bool = True,
    **overrides: Any,
) -> TrainResult:
    """Train a zoo autoencoder on one normal class, calibrate its threshold, evaluate it, write the run folder.

    Args:
        config: a :class:`TrainConfig`; keyword ``overrides`` replace its fields
            (``train(model="conv_ae", normal_class=1, epochs=5)`` works without one).
        out: the run folder. Defaults to a new temporary directory (see ``result.run_dir``).
        resume: continue the unfinished run in ``out`` from its last backup
            (epoch counter, optimizer and early-stopping state are kept).
            ``config`` may then only change ``epochs``.
        split: a prepared ``training.data.OneClassSplit`` (skips loading the data).
        callbacks: extra Keras callbacks.
        verbose: Keras ``fit`` verbosity (1 = progress bar). Defaults to "auto".
        plots: draw the PNG plots. Defaults to True.

    Returns:
        A :class:`TrainResult` (model with the best weights, history, config, threshold, metrics, run_dir).
    """
    from training.evaluate import evaluate_detector
    from zoo.keras import keras
    import zoo
    from training import data

    if config is not None and not isinstance(config, TrainConfig):
        raise UserError(f"config must be a TrainConfig (or pass keyword arguments). Received: {type(config).__name__}")
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise UserError(f"unknown training options {unknown}; expected fields of TrainConfig. Received: {sorted(overrides)}")
    run_dir = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="aezoo-run-"))
    config_file = run_dir / "config.json"
    state_file = run_dir / "checkpoints" / "state.json"
    if resume:
        if not config_file.is_file():
            raise UserError(f"--resume needs an existing run folder with config.json. Received: {run_dir}")
        saved = TrainConfig.from_json(config_file.read_text())
        given = dataclasses.replace(config or saved, **overrides)
        if dataclasses.replace(given, epochs=saved.epochs) != saved:
            raise UserError(f"a resumed run keeps the config saved in {config_file} (only epochs may change). "
                            f"Received: {given.to_dict()}")
        if state_file.is_file() and json.loads(state_file.read_text()).get("finished"):
            raise UserError(f"run {run_dir} is already finished; nothing to resume (evaluate it with `aezoo evaluate {run_dir}`)")
        config = given
    else:
        if config_file.exists():
            raise UserError(f"{run_dir} already holds a run; continue it with --resume or choose another --out. Received: --out {run_dir}")
        config = dataclasses.replace(config or TrainConfig(), **overrides)
    config.validate()
    write_json(config_file, config.to_dict())

    _seed_everything(config)
    if split is None and config.all_classes:
        from training.representation import all_classes_split

        split = all_classes_split(config.dataset, data_dir=config.data_dir)
    elif split is None:
        split = load_one_class_split(config.dataset, config.normal_class, config.data_dir)
    try:
        model = zoo.build(config.model, input_shape=tuple(split.x_train.shape[1:]), **config.params)
    except TypeError as exc:
        raise UserError(f"bad model parameter for {config.model}: {exc}. Received: params={config.params}") from None
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.lr), loss="mse")
    train_ds = data.make_pipeline(split.x_train, batch_size=config.batch_size, shuffle=True, seed=config.seed)
    val_ds = data.make_pipeline(split.x_val, batch_size=config.batch_size, shuffle=False, seed=config.seed)
    steps = math.ceil(len(split.x_train) / config.batch_size)
    progress, cbs = _make_callbacks(run_dir, config, steps)
    t0 = time.perf_counter()
    model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=cbs + list(callbacks), verbose=verbose)
    wall = time.perf_counter() - t0
    history = _history_from(progress.records, progress.stopped_early, len(split.x_train))
    history["fit_wall_seconds_last_session"] = wall
    with atomic_path(run_dir / "model.keras") as tmp:
        model.save(str(tmp))
    write_json(run_dir / "history.json", history)

    val_scores = score(model, split.x_val, config.score, batch_size=256)
    value = calibrate_threshold(val_scores, config.threshold_method, percentile=config.percentile, k=config.k)
    threshold = {"score": config.score, "method": config.threshold_method, "value": value,
                 "percentile": config.percentile, "k": config.k,
                 "calibrated_on": "validation images of every class" if config.all_classes else "normal validation images",
                 "n_val": int(len(split.x_val)), "val_score_mean": float(val_scores.mean()),
                 "val_score_std": float(val_scores.std())}
    write_json(run_dir / "threshold.json", threshold)
    if config.all_classes:
        from training.representation import reconstruction_report

        report = reconstruction_report(model, split, out_dir=run_dir, plots=plots, history=history, label=config.model)
    else:
        report = evaluate_detector(model, split, value, score_kind=config.score, out_dir=run_dir, plots=plots,
                                   history=history, label=config.model)
    report["training"] = {k: history[k] for k in ("epochs_run", "best_epoch", "stopped_early", "train_seconds", "images_per_second")}
    report["training"]["n_train"] = int(len(split.x_train))
    write_json(run_dir / "metrics.json", report)
    write_json(state_file, {"epochs": progress.records, "finished": True})
    # The backup is kept until everything above is written, so a crash after fit still resumes at the end.
    shutil.rmtree(run_dir / "backup", ignore_errors=True)
    return TrainResult(model=model, history=history, config=config, threshold=threshold, metrics=report, run_dir=run_dir)


def train_all(
    config: TrainConfig | None = None,
    *,
    out: str | os.PathLike,
    classes: Sequence[int] | None = None,
    resume: bool = False,
    verbose: int | str = 0,
    plots: bool = True,
    **overrides: Any,
) -> dict:
    """Train and evaluate one model per normal class; write summary.md and summary.json in ``out``.

    Each class gets its run folder ``out/class_K``; a tqdm bar runs over the
    classes. With ``resume``, finished classes are read back and unfinished ones
    continued.

    Returns:
        The summary: per class AUROC (model and PCA), training time and
        images/second; mean and minimum AUROC; the machine.
    """
    from tqdm.auto import tqdm

    from training import data

    config = dataclasses.replace(config or TrainConfig(), **overrides)
    if config.all_classes:
        raise UserError("train_all trains one model per normal class; all_classes=True trains one model in total: use train(). "
                        "Received: all_classes=True")
    out = Path(out)
    names = data.class_names(config.dataset)
    classes = list(range(len(names))) if classes is None else list(classes)
    rows = []
    bar = tqdm(classes, desc=f"{config.model} on {config.dataset}", unit="class")
    for k in bar:
        bar.set_postfix_str(f"class {k} ({names[k]})")
        run_dir = out / f"class_{k}"
        state = run_dir / "checkpoints" / "state.json"
        finished = state.is_file() and json.loads(state.read_text()).get("finished", False)
        if finished and resume:
            report = json.loads((run_dir / "metrics.json").read_text())
        else:
            res = train(dataclasses.replace(config, normal_class=k), out=run_dir, resume=resume and (run_dir / "config.json").is_file(),
                        verbose=verbose, plots=plots)
            report = res.metrics
        t = report["training"]
        rows.append({"class": k, "name": names[k], "auroc": report["model"]["auroc"], "pca_auroc": report["pca"]["auroc"],
                     "auprc": report["model"]["auprc"], "f1": report["model"]["f1"], "fpr": report["model"]["fpr"],
                     "epochs_run": t["epochs_run"], "train_seconds": t["train_seconds"], "images_per_second": t["images_per_second"]})
    summary = {
        "model": config.model, "dataset": config.dataset, "config": config.to_dict(),
        "classes": rows,
        "mean_auroc": float(np.mean([r["auroc"] for r in rows])), "min_auroc": float(np.min([r["auroc"] for r in rows])),
        "pca_mean_auroc": float(np.mean([r["pca_auroc"] for r in rows])), "pca_min_auroc": float(np.min([r["pca_auroc"] for r in rows])),
        "total_train_seconds": float(sum(r["train_seconds"] for r in rows)),
        "machine": _machine(),
    }
    write_json(out / "summary.json", summary)
    write_text(out / "summary.md", summary_markdown(summary))
    return summary


def _machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def summary_markdown(summary: dict) -> str:
    """Return the all-classes summary as a Markdown table."""
    lines = [
        f"# {summary['model']} on {summary['dataset']}: one model per normal class",
        "",
        "| class | name | AUROC | PCA AUROC | AUPRC | F1 | FPR | epochs | train s | images/s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["classes"]:
        ips = f"{r['images_per_second']:.0f}" if r["images_per_second"] else "-"
        lines.append(f"| {r['class']} | {r['name']} | {r['auroc']:.4f} | {r['pca_auroc']:.4f} | {r['auprc']:.4f} | {r['f1']:.3f} | "
                     f"{r['fpr']:.3f} | {r['epochs_run']} | {r['train_seconds']:.1f} | {ips} |")
    lines += [
        f"| **mean** | | **{summary['mean_auroc']:.4f}** | **{summary['pca_mean_auroc']:.4f}** | | | | | {summary['total_train_seconds']:.1f} | |",
        f"| **min** | | **{summary['min_auroc']:.4f}** | **{summary['pca_min_auroc']:.4f}** | | | | | | |",
        "",
        f"Machine: {summary['machine']['cpu']}, {summary['machine']['cores']} cores. Seed {summary['config']['seed']}, "
        f"up to {summary['config']['epochs']} epochs, batch {summary['config']['batch_size']}, lr {summary['config']['lr']}.",
        "",
    ]
    return "\n".join(lines)
