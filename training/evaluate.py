"""Evaluation of a detector on the one-class protocol: metrics, the PCA baseline beside it, plots.

``evaluate_path`` (not ``evaluate``: that is this module's name in the package) accepts a run folder, a ``.keras`` model or a ``.tflite`` detector
bundle; training uses the same ``evaluate_detector`` so ``aezoo evaluate`` on a
run reproduces the numbers written at the end of training.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from edge.scoring import calibrate_threshold
from training import plots as _plots
from training.baselines import PCABaseline
from training.metrics import detection_metrics, format_metrics, roc_curve
from training.scoring import reconstruct, score
from zoo.errors import UserError
from zoo.files import write_json

# Images per class in the reconstruction grid; codes drawn in the latent plot.
GRID_IMAGES = 6
LATENT_IMAGES = 3000


def evaluate_detector(
    detector,
    split,
    threshold: float,
    *,
    score_kind: str = "mse",
    out_dir: str | os.PathLike | None = None,
    plots: bool = True,
    batch_size: int = 256,
    history: dict | None = None,
    label: str = "autoencoder",
    pca: PCABaseline | None = None,
) -> dict:
    """Score the test split, compute the protocol's metrics beside the PCA baseline, write them.

    Args:
        detector: a zoo ``keras.Model`` or an object with ``decision_function`` (e.g. ``edge.Detector``).
        split: a ``training.data.OneClassSplit``.
        threshold: the calibrated threshold (from normal validation data).
        score_kind: the score for a Keras model ("mse", "mae", "ssim", "elbo").
        out_dir: where metrics.json and plots/*.png go; nothing is written when None.
        plots: whether to draw the plots.
        batch_size: inference batch size.
        history: training history, for the training-curve plot.
        label: name of the detector in the report and legends.
        pca: a PCA baseline already fitted on this split (saves refitting it when
            several detectors of one split are evaluated). Defaults to fitting one.

    Returns:
        ``{"dataset", "normal_class", "normal_class_name", "score", "model": metrics, "pca": metrics, ...}``.
    """
    scores = score(detector, split.x_test, score_kind, batch_size=batch_size)
    names = list(split.class_names)
    m = detection_metrics(split.y_test, scores, threshold, test_labels=split.test_labels, class_names=names)
    pca = pca or PCABaseline().fit(split.x_train, split.x_val)
    pca_scores = pca.decision_function(split.x_test)
    pm = detection_metrics(split.y_test, pca_scores, pca.threshold_, test_labels=split.test_labels, class_names=names)
    pm["n_components"] = pca.n_components_
    report = {
        "dataset": split.dataset,
        "normal_class": int(split.normal_class),
        "normal_class_name": names[int(split.normal_class)],
        "detector": label,
        "score": score_kind if not hasattr(detector, "decision_function") else getattr(detector, "score_kind", score_kind),
        "model": m,
        "pca": pm,
    }
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_json(out_dir / "metrics.json", report)
        if plots:
            _write_plots(out_dir / "plots", detector, split, scores, threshold, pca, pca_scores, m, pm,
                         score_kind=report["score"], history=history, label=label, batch_size=batch_size)
    return report


def _write_plots(plot_dir: Path, detector, split, scores, threshold, pca, pca_scores, m, pm, *, score_kind, history, label, batch_size):
    names = list(split.class_names)
    what = f"{split.dataset}, normal class {split.normal_class} ({names[split.normal_class]})"
    _plots.score_histogram(plot_dir / "score_histogram.png", scores, split.y_test, threshold, score_name=score_kind,
                           title=f"{label} anomaly scores: {what}")
    _plots.roc_curves(plot_dir / "roc.png", {
        label: (*roc_curve(split.y_test, scores), m["auroc"]),
        f"PCA baseline ({pca.n_components_} components)": (*roc_curve(split.y_test, pca_scores), pm["auroc"]),
    }, title=f"ROC: {what}")
    if history:
        _plots.training_curves(plot_dir / "training_curves.png", history, best_epoch=history.get("best_epoch"),
                               title=f"Training: {what}")
    is_keras = hasattr(detector, "predict") and not hasattr(detector, "decision_function")
    if not (is_keras or hasattr(detector, "reconstruct")):
        return
    # The first test images of each kind: a fixed, label-independent choice of examples to show.
    normal_idx = np.flatnonzero(split.y_test == 0)[:GRID_IMAGES]
    anom_idx = []
    for c in range(len(names)):  # one image per anomalous class, so every class appears
        hits = np.flatnonzero((split.test_labels == c) & (split.y_test == 1))
        if len(hits):
            anom_idx.append(hits[0])
    anom_idx = np.array(anom_idx[: max(GRID_IMAGES, len(anom_idx))])
    idx = np.concatenate([normal_idx, anom_idx])
    rec = reconstruct(detector, split.x_test[idx], batch_size=batch_size)
    n = len(normal_idx)
    _plots.reconstructions(
        plot_dir / "reconstructions.png",
        (split.x_test[normal_idx], rec[:n], split.test_labels[normal_idx]),
        (split.x_test[anom_idx], rec[n:], split.test_labels[anom_idx]),
        class_names=names,
        title=f"{label}: normal (top) and anomalous (bottom) test images, {what}",
    )
    if is_keras:
        import zoo

        sel = np.linspace(0, len(split.x_test) - 1, min(LATENT_IMAGES, len(split.x_test))).astype(int)
        codes = zoo.encoder(detector).predict(split.x_test[sel], batch_size=batch_size, verbose=0)
        _plots.latent_space(plot_dir / "latent_space.png", codes, split.test_labels[sel], class_names=names,
                            normal_class=int(split.normal_class), title=f"{label} latent space: {what}")


def _kind_of_target(target: Path) -> str:
    if target.is_dir() and (target / "config.json").is_file():
        return "run"
    if target.is_dir() and (target / "detector.json").is_file():
        return "bundle"
    if target.is_file() and target.suffix == ".keras":
        return "keras"
    if target.is_dir() and (target / "model.keras").exists():
        return "run"
    raise UserError(
        "expected a run folder (with config.json), a .keras model file or a detector bundle directory "
        f"(with model.tflite and detector.json). Received: {target}"
    )


def evaluate_path(
    target: str | os.PathLike,
    *,
    dataset: str | None = None,
    normal_class: int | None = None,
    data_dir: str | None = None,
    out: str | os.PathLike | None = None,
    score_kind: str | None = None,
    batch_size: int = 256,
    plots: bool = True,
    split=None,
    verbose: bool = True,
) -> dict:
    """Evaluate a run folder, a ``.keras`` model or a ``.tflite`` detector bundle; write and return the metrics.

    Args:
        target: the run folder, ``.keras`` file or bundle directory.
        dataset: defaults to the run's dataset ("fashion_mnist" otherwise).
        normal_class: defaults to the run's normal class; required otherwise.
        data_dir: a data directory for the dataset loader.
        out: where metrics.json and plots/ go. Defaults to ``<run>/evaluation`` for a run,
            ``<name>-evaluation`` beside a model file or bundle.
        score_kind: for Keras models; defaults to the run's score or "mse".
        batch_size: inference batch size. Defaults to 256.
        plots: draw the plots. Defaults to True.
        split: a prepared ``OneClassSplit`` (skips loading the data).
        verbose: print the metrics. Defaults to True.

    Returns:
        The report written to ``out/metrics.json`` (see :func:`evaluate_detector`).
    """
    from training.fit import load_run

    target = Path(target)
    if not target.exists():
        raise UserError(f"expected an existing run folder, .keras file or bundle directory. Received: {target}")
    kind = _kind_of_target(target)
    history = None
    threshold_file = None
    if kind == "run":
        detector, config, thr = load_run(target)
        if config.all_classes:
            raise UserError(f"{target} was trained on all classes (--all-classes-one-model): it has no normal class to "
                            "detect against; its reconstruction metrics are in its metrics.json. Expected a run of one normal class.")
        dataset = dataset or config.dataset
        normal_class = config.normal_class if normal_class is None else normal_class
        data_dir = data_dir or config.data_dir
        score_kind = score_kind or thr.get("score", config.score)
        threshold = float(thr["value"]) if score_kind == thr.get("score") else None
        default_out = target / "evaluation"
        hist_file = target / "history.json"
        history = json.loads(hist_file.read_text()) if hist_file.is_file() else None
        label = config.model
    elif kind == "keras":
        import zoo

        detector = zoo.load_model(target)
        threshold_file = target.with_name("threshold.json")
        threshold = None
        if threshold_file.is_file():
            thr = json.loads(threshold_file.read_text())
            score_kind = score_kind or thr.get("score", "mse")
            threshold = float(thr["value"]) if thr.get("score") == score_kind else None
        default_out = target.with_name(target.stem + "-evaluation")
        label = detector.name
    else:
        import edge

        detector = edge.Detector.load(target)
        threshold = float(detector.threshold_)
        if score_kind not in (None, detector.score_kind):
            raise UserError(f"a bundle's score is fixed when it is exported. Received: --score {score_kind} for a bundle scoring {detector.score_kind!r}")
        score_kind = detector.score_kind
        default_out = target.with_name(target.name + "-evaluation")
        label = f"{target.name} (TFLite)"
    score_kind = score_kind or "mse"
    if normal_class is None:
        raise UserError(f"--normal-class is required to evaluate a {kind} (only a run folder records it). Received: none")
    if split is None:
        from training.fit import check_data_args, load_one_class_split

        dataset = dataset or "fashion_mnist"
        check_data_args(dataset, normal_class, data_dir)
        split = load_one_class_split(dataset, normal_class, data_dir)
    if threshold is None:
        # No threshold stored for this score: calibrate one on the normal validation images only.
        threshold = calibrate_threshold(score(detector, split.x_val, score_kind, batch_size=batch_size))
        warnings.warn(f"no stored threshold for score {score_kind!r}: calibrated the 99th percentile of the normal validation scores ({threshold:.6g})")
    report = evaluate_detector(detector, split, threshold, score_kind=score_kind, out_dir=Path(out) if out else default_out,
                               plots=plots, batch_size=batch_size, history=history, label=label)
    report["target"] = str(target)
    write_json(Path(out or default_out) / "metrics.json", report)
    if verbose:
        print(format_report(report))
        print(f"wrote {Path(out or default_out) / 'metrics.json'}")
    return report


def format_report(report: dict) -> str:
    """Return the model's and PCA's metrics as text."""
    head = f"{report['dataset']}, normal class {report['normal_class']} ({report['normal_class_name']}), score {report['score']}"
    return "\n".join([
        head,
        format_metrics(report["model"], title=f"{report.get('detector', 'model')}:"),
        format_metrics({k: v for k, v in report["pca"].items() if k != "per_class"},
                       title=f"PCA baseline ({report['pca'].get('n_components', '?')} components):"),
    ])
