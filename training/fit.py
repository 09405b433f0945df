"""Keras ``fit`` of a zoo autoencoder: the step budget, early stopping that survives a resume, checkpoints.

``fit_network(config, x_train, x_val)`` builds the variant, compiles it with Adam
and the per-pixel "mse" loss, and trains it on tf.data pipelines until the normal
validation loss stops improving. With a ``state_dir`` (a run folder) it keeps per-epoch
weights and the early-stopping state there, backs up mid-epoch with Keras
``BackupAndRestore`` and writes TensorBoard scalars, so a killed fit resumes where it
stopped with the same optimizer state.

The budget adapts to the data: the batch never exceeds the training set, and a
small training set gets enough epochs to reach ``min_steps`` optimizer steps (with a
patience scaled alike), so 100 images train as properly as 6,000; a Keras epoch of a small
set passes over it several times (at least ``MIN_EPOCH_STEPS`` steps), so its per-epoch
validation and bookkeeping do not outweigh the steps.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import zoo
from training.config import DetectorConfig
from training.runs import BACKUP, CHECKPOINTS, LOGS, STATE
from zoo.errors import UserError
from zoo.files import atomic_path, write_json
from zoo.keras import keras, tf

# Mid-epoch backups let a killed run resume where it stopped; each costs a small write.
BACKUP_EVERY_BATCHES = 20
# Early stopping waits at least this many optimizer steps, however short the epochs.
MIN_PATIENCE_STEPS = 100
# A Keras epoch is at least this many optimizer steps: a small training set is passed over several times per epoch
# (reshuffled each pass), so the validation pass, checkpoint and callbacks run every few tens of steps, not every step.
MIN_EPOCH_STEPS = 32


@dataclass(frozen=True)
class Budget:
    """How long a fit may run, and why: recorded in history.json."""

    batch_size: int
    steps_per_epoch: int
    epochs: int
    patience: int
    reason: str
    passes_per_epoch: int = 1

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return {"batch_size": self.batch_size, "steps_per_epoch": self.steps_per_epoch, "max_epochs": self.epochs,
                "max_steps": self.epochs * self.steps_per_epoch, "patience_epochs": self.patience,
                "passes_per_epoch": self.passes_per_epoch, "reason": self.reason}


def budget(config: DetectorConfig, n_train: int) -> Budget:
    """The batch, epochs and patience for ``n_train`` images under ``config``.

    A fit runs at least ``config.epochs`` passes over the data and ``config.min_steps`` steps. When
    the step floor multiplies the passes of a small set, a Keras epoch holds several passes (at least
    MIN_EPOCH_STEPS steps, never fewer than ``config.epochs`` epochs in all), so the per-epoch
    validation and bookkeeping do not outweigh the steps.
    """
    if n_train < 1:
        raise UserError("training needs at least one normal training image. Received: 0")
    batch = min(config.batch_size, n_train)
    per_pass = math.ceil(n_train / batch)
    passes = max(config.epochs, math.ceil(config.min_steps / per_pass))
    group = max(1, min(math.ceil(MIN_EPOCH_STEPS * batch / n_train), passes // config.epochs))
    steps = math.ceil(n_train * group / batch)
    epochs = max(math.ceil(passes / group), math.ceil(config.min_steps / steps))
    patience = math.ceil(max(config.patience, math.ceil(MIN_PATIENCE_STEPS / per_pass)) / group)
    reasons = []
    if batch < config.batch_size:
        reasons.append(f"batch {config.batch_size} > {n_train} training images: batch {batch}")
    if passes > config.epochs:
        reasons.append(f"{config.epochs} passes of {per_pass} step(s) are fewer than min_steps={config.min_steps}: "
                       f"{epochs} epochs of {steps} steps")
    if group > 1:
        reasons.append(f"an epoch passes over the {n_train} images {group} times, so validation and checkpoints "
                       f"run every {steps} steps")
    if patience * group > config.patience:
        reasons.append(f"patience raised to {patience} epochs (at least {MIN_PATIENCE_STEPS} steps)")
    return Budget(batch, steps, epochs, patience,
                  "; ".join(reasons) or f"as configured: up to {epochs} epochs of {steps} steps, patience {patience}",
                  group)


def make_pipeline(x: np.ndarray, *, batch_size: int, shuffle: bool, seed: int, passes: int = 1) -> tf.data.Dataset:
    """A tf.data pipeline of ``(x, x)`` batches (inputs are their own targets), ``passes`` times over ``x`` (reshuffled
    each pass)."""
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(x, np.float32)).cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if passes > 1:
        ds = ds.repeat(passes)
    return ds.batch(int(batch_size)).map(lambda b: (b, b)).prefetch(tf.data.AUTOTUNE)


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, numpy and TensorFlow; optionally make TensorFlow's ops deterministic."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def compile_network(model: Any, lr: float) -> Any:
    """Compile ``model`` as every fit of the project does (training, multi-worker copies, compression fine-tuning):
    Adam at ``lr``, per-value "mse" (the variants add their own KL or sparsity terms); return it."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="mse")
    return model


def build_model(config: DetectorConfig, input_shape: tuple) -> Any:
    """``zoo.build`` the configured variant for ``input_shape`` and compile it (:func:`compile_network`)."""
    return compile_network(zoo.build(config.model, input_shape=tuple(input_shape), **config.params), config.lr)


def fit_network(config: DetectorConfig, x_train: np.ndarray, x_val: np.ndarray, *, model: Any = None,
                callbacks: Sequence[Any] = (), verbose: Any = 0, state_dir: str | Path | None = None,
                backup_dir: str | Path | None = None, strategy: Any = None) -> tuple[Any, dict]:
    """Train ``model`` (built from ``config`` when None) on normal images; return (model with its best weights, history).

    Args:
        config: the detector's config (model, params, seed, budget, lr).
        x_train, x_val: normal training and validation images.
        model: a compiled model to continue training. Defaults to a new one.
        callbacks: extra Keras callbacks.
        verbose: Keras ``fit`` verbosity.
        state_dir: where checkpoints, the early-stopping state, backups and TensorBoard
            logs go; an unfinished fit there is resumed. None keeps the state in memory.
        backup_dir: the BackupAndRestore folder (default ``state_dir/backup``): every worker of
            a multi-worker fit names the chief's, TensorFlow writes the others' aside.
        strategy: a ``tf.distribute`` strategy (``training.distribute.make_strategy``): the
            model is built in its scope and the data sharded; the batch is the global batch.
    """
    if len(x_val) == 0:
        raise UserError("early stopping needs normal validation images. Received: 0")
    seed_everything(config.seed, config.deterministic and strategy is None)
    plan = budget(config, len(x_train))
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = model if model is not None else build_model(config, x_train.shape[1:])
        if getattr(model, "optimizer", None) is None:
            compile_network(model, config.lr)
    progress = EarlyStopping(plan.patience, Path(state_dir) if state_dir is not None else None)
    cbs = []
    if state_dir is not None:
        every = min(BACKUP_EVERY_BATCHES, plan.steps_per_epoch)
        backup = str(backup_dir or Path(state_dir) / BACKUP)
        cbs += [Backup(backup, plan.steps_per_epoch, save_freq=every, delete_checkpoint=False), Scalars(Path(state_dir) / LOGS)]
    # state.json records an epoch only after the backup holds it: a kill between the two then retrains nothing
    # that state.json calls done.
    cbs.append(progress)
    train = make_pipeline(x_train, batch_size=plan.batch_size, shuffle=True, seed=config.seed, passes=plan.passes_per_epoch)
    val = make_pipeline(x_val, batch_size=plan.batch_size, shuffle=False, seed=config.seed)
    if strategy is not None:
        from training.distribute import sharded

        train, val = sharded(train), sharded(val)
    t0 = time.perf_counter()
    model.fit(train, validation_data=val, epochs=plan.epochs, callbacks=cbs + list(callbacks),
              verbose=keras_verbosity(verbose))
    history = progress.history(len(x_train), plan)
    history["fit_wall_seconds_last_session"] = time.perf_counter() - t0
    return (_local_copy(model, config) if strategy is not None else model), history


def keras_verbosity(verbose: Any) -> Any:
    """Keras ``fit`` verbosity: "auto" is the progress bar on a terminal, but one plain line per epoch in a file or a
    CI log (Keras's bar rewrites itself hundreds of times per epoch with carriage returns: a wall in a log)."""
    import sys

    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return verbose


def copy_network(model: Any) -> Any:
    """A clone of ``model`` with its own layers and variables, holding the same weights.

    Used where the original's layers are tied to something else: a ``tf.distribute``
    strategy, or the wrapped graph TFMOT's strip_pruning/strip_clustering leave them in
    (``layer.input``/``layer.output`` would name that graph's tensors).
    """
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def _local_copy(model: Any, config: DetectorConfig) -> Any:
    """The trained network outside the strategy: saving or predicting with distributed variables
    runs collective ops, which fail once the other workers have finished and left."""
    return compile_network(copy_network(model), config.lr)


class EarlyStopping(keras.callbacks.Callback):
    """Early stopping on normal-validation loss that restores the best weights and survives a resume.

    With a ``state_dir`` it saves the weights of the best epoch so far
    (``checkpoints/epoch_NNN.h5``) and a record per epoch (loss, val_loss, best, wait,
    seconds) in ``checkpoints/state.json``. An epoch redone after an interruption
    replaces its earlier record, so the state follows the epochs that led to the weights.
    Without one, the best weights are kept in memory.
    """

    def __init__(self, patience: int, state_dir: Path | None = None):
        super().__init__()
        self.patience = patience
        self.state_dir = state_dir
        self.records: list[dict] = []
        self.stopped_early = False
        self._best_weights = None

    def _state_file(self) -> Path:
        return self.state_dir / STATE

    def _checkpoint(self, epoch: int) -> Path:
        return self.state_dir / CHECKPOINTS / f"epoch_{epoch + 1:03d}.h5"

    def on_train_begin(self, logs: Any = None) -> None:
        if self.state_dir is not None and self._state_file().is_file():
            try:
                self.records = json.loads(self._state_file().read_text())["epochs"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise UserError(f"{self._state_file()} is damaged ({exc}); the run cannot resume. "
                                "Train it again into a new folder.") from None

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        prev = [r for r in self.records if r["epoch"] < epoch]
        last = prev[-1] if prev else {"best": math.inf, "best_epoch": None, "wait": 0}
        value = logs.get("val_loss", math.nan)
        improved = value < last["best"]
        best, best_epoch = (value, epoch) if improved else (last["best"], last["best_epoch"])
        wait = 0 if improved else last["wait"] + 1
        if improved and self.state_dir is not None:
            with atomic_path(self._checkpoint(epoch)) as tmp:
                self.model.save_weights(str(tmp))
            self._drop_checkpoints(keep=epoch)
        elif improved:
            self._best_weights = self.model.get_weights()
        self.records = prev + [{"epoch": epoch, **logs, "best": best, "best_epoch": best_epoch, "wait": wait,
                                "seconds": time.perf_counter() - self._t0}]
        if self.state_dir is not None:
            write_json(self._state_file(), {"epochs": self.records})
        if wait >= self.patience:
            self.stopped_early = True
            self.model.stop_training = True

    def on_train_end(self, logs: Any = None) -> None:
        best_epoch = self.records[-1]["best_epoch"] if self.records else None
        if self.state_dir is None:
            if self._best_weights is not None:
                self.model.set_weights(self._best_weights)
            return
        if best_epoch is not None:
            self.model.load_weights(str(self._checkpoint(best_epoch)))

    def _drop_checkpoints(self, keep: int) -> None:
        """Only the best epoch's weights are kept (Keras' backup holds what a resume needs besides)."""
        for f in (self.state_dir / CHECKPOINTS).glob("epoch_*.h5"):
            if f.name != self._checkpoint(keep).name:
                f.unlink()

    def history(self, n_train: int, plan: Budget) -> dict:
        """history.json: per-epoch losses, the best epoch, whether the budget ran out while still improving."""
        r = self.records
        keys = [k for k in (r[0] if r else {}) if k not in ("epoch", "best", "best_epoch", "wait", "seconds")]
        seconds = float(sum(x["seconds"] for x in r))
        best_epoch = r[-1]["best_epoch"] if r else None
        return {
            "epoch": [x["epoch"] for x in r], **{k: [x.get(k) for x in r] for k in keys},
            "best_epoch": best_epoch, "best_val_loss": r[-1]["best"] if r else None, "epochs_run": len(r),
            "stopped_early": self.stopped_early,
            # The best epoch is among the last few: the loss was still falling when the budget ended.
            "still_improving": bool(r) and not self.stopped_early and best_epoch is not None and best_epoch >= len(r) - 2,
            "budget": plan.to_dict(), "steps_run": len(r) * plan.steps_per_epoch,
            "seconds_per_epoch": [x["seconds"] for x in r], "train_seconds": seconds,
            "images_per_second": n_train * len(r) * plan.passes_per_epoch / seconds if seconds else None,
        }


class Backup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that saves every few batches of each epoch and at every epoch end."""

    def __init__(self, backup_dir: str, steps_per_epoch: int, **kwargs: Any):
        super().__init__(backup_dir, **kwargs)
        self.steps_per_epoch = steps_per_epoch

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._batches_count = 0  # count within the epoch, so backups fall on the same batches every epoch
        super().on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self._backup(epoch=epoch, batch=self.steps_per_epoch - 1)


class Scalars(keras.callbacks.Callback):
    """TensorBoard epoch scalars written with core ``tf.summary.write`` (no tensorboard package needed)."""

    def __init__(self, log_dir: Path):
        super().__init__()
        self.log_dir = log_dir
        self.writers: dict[str, Any] = {}
        self.meta = tf.compat.v1.SummaryMetadata()
        self.meta.plugin_data.plugin_name = "scalars"

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        for key, value in (logs or {}).items():
            part, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            if part not in self.writers:
                self.writers[part] = tf.summary.create_file_writer(str(self.log_dir / part))
            with self.writers[part].as_default():
                tf.summary.write(f"epoch_{name}", tf.constant(float(value)), step=epoch, metadata=self.meta)
        for w in self.writers.values():
            w.flush()

    def on_train_end(self, logs: Any = None) -> None:
        for w in self.writers.values():
            w.close()
