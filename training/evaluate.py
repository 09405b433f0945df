"""Evaluation on the one-class protocol: any detector beside the PCA and kNN baselines, metrics, plots.

Every detector here answers the same calls (``decision_function``, ``threshold_``,
``reconstruct``, ``score_kind``): ``AutoencoderDetector``, ``edge.Detector`` and the
baselines alike, so nothing below asks which kind it has. ``evaluate_path`` (the code
of ``aezoo evaluate``) loads a run folder, a ``.keras`` model or a detector bundle.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import zoo
from training import plots as _plots
from training.baselines import fit_baselines
from training.metrics import detection_metrics, format_metrics, recording_metrics, roc_curve
from zoo.errors import UserError
from zoo.files import write_json

# Images per class in the reconstruction grid; codes drawn in the latent plot.
GRID_IMAGES = 6
LATENT_IMAGES = 3000
NO_TEST = "the data has no labelled test split with normal and anomalous inputs"


class OnDevice:
    """An ``edge.Detector`` answering in the split's terms: it takes model inputs (standardized vectors and windows, as
    the split holds them) and hands the device the raw values it would read, so the bundle's own preprocessing runs."""

    def __init__(self, detector: Any):
        self.detector = detector
        self.threshold_ = detector.threshold_
        self.score_kind = detector.score_kind

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """The device's scores of model inputs ``x``."""
        return self.detector.score(self.detector.input.to_device(np.asarray(x, np.float32)))

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """The device's reconstructions of model inputs ``x`` (in model units)."""
        return self.detector.reconstruct(self.detector.input.to_device(np.asarray(x, np.float32)))


def unit_scores(detector: Any, split: Any, part: str = "test") -> np.ndarray:
    """The detector's scores of what the protocol scores in ``part``: inputs, or for series the series or samples."""
    return split.unit_scores(detector.decision_function(split.x_test if part == "test" else split.x_val), part)


def metrics_of(detector: Any, split: Any) -> dict:
    """The protocol's metrics of one detector on ``split``'s test units (recall at FPR from its validation scores).

    For a recording, also the event-level metrics and the UCR archive's location rule.
    """
    if not split.has_test:
        return {"auroc": None, "auprc": None, "undefined_because": NO_TEST, "threshold": float(detector.threshold_)}
    windows = detector.decision_function(split.x_test)
    scores = split.unit_scores(windows, "test")
    out = detection_metrics(split.y_test, scores, detector.threshold_, val_scores=unit_scores(detector, split, "val"),
                            test_labels=split.test_labels, class_names=list(split.class_names))
    if split.units is not None and split.units.how == "points":
        out.update(recording_metrics(split.y_test, scores, detector.threshold_, split.units.location(windows)))
    return out


def evaluate_split(detector: Any, split: Any, *, baselines: dict | None = None, out_dir: str | os.PathLike | None = None,
                   plots: bool = True, history: dict | None = None, label: str = "autoencoder") -> dict:
    """Score the test split with ``detector`` and the baselines; write metrics.json and plots to ``out_dir``.

    Args:
        detector: anything with ``decision_function``, ``threshold_`` and ``score_kind``.
        split: a ``training.data.OneClassSplit``.
        baselines: fitted baselines by name (``training.baselines.fit_baselines``); fitted here when None.
        out_dir: where metrics.json and plots/*.png go; nothing is written when None.
        plots: draw the plots. history: training history, for the training-curve plot.
        label: the detector's name in the report and legends.

    Returns:
        ``{"dataset", "normal_class", "normal_class_name", "detector", "score", "model": metrics,
        "pca": metrics, "knn": metrics}`` (series: also "iforest", recordings: "matrix_profile"), and for
        series the window, hop and aggregation under "series".
    """
    baselines = baselines if baselines is not None else fit_baselines(split.x_train, split.x_val, split.units)
    names = list(split.class_names)
    report = {"dataset": split.dataset, "normal_class": int(split.normal_class), "normal_class_name": names[split.normal_class],
              "detector": label, "score": detector.score_kind, "model": metrics_of(detector, split)}
    for name, baseline in baselines.items():
        report[name] = metrics_of(baseline, split)
        if hasattr(baseline, "n_components_"):
            report[name]["n_components"] = baseline.n_components_
    if split.units is not None:
        pre = split.preprocessing
        report["series"] = {k: pre[k] for k in ("form", "window", "hop", "window_rule", "train_stride", "aggregate")}
        report["series"]["unit"] = "series" if split.units.how == "series" else "sample"
    if out_dir is not None:
        write_json(Path(out_dir) / "metrics.json", report)
        if plots:
            _write_plots(Path(out_dir) / "plots", detector, split, baselines, report, history=history, label=label)
    return report


def training_checks(detector: Any, pca: Any, split: Any, history: dict) -> dict:
    """Checks that need no anomalies: does the autoencoder reconstruct normal validation data better than a
    PCA with as many components as its code; did training finish?

    ``pca`` is the fitted PCA baseline; its components are nested, so its first k are the k-component PCA
    (k = the code size, at most the baseline's components). A PCA with the baseline's 90% of the variance
    keeps several times more numbers than the code, so it is not the fair yardstick of a reconstruction.
    Returns ``{"val_mse", "code_size", "pca_components", "pca_val_mse", "better_than_pca", "still_improving",
    "warnings": [...]}``;
    each warning says plainly what is wrong and what to try.
    """
    x = split.x_val
    axes = tuple(range(1, x.ndim))
    ae = float(np.mean(np.square(detector.reconstruct(x) - x), axis=axes).mean())
    code = int(np.prod(detector.encode(x[:1]).shape[1:]))
    components = pca.pca_.components_[:code]
    k = len(components)
    centered = x.reshape(len(x), -1) - pca.pca_.mean_
    pc = float(np.mean(np.square(centered @ components.T @ components - centered)))
    warnings_ = []
    if not ae < pc:
        warnings_.append(f"the autoencoder reconstructs the normal validation data worse than a PCA with as many "
                         f"components as its code ({k}): {ae:.5g} vs {pc:.5g} mean squared error. Try more steps "
                         "(--epochs, --min-steps), another learning rate (--lr) or another variant (`aezoo models`).")
    if history.get("still_improving"):
        b = history.get("budget", {})
        warnings_.append(f"the validation loss was still falling when the budget ended ({history.get('epochs_run')} epochs, "
                         f"{history.get('steps_run')} steps, at most {b.get('max_epochs')} epochs): a longer budget "
                         "(--epochs) would likely give a better model.")
    return {"val_mse": ae, "code_size": code, "pca_components": k, "pca_val_mse": pc, "better_than_pca": ae < pc,
            "still_improving": bool(history.get("still_improving")), "warnings": warnings_}


def _write_plots(plot_dir: Path, detector: Any, split: Any, baselines: dict, report: dict, *, history: dict | None,
                 label: str) -> None:
    names = list(split.class_names)
    what = f"{Path(split.dataset).name}, normal class {split.normal_class} ({names[split.normal_class]})"
    if history:
        _plots.training_curves(plot_dir / "training_curves.png", history, best_epoch=history.get("best_epoch"),
                               title=f"Training: {what}")
    if not split.has_test:
        return
    scores = unit_scores(detector, split)
    if split.units is not None and split.units.signal is not None:
        _plots.signal_scores(plot_dir / "signal_scores.png", split.units.signal, scores, split.y_test, detector.threshold_,
                             title=f"{label} on the test recording: {Path(split.dataset).name}")
    _plots.score_histogram(plot_dir / "score_histogram.png", scores, split.y_test, detector.threshold_,
                           score_name=detector.score_kind, title=f"{label} anomaly scores: {what}")
    curves = {label: (*roc_curve(split.y_test, scores), report["model"]["auroc"])}
    for name, baseline in baselines.items():
        curves[f"{baseline.name} baseline"] = (*roc_curve(split.y_test, unit_scores(baseline, split)), report[name]["auroc"])
    _plots.roc_curves(plot_dir / "roc.png", curves, title=f"ROC: {what}")
    if split.x_test.ndim != 4:
        return
    normal_idx, anom_idx = _example_indices(split)
    idx = np.concatenate([normal_idx, anom_idx])
    rec = detector.reconstruct(split.x_test[idx])
    n = len(normal_idx)
    _plots.reconstructions(plot_dir / "reconstructions.png",
                           (split.x_test[normal_idx], rec[:n], split.test_labels[normal_idx]),
                           (split.x_test[anom_idx], rec[n:], split.test_labels[anom_idx]), class_names=names,
                           title=f"{label}: normal (top) and anomalous (bottom) test images, {what}")
    if hasattr(detector, "encode"):
        sel = np.linspace(0, len(split.x_test) - 1, min(LATENT_IMAGES, len(split.x_test))).astype(int)
        _plots.latent_space(plot_dir / "latent_space.png", detector.encode(split.x_test[sel]), split.test_labels[sel],
                            class_names=names, normal_class=int(split.normal_class), title=f"{label} latent space: {what}")


def _example_indices(split: Any) -> tuple[np.ndarray, np.ndarray]:
    """The first normal test images and the first image of each anomalous class: a label-free, fixed choice."""
    normal_idx = np.flatnonzero(split.y_test == 0)[:GRID_IMAGES]
    anom = [np.flatnonzero((split.test_labels == c) & (split.y_test == 1))[:1] for c in range(len(split.class_names))]
    anom_idx = np.concatenate([a for a in anom if len(a)] or [np.empty(0, int)])
    return normal_idx, anom_idx.astype(int)


def _load_target(target: Path, score_kind: str | None) -> tuple[Any, dict, str, Path]:
    """(detector, dataset arguments, label, default output folder) of a run, a .keras file or a bundle."""
    from training.detector import load_run
    from training.runs import Run

    if target.is_dir() and Run(target).exists():
        detector, config = load_run(target)
        if config.all_classes:
            raise UserError(f"{target} was trained on all classes (--all-classes-one-model): it has no normal class to "
                            "detect against; its reconstruction metrics are in its metrics.json. Expected a run of one normal class.")
        defaults = {"dataset": config.data_source(), "normal_class": config.normal_class}
        return detector, defaults, config.model, target / "evaluation"
    if target.is_dir() and (target / "detector.json").is_file():
        import edge

        from training.data import Source

        detector = edge.Detector.load(target)
        prov = detector.spec.get("provenance", {})
        source = {k: tuple(v) if isinstance(v, list) else v  # JSON lists: a Source is hashable (image_size)
                  for k, v in (prov.get("source") if isinstance(prov.get("source"), dict) else {}).items()}
        dataset = Source(prov["dataset"], **source) if isinstance(prov.get("dataset"), str) and source else prov.get("dataset")
        defaults = {"dataset": dataset, "normal_class": prov.get("normal_class")}
        return OnDevice(detector), defaults, f"{target.name} (TFLite)", target.with_name(target.name + "-evaluation")
    if target.is_file() and target.suffix == ".keras":
        from training.detector import AutoencoderDetector

        detector = AutoencoderDetector(network=_load_keras(target), score=score_kind or "mse")
        return detector, {}, target.stem, target.with_name(target.stem + "-evaluation")
    raise UserError("expected a run folder (with config.json), a .keras model file or a detector bundle directory "
                    f"(with model.tflite and detector.json). Received: {target}")


def _load_keras(path: Path) -> Any:
    return zoo.load_model(path)


def evaluate_path(target: str | os.PathLike, *, dataset: Any = None, normal_class: int | None = None,
                  data_dir: str | None = None, out: str | os.PathLike | None = None, score_kind: str | None = None,
                  plots: bool = True, split: Any = None, verbose: bool = True) -> dict:
    """Evaluate a run folder, a ``.keras`` model or a detector bundle beside PCA and kNN; write and return the metrics.

    A run and a bundle carry their score and threshold. A bare ``.keras`` model is scored
    with ``score_kind`` (default "mse"), its score and threshold fitted on the split's
    normal training and validation images first. The dataset and normal class default
    to what the run or bundle records.
    """
    from training import data

    target = Path(target)
    if not target.exists():
        raise UserError(f"expected an existing run folder, .keras file or bundle directory. Received: {target}")
    detector, defaults, label, default_out = _load_target(target, score_kind)
    if score_kind not in (None, detector.score_kind):
        raise UserError(f"{target} scores with {detector.score_kind!r}; its score is fixed when it is trained or exported. "
                        f"Received: --score {score_kind}")
    normal_class = defaults.get("normal_class") if normal_class is None else normal_class
    if normal_class is None:
        raise UserError(f"--normal-class is required to evaluate {target} (it does not record one). Received: none")
    if split is None:
        source = data.as_source(dataset or defaults.get("dataset") or "fashion_mnist", data_dir)
        split = data.one_class_split(source, normal_class)
    if not hasattr(detector, "threshold_"):
        warnings.warn(f"{target.name} has no stored score or threshold: fitting the {detector.score_kind!r} score on the "
                      "normal training images and the threshold on the normal validation images")
        detector.calibrate(split.x_train, split.x_val)
    out_dir = Path(out) if out else default_out
    report = evaluate_split(detector, split, out_dir=out_dir, plots=plots, label=label)
    report["target"] = str(target)
    write_json(out_dir / "metrics.json", report)
    if verbose:
        print(format_report(report))
        print(f"wrote {out_dir / 'metrics.json'}")
    return report


def format_report(report: dict) -> str:
    """The detector's and the baselines' metrics as text."""
    head = f"{report['dataset']}, normal class {report['normal_class']} ({report['normal_class_name']}), score {report['score']}"
    if "series" in report:
        s = report["series"]
        head += (f"; windows of {s['window']} samples every {s['hop']} ({s['window_rule']}), scored per {s['unit']}"
                 + (f" ({s['aggregate']} of its windows)" if s["unit"] == "series" else " (largest covering window)"))
    lines = [head, format_metrics(report["model"], title=f"{report.get('detector', 'model')}:")]
    for name, title in BASELINE_TITLES.items():
        if name in report:
            title = title.format(n=report[name].get("n_components", "?"))
            lines.append(format_metrics({k: v for k, v in report[name].items() if k != "per_class"}, title=title))
    beaten = [n for n in BASELINE_TITLES if n in report and (report[n].get("auroc") or 0) >= (report["model"].get("auroc") or 1)]
    if beaten and report["model"].get("auroc") is not None:
        lines.append(f"NOTE: the detector does not beat {', '.join(beaten)} on AUROC here.")
    return "\n".join(lines)


BASELINE_TITLES = {"pca": "PCA baseline ({n} components):", "knn": "kNN baseline (distance to the 5th nearest normal training input):",
                   "iforest": "IsolationForest baseline (200 trees):",
                   "matrix_profile": "matrix-profile discord (AB-join against the normal training recording):"}


def reconstruction_report(model: Any, split: Any, *, out_dir: str | os.PathLike | None = None, plots: bool = True,
                          history: dict | None = None, label: str = "autoencoder") -> dict:
    """What a run trained on all classes reports instead of anomaly metrics.

    Reconstruction MSE/PSNR/SSIM on the validation hold-out and the test split, beside
    PCA of the same code size fitted on the same training images. Plots: training
    curves, the latent space of test codes, and prior samples of a VAE.
    """
    from training import generate
    from training.representation import ModelCodec, PCACodec, reconstruction_quality

    codec = ModelCodec(model)
    pca = PCACodec(codec.latent_dim).fit(split.x_train)
    parts = [(part, x) for part, x in (("val", split.x_val), ("test", split.x_test)) if len(x)]
    report = {"dataset": split.dataset, "all_classes": True, "detector": label, "latent_dim": codec.latent_dim,
              "model": {part: reconstruction_quality(x, codec.decode(codec.encode(x))) for part, x in parts},
              "pca": {part: reconstruction_quality(x, pca.decode(pca.encode(x))) for part, x in parts}}
    if out_dir is not None and plots:
        plot_dir = Path(out_dir) / "plots"
        what = f"{Path(split.dataset).name}, all classes"
        if history:
            _plots.training_curves(plot_dir / "training_curves.png", history, best_epoch=history.get("best_epoch"),
                                   title=f"Training: {what}")
        if len(split.x_test) and split.x_test.ndim == 4:
            sel = np.linspace(0, len(split.x_test) - 1, min(LATENT_IMAGES, len(split.x_test))).astype(int)
            _plots.latent_space(plot_dir / "latent_space.png", codec.encode(split.x_test[sel]), split.test_labels[sel],
                                class_names=split.class_names, title=f"{label} latent space (no labels used): {what}")
        if zoo.is_variational(model) and split.x_train.ndim == 4:
            generate.sample_grid(model, plot_dir / "samples.png", n=64, title=f"{label}: 64 draws from the prior")
    return report


def format_reconstruction_report(report: dict) -> str:
    """The all-classes report as a few lines of text."""
    lines = [f"{report['detector']} on {report['dataset']} (all classes, latent_dim {report['latent_dim']})"]
    for who in ("model", "pca"):
        name = report["detector"] if who == "model" else f"PCA, {report['latent_dim']} components"
        for part, q in report[who].items():
            lines.append(f"  {name:<28} {part:<4} MSE {q['mse']:.5f}  PSNR {q['psnr']:.2f} dB  SSIM {q['ssim']:.3f}")
    return "\n".join(lines)
