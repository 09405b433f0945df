"""``training.train``: one training run end to end, into a run folder; ``train_all``: one run per normal class.

    result = training.train(model="conv_ae", normal_class=1, out="runs/trouser")
    result.detector.decision_function(images), result.metrics["model"]["auroc"]

Every argument is checked, the data loaded and the network built once before
anything is written, so a refused run leaves no trace. The run folder is locked
while it is written; ``resume=True`` continues an interrupted one.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from training import runs
from training.config import TrainConfig
from zoo.errors import UserError
from zoo.files import write_json, write_text


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns: the fitted detector, its history, config, evaluation and folder."""

    detector: Any
    history: dict
    config: TrainConfig
    metrics: dict
    run_dir: Path

    @property
    def model(self) -> Any:
        """The trained Keras autoencoder (best weights)."""
        return self.detector.model_

    @property
    def threshold(self) -> dict:
        """The threshold record (value, method, ...)."""
        return self.detector.threshold_record_


def _config(config: TrainConfig | None, overrides: dict, run: runs.Run, resume: bool) -> TrainConfig:
    """The validated config of this run: ``config`` with ``overrides``, or on resume the saved one."""
    if config is not None and not isinstance(config, TrainConfig):
        raise UserError(f"config must be a TrainConfig (or pass keyword arguments). Received: {type(config).__name__}")
    if not resume:
        return (config or TrainConfig()).replace(**overrides).resolved()
    if not run.exists():
        raise UserError(f"--resume needs an existing run folder with config.json. Received: {run.path}")
    saved = run.train_config()
    given = (config or saved).replace(**overrides).resolved()
    if dataclasses.replace(given, epochs=saved.epochs) != saved:
        changed = {k: (v, given.to_dict()[k]) for k, v in saved.to_dict().items() if v != given.to_dict()[k] and k != "epochs"}
        raise UserError(f"a resumed run keeps the config saved in {run.file(runs.CONFIG)} (only epochs may change). "
                        f"Changed (saved, given): {changed}")
    if run.state().get("finished"):
        raise UserError(f"run {run.path} is already finished; nothing to resume (evaluate it with `aezoo evaluate {run.path}`)")
    return given


def _check_new_run(run: runs.Run) -> None:
    if run.exists():
        raise UserError(f"{run.path} already holds a run; continue it with --resume or choose another --out. "
                        f"Received: --out {run.path}")
    if run.path.exists() and (not run.path.is_dir() or any(p.name != runs.LOCK for p in run.path.iterdir())):
        what = "a file" if not run.path.is_dir() else "a folder with other files"
        raise UserError(f"{run.path} is {what}, not a run folder: nothing was written. Choose another --out. "
                        f"Received: --out {run.path}")


def _load_split(config: TrainConfig) -> Any:
    from training import data

    source = config.data_source()
    return data.all_classes_split(source) if config.all_classes else data.one_class_split(source, config.normal_class)


def _probe(config: TrainConfig, split: Any) -> None:
    """Build the network and check its score once, before anything is written (bad params fail now)."""
    from training.fit import build_model
    from training.scores import make_score

    model = build_model(config, split.x_train.shape[1:])
    make_score(config.score, config.score_options).check_model(model)


def train(config: TrainConfig | None = None, *, out: str | Path | None = None, resume: bool = False, split: Any = None,
          callbacks: Sequence[Any] = (), verbose: Any = "auto", plots: bool = True, strategy: str = "none",
          **overrides: Any) -> TrainResult:
    """Train a detector on one normal class (or one model on all classes), evaluate it, write the run folder.

    Args:
        config: a :class:`TrainConfig`; keyword ``overrides`` replace its fields
            (``train(model="conv_ae", normal_class=1, epochs=5)`` works without one).
        out: the run folder. Defaults to a new temporary directory (``result.run_dir``).
        resume: continue the unfinished run in ``out`` (epoch counter, optimizer and
            early-stopping state are kept); only ``epochs`` may change.
        split: a prepared split of the data (skips loading it).
        callbacks: extra Keras callbacks. verbose: Keras ``fit`` verbosity. plots: draw the PNGs.
        strategy: "none", "mirrored" or "multiworker" (``training.distribute``); in a cluster
            only the chief writes ``out``, the other workers train beside it and return.
    """
    from training import distribute

    run = runs.Run(out if out is not None else tempfile.mkdtemp(prefix="aezoo-run-"))
    chief = distribute.is_chief()
    if chief:
        run.check_unlocked()
    config = _config(config, overrides, run, resume) if chief else _worker_config(config, overrides, run, resume)
    if chief and not resume:
        _check_new_run(run)
    strat = distribute.make_strategy(strategy)  # before any data: collective ops are configured at startup
    split = split if split is not None else _load_split(config)
    _probe(config, split)
    if not chief:
        return _train_worker(run, config, split, strat)
    with run.lock():
        return _train_locked(run, config, split, resume=resume, callbacks=callbacks, verbose=verbose, plots=plots,
                             strategy=strat)


def _worker_config(config: TrainConfig | None, overrides: dict, run: runs.Run, resume: bool) -> TrainConfig:
    """A non-chief worker's config (the chief's on resume); the chief's checks are not repeated, its folder not touched."""
    base = run.train_config() if resume and run.exists() else config or TrainConfig()
    return base.replace(**overrides).resolved()


def _train_worker(run: runs.Run, config: TrainConfig, split: Any, strategy: Any) -> TrainResult:
    """Train beside the chief (collective ops need every worker); state in a temporary folder, as TensorFlow advises."""
    from training.detector import AutoencoderDetector
    from training.fit import fit_network

    scratch = Path(tempfile.mkdtemp(prefix="aezoo-worker-"))
    try:  # the score and threshold are the chief's work: a worker only trains
        model, history = fit_network(config, split.x_train, split.x_val, state_dir=scratch,
                                     backup_dir=run.file(runs.BACKUP), strategy=strategy)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    detector = AutoencoderDetector(config, network=model)
    detector.history_ = history
    return TrainResult(detector=detector, history=history, config=config, metrics={}, run_dir=run.path)


def _train_locked(run: runs.Run, config: TrainConfig, split: Any, *, resume: bool, callbacks: Sequence[Any],
                  verbose: Any, plots: bool, strategy: Any = None) -> TrainResult:
    from training.detector import AutoencoderDetector

    if not resume:
        _check_new_run(run)  # again, under the lock
        run.write(runs.CONFIG, {**config.to_dict(), "preprocessing": getattr(split, "preprocessing", {})})
    detector = AutoencoderDetector(config).fit(split.x_train, split.x_val, callbacks=callbacks, verbose=verbose,
                                               state_dir=run.path, strategy=strategy)
    if config.all_classes:  # its hold-out is a tenth of every class, not of a normal class
        detector.threshold_record_["calibrated_on"] = "validation images of every class"
    detector.save(run.path)
    history = detector.history_
    run.write(runs.HISTORY, history)
    report = _evaluate(detector, split, config, run, history, plots)
    run.write(runs.METRICS, report)
    run.mark_finished()
    # The backup is kept until everything above is written, so a crash after fit still resumes at the end.
    shutil.rmtree(run.file(runs.BACKUP), ignore_errors=True)
    return TrainResult(detector=detector, history=history, config=config, metrics=report, run_dir=run.path)


def _evaluate(detector: Any, split: Any, config: TrainConfig, run: runs.Run, history: dict, plots: bool) -> dict:
    from training import evaluate
    from training.baselines import fit_baselines

    if config.all_classes:
        report = evaluate.reconstruction_report(detector.model_, split, out_dir=run.path, plots=plots, history=history,
                                                label=config.model)
    else:
        baselines = fit_baselines(split.x_train, split.x_val, split.units)
        report = evaluate.evaluate_split(detector, split, baselines=baselines, out_dir=run.path, plots=plots,
                                         history=history, label=config.model)
        report["checks"] = evaluate.training_checks(detector, baselines["pca"], split, history)
    report["training"] = {k: history[k] for k in ("epochs_run", "steps_run", "best_epoch", "stopped_early",
                                                  "still_improving", "budget", "train_seconds", "images_per_second")}
    report["training"]["n_train"] = int(len(split.x_train))
    return report


def train_all(config: TrainConfig | None = None, *, out: str | Path, classes: Sequence[int] | None = None,
              resume: bool = False, verbose: Any = 0, plots: bool = True, **overrides: Any) -> dict:
    """Train and evaluate one detector per normal class into ``out/class_K``; write summary.md and summary.json.

    With ``resume``, finished classes are read back and unfinished ones continued.

    Returns:
        The summary: per class AUROC (model, PCA, kNN), training time and images/second;
        mean and minimum AUROC; the machine.
    """
    from training import data
    from training.progress import progress

    config = (config or TrainConfig()).replace(**overrides).resolved()
    if config.all_classes:
        raise UserError("train_all trains one model per normal class; all_classes=True trains one model in total: "
                        "use train(). Received: all_classes=True")
    names = data.class_names(config.data_source())
    classes = list(range(len(names))) if classes is None else list(classes)
    for k in classes:
        data.check_source(config.data_source(), k)
    rows = []
    bar = progress(classes, desc=f"{config.model} on {Path(config.dataset).name}", unit="class")
    for k in bar:
        bar.set_postfix_str(f"class {k} ({names[k]})")
        run = runs.Run(Path(out) / f"class_{k}")
        if resume and run.is_finished():
            report = runs.read_json(run.file(runs.METRICS), "the run's evaluation")
        else:
            report = train(config.replace(normal_class=k), out=run.path, resume=resume and run.exists(), verbose=verbose,
                           plots=plots).metrics
        rows.append(_summary_row(k, names[k], report))
    summary = summarize(config, rows)
    write_json(Path(out) / "summary.json", summary)
    write_text(Path(out) / "summary.md", summary_markdown(summary))
    return summary


# The columns of a summary: the detector, then every baseline a report may hold (series add IsolationForest).
WHO = ("model", "pca", "knn", "iforest", "matrix_profile")
WHO_TITLES = {"model": "AUROC", "pca": "PCA AUROC", "knn": "kNN AUROC", "iforest": "IForest AUROC", "matrix_profile": "MP AUROC"}


def _summary_row(k: int, name: str, report: dict) -> dict:
    t = report["training"]
    return {"class": k, "name": name, **{f"{who}_auroc": report[who]["auroc"] for who in WHO if who in report},
            "recall_at_5pct_fpr": report["model"].get("recall_at_fpr", {}).get("0.05", {}).get("recall"),
            "epochs_run": t["epochs_run"], "train_seconds": t["train_seconds"], "images_per_second": t["images_per_second"],
            "better_than_pca_on_val": report.get("checks", {}).get("better_than_pca")}


def _mean_min(rows: list[dict], key: str) -> tuple[float | None, float | None]:
    vals = [r[key] for r in rows if r.get(key) is not None]
    return (float(np.mean(vals)), float(np.min(vals))) if vals else (None, None)


def summarize(config: TrainConfig, rows: list[dict]) -> dict:
    """The all-classes summary: rows plus means and minima of each AUROC column, and the machine."""
    stats = {}
    for who in WHO:
        if any(f"{who}_auroc" in r for r in rows):
            stats[f"{who}_mean_auroc"], stats[f"{who}_min_auroc"] = _mean_min(rows, f"{who}_auroc")
    return {"model": config.model, "dataset": config.dataset, "score": config.score, "config": config.to_dict(),
            "classes": rows, **stats, "total_train_seconds": float(sum(r["train_seconds"] for r in rows)),
            "machine": runs.machine_info()}


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def summary_markdown(summary: dict) -> str:
    """The all-classes summary as a Markdown table."""
    who = [w for w in WHO if f"{w}_mean_auroc" in summary]
    lines = [f"# {summary['model']} ({summary['score']} score) on {summary['dataset']}: one detector per normal class", "",
             f"| class | name | {' | '.join(WHO_TITLES[w] for w in who)} | recall @5% FPR | epochs | train s | inputs/s |",
             "|---:|---|" + "---:|" * (len(who) + 4)]
    for r in summary["classes"]:
        ips = f"{r['images_per_second']:.0f}" if r["images_per_second"] else "-"
        cells = " | ".join(_fmt(r.get(f"{w}_auroc")) for w in who)
        lines.append(f"| {r['class']} | {r['name']} | {cells} | {_fmt(r.get('recall_at_5pct_fpr'), 3)} | {r['epochs_run']} | "
                     f"{r['train_seconds']:.1f} | {ips} |")
    for stat in ("mean", "min"):
        cells = " | ".join(f"**{_fmt(summary[f'{w}_{stat}_auroc'])}**" for w in who)
        lines.append(f"| **{stat}** | | {cells} | | | {summary['total_train_seconds']:.1f} |  |" if stat == "mean"
                     else f"| **{stat}** | | {cells} | | | | |")
    c, m = summary["config"], summary["machine"]
    lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores. Seed {c['seed']}, up to {c['epochs']} epochs "
              f"(at least {c['min_steps']} steps), batch {c['batch_size']}, lr {c['lr']}.", ""]
    return "\n".join(lines)
