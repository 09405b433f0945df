"""One pretrained entry end to end, and the zoo build that repeats it over models and classes.

``run_entry`` is the single journey of an entry: train (``training.train``) ->
QAT fine-tune (``training.compress``) -> export the int8 detector bundle
(``edge.convert.export_model``) -> evaluate the float model, the QAT model, the
int8 detector and PCA on the same split with ``training.evaluate.evaluate_detector``
(the code path of ``aezoo evaluate``). ``aezoo zoo build`` and ``aezoo demo`` both
call it.

Time budget: the whole zoo (6 variants x 10 classes) must build in well under an
hour on a 2-core CPU, so an entry gets about ``BUDGET_SECONDS_PER_ENTRY`` = 45 s.
``ZOO_EPOCHS``, ``ZOO_PATIENCE`` and ``QAT_EPOCHS`` were set from that budget
(measured epoch times, not test metrics) and are the same for every variant and class.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo import pretrained
from zoo.errors import UserError
from zoo.files import atomic_path, write_json

BUDGET_SECONDS_PER_ENTRY = 45
# Measured for conv_ae, class 0, on the shared 2-core machine: about 1 s per training epoch
# on the 5,400 normal images, 5 s per QAT epoch (graph building included), about 25 s for
# the rest (float/QAT/int8 evaluations, each refitting PCA, export, latency): 51 s in all
# under a load of 4-5, so 15 epochs is what fits the budget on an idle machine.
ZOO_EPOCHS = 15
ZOO_PATIENCE = 3
QAT_EPOCHS = 2
LATENCY_ITERATIONS = 300
LATENCY_WARMUP = 20
DEFAULT_RUNS = Path("runs") / "zoo_build"

HYPERPARAMETER_SELECTION = (
    "Chosen once per variant for all normal classes, before any test evaluation: the variant's default "
    "arguments (zoo.config_for(model)), the training defaults of training.TrainConfig (Adam lr 1e-3, batch 128, "
    "mse score, threshold at the 99th percentile of the normal validation scores), and epochs / early-stopping "
    "patience / QAT epochs set from the time budget of {budget} s per entry on a 2-core CPU (the 60-entry zoo "
    "builds in under an hour). Early stopping and both thresholds use only the normal validation images; "
    "test labels chose nothing."
)


def _seconds_since(t0: float) -> float:
    return round(time.perf_counter() - t0, 3)


def batch1_latency_us(detector, images: np.ndarray, *, iterations: int = LATENCY_ITERATIONS) -> dict:
    """Median and 90th percentile time of ``detector.score`` on one image, in microseconds.

    Goes through ``edge.Detector`` (preprocessing checks, quantization, scoring), as a
    device would, cycling over ``images`` after ``LATENCY_WARMUP`` untimed calls.
    """
    n = len(images)
    for i in range(LATENCY_WARMUP):
        detector.score(images[i % n : i % n + 1])
    times = np.empty(iterations)
    for i in range(iterations):
        x = images[i % n : i % n + 1]
        t0 = time.perf_counter_ns()
        detector.score(x)
        times[i] = time.perf_counter_ns() - t0
    return {"median_us": float(np.median(times) / 1e3), "p90_us": float(np.percentile(times, 90) / 1e3),
            "iterations": int(iterations), "batch": 1, "num_threads": int(getattr(detector, "num_threads", 1)),
            "through": "edge.Detector.score"}


def _compact(report: dict) -> dict:
    keep = ("auroc", "auprc", "precision", "recall", "f1", "fpr", "threshold")
    out = {k: report[k] for k in keep}
    if "n_components" in report:
        out["n_components"] = report["n_components"]
    return out


def _train_or_resume(config, run_dir: Path, split, *, plots: bool, verbose) -> tuple[Any, dict, dict, dict, str]:
    """(model, threshold, float report, history, how) for the run folder, training only what is missing."""
    from training.fit import load_run, train

    state = run_dir / "checkpoints" / "state.json"
    finished = state.is_file() and json.loads(state.read_text()).get("finished", False)
    if finished and (run_dir / "metrics.json").is_file():
        model, saved, threshold = load_run(run_dir)
        if saved != config:
            diff = {k: (v, config.to_dict()[k]) for k, v in saved.to_dict().items() if v != config.to_dict()[k]}
            raise UserError(f"the finished run in {run_dir} was trained with other settings (saved, requested): {diff}. "
                            "Delete that folder to retrain it, or give another runs folder.")
        report = json.loads((run_dir / "metrics.json").read_text())
        history = json.loads((run_dir / "history.json").read_text())
        return model, threshold, report, history, "reused finished run"
    resume = (run_dir / "config.json").is_file()
    result = train(config, out=run_dir, resume=resume, split=split, verbose=verbose, plots=plots)
    return result.model, result.threshold, result.metrics, result.history, "resumed" if resume else "trained"


def run_entry(
    model_name: str,
    dataset: str,
    normal_class: int,
    out_dir: str | os.PathLike,
    *,
    epochs: int = ZOO_EPOCHS,
    seed: int = 0,
    patience: int = ZOO_PATIENCE,
    qat_epochs: int = QAT_EPOCHS,
    run_dir: str | os.PathLike | None = None,
    data_dir: str | None = None,
    split=None,
    plots: bool = False,
    verbose: int | str = 0,
    latency_iterations: int = LATENCY_ITERATIONS,
) -> dict:
    """Train, QAT fine-tune, export and evaluate one entry; write it to ``out_dir``.

    ``out_dir`` receives ``model.keras`` (the trained float model, without optimizer
    state), ``detector/`` (the int8 bundle exported from the QAT model) and ``card.json``.
    The training run folder (checkpoints, logs, plots) goes to ``run_dir``: an
    unfinished run there is resumed and a finished one reused.

    Args:
        model_name: a zoo variant (``zoo.list_models()``), built with its default arguments.
        dataset: "fashion_mnist" (or another ``training.data`` dataset).
        normal_class: the normal class id.
        out_dir: the entry folder to write.
        epochs: maximum training epochs. Defaults to ``ZOO_EPOCHS`` (the time budget).
        seed: training and fine-tuning seed. Defaults to 0.
        patience: early-stopping patience. Defaults to ``ZOO_PATIENCE``.
        qat_epochs: QAT fine-tuning epochs. Defaults to ``QAT_EPOCHS``.
        run_dir: the training run folder (kept out of saved_models). Defaults to
            ``runs/zoo_build/<model>/<dataset>/class_<k>``.
        data_dir: TFDS data directory.
        split: a prepared ``OneClassSplit`` for ``normal_class`` (skips loading).
        plots: draw the training and evaluation plots (into ``run_dir``). Defaults to False.
        verbose: Keras ``fit`` verbosity. Defaults to 0.
        latency_iterations: timed batch-1 calls of the int8 detector. Defaults to 300.

    Returns:
        The entry's record: what ``zoo.pretrained.record_entry`` writes into
        manifest.json (metrics, threshold, size, latency, timing, hyperparameters,
        file sha256s...), plus ``"reports"``: the four full evaluation reports.
    """
    from edge.convert import export_model
    from edge.detector import Detector
    from edge.scoring import calibrate_threshold
    from training.compress import CompressConfig, compress
    from training.baselines import PCABaseline
    from training.evaluate import evaluate_detector
    from training.fit import TrainConfig, _machine, load_one_class_split
    from training.scoring import score
    import zoo

    t_entry = time.perf_counter()
    out_dir = Path(out_dir)
    run_dir = Path(run_dir) if run_dir is not None else DEFAULT_RUNS / model_name / str(dataset) / f"class_{normal_class}"
    config = TrainConfig(model=model_name, dataset=dataset, normal_class=int(normal_class), data_dir=data_dir, seed=seed,
                         epochs=epochs, patience=patience).validate()
    if split is None:
        split = load_one_class_split(dataset, normal_class, data_dir)
    elif int(split.normal_class) != int(normal_class) or split.dataset != dataset:
        raise UserError(f"split is for {split.dataset} class {split.normal_class}. Received: dataset={dataset!r}, normal_class={normal_class}")
    timing: dict[str, float] = {}

    t0 = time.perf_counter()
    model, threshold, float_report, history, how = _train_or_resume(config, run_dir, split, plots=plots, verbose=verbose)
    timing["train_session_seconds"] = _seconds_since(t0)
    timing["train_seconds"] = round(float(history["train_seconds"]), 3)

    t0 = time.perf_counter()
    qat_config = CompressConfig(method="qat", epochs=qat_epochs, seed=seed, batch_size=config.batch_size)
    qat, _ = compress(model, split.x_train, split.x_val, qat_config, verbose=verbose)
    timing["qat_seconds"] = _seconds_since(t0)

    t0 = time.perf_counter()
    # The QAT model's own threshold, calibrated as training calibrates the float one.
    qat_val = score(qat, split.x_val, config.score)
    qat_threshold = calibrate_threshold(qat_val, config.threshold_method, percentile=config.percentile, k=config.k)
    pca = PCABaseline().fit(split.x_train, split.x_val)
    qat_report = evaluate_detector(qat, split, qat_threshold, score_kind=config.score, out_dir=run_dir / "qat",
                                   plots=plots, label=f"{model_name} QAT (Keras)", pca=pca)
    timing["qat_eval_seconds"] = _seconds_since(t0)

    t0 = time.perf_counter()
    names = list(split.class_names)
    provenance = {"run": str(run_dir), "dataset": dataset, "normal_class": int(normal_class),
                  "normal_class_name": names[int(normal_class)], "seed": seed, "model": model_name, "params": config.params,
                  "epochs": epochs, "compression": qat_config.to_dict(), "run_threshold": threshold}
    bundle = export_model(qat, out_dir / "detector", quant="int8", x_train=split.x_train, x_val=split.x_val,
                          threshold={**threshold, "percentile": config.percentile, "k": config.k},
                          class_names=names, provenance=provenance)
    # The float model as trained (best weights), without optimizer state: a third of the bytes.
    float_model = zoo.load_model(run_dir / "model.keras")
    with atomic_path(out_dir / "model.keras") as tmp:
        float_model.save(str(tmp))
    timing["export_seconds"] = _seconds_since(t0)

    t0 = time.perf_counter()
    detector = Detector.load(bundle)
    int8_report = evaluate_detector(detector, split, detector.threshold_, score_kind=detector.score_kind,
                                    out_dir=run_dir / "int8", plots=plots, label=f"{model_name} int8 (TFLite)", pca=pca)
    timing["int8_eval_seconds"] = _seconds_since(t0)
    t0 = time.perf_counter()
    latency = batch1_latency_us(detector, split.x_test, iterations=latency_iterations)
    t1 = time.perf_counter()
    detector.score(split.x_test)
    throughput = len(split.x_test) / (time.perf_counter() - t1)
    timing["latency_seconds"] = _seconds_since(t0)
    timing["entry_seconds"] = _seconds_since(t_entry)

    tflite = (bundle / "model.tflite").read_bytes()
    model_params = zoo.config_for(model_name, input_shape=tuple(split.x_train.shape[1:]), **config.params).to_dict()
    record = {
        "model": model_name,
        "dataset": dataset,
        "normal_class": int(normal_class),
        "normal_class_name": names[int(normal_class)],
        "path": pretrained.entry_key(model_name, dataset, normal_class),
        "metrics": {"float": _compact(float_report["model"]), "qat": _compact(qat_report["model"]),
                    "int8": _compact(int8_report["model"]), "pca": _compact(float_report["pca"])},
        "threshold": {"int8": detector.spec["threshold"], "float": threshold, "qat": qat_threshold},
        "size": {"tflite_bytes": len(tflite), "tflite_gzip_bytes": len(gzip.compress(tflite, 9)),
                 "keras_bytes": (out_dir / "model.keras").stat().st_size, "parameters": int(float_model.count_params())},
        "latency": latency,
        "throughput_images_per_second": round(throughput, 1),
        "training": {"how": how, "epochs_run": history["epochs_run"], "best_epoch": history["best_epoch"],
                     "stopped_early": history["stopped_early"], "n_train": int(len(split.x_train)),
                     "n_val": int(len(split.x_val)), "images_per_second": history["images_per_second"]},
        "timing": timing,
        "seed": seed,
        "hyperparameters": {"model": model_params, "train": {k: v for k, v in config.to_dict().items()
                                                                if k not in ("model", "dataset", "normal_class", "data_dir")},
                            "qat": qat_config.to_dict()},
        "hyperparameter_selection": HYPERPARAMETER_SELECTION.format(budget=BUDGET_SECONDS_PER_ENTRY),
        "budget_seconds_per_entry": BUDGET_SECONDS_PER_ENTRY,
        "protocol": "PROTOCOL.md one-class: train on 90% of the normal class's train images, choose on the other 10%, "
                    "test on all 10,000 test images (anomaly = any other class)",
        "versions": pretrained.package_versions(),
        "machine": _machine(),
    }
    card = {**record, "description": f"{model_name} trained on {dataset} class {normal_class} "
                                     f"({names[int(normal_class)]}) as the normal class; int8 detector from QAT.",
            "per_class": {"int8": int8_report["model"].get("per_class"), "float": float_report["model"].get("per_class")},
            "usage": {"keras": f"zoo.load({model_name!r}, dataset={dataset!r}, normal_class={int(normal_class)})",
                      "edge": f"edge.Detector.from_zoo({model_name!r}, dataset={dataset!r}, normal_class={int(normal_class)})"}}
    write_json(out_dir / "card.json", card)
    record["files"] = pretrained.file_records(out_dir)
    record["reports"] = {"float": float_report, "qat": qat_report, "int8": int8_report}
    return record


def build_zoo(
    dataset: str = "fashion_mnist",
    *,
    models: Sequence[str] | None = None,
    classes: Sequence[int] | None = None,
    epochs: int = ZOO_EPOCHS,
    patience: int = ZOO_PATIENCE,
    qat_epochs: int = QAT_EPOCHS,
    seed: int = 0,
    runs: str | os.PathLike = DEFAULT_RUNS,
    root: str | os.PathLike | None = None,
    data_dir: str | None = None,
    force: bool = False,
    verbose: int | str = 0,
) -> dict:
    """Build (or finish building) the pretrained zoo: ``run_entry`` for every model x normal class.

    Entries already in the manifest whose files verify are skipped; an entry whose
    training run is unfinished in ``runs`` resumes it. The manifest is rewritten after
    every entry, so an interruption loses at most the entry in progress.

    Args:
        dataset: the dataset. Defaults to "fashion_mnist".
        models: variant names. Defaults to every registered variant.
        classes: normal classes. Defaults to all of the dataset's classes.
        epochs, patience, qat_epochs, seed: as in :func:`run_entry`.
        runs: where the training run folders go (kept for resuming, never in saved_models).
        root: the saved_models folder. Defaults to ``zoo.pretrained.saved_models_dir()``.
        data_dir: TFDS data directory.
        force: rebuild entries that are already complete.
        verbose: Keras ``fit`` verbosity. Defaults to 0 (the tqdm bars show progress).

    Returns:
        ``{"built": [...keys], "skipped": [...keys], "seconds": float, "root": str}``.
    """
    from tqdm.auto import tqdm

    import zoo
    from training import data
    from training.fit import check_data_args

    root = pretrained.saved_models_dir(root)
    models = list(models) if models else zoo.list_models()
    for name in models:
        zoo.model_info(name)  # unknown names fail before any training
    names = data.class_names(dataset)
    classes = list(range(len(names))) if classes is None else [int(k) for k in classes]
    for k in classes:
        check_data_args(dataset, k, data_dir)
    t_build = time.perf_counter()
    built, skipped = [], []
    bar = tqdm(total=len(models) * len(classes), desc=f"zoo build {dataset}", unit="entry")
    for k in classes:
        split = None
        for name in models:
            key = pretrained.entry_key(name, dataset, k)
            bar.set_postfix_str(f"{name} class {k} ({names[k]})")
            if not force and not pretrained.check_entry(key, root):
                skipped.append(key)
                bar.update(1)
                continue
            if split is None:
                split = data.one_class_split(dataset, k, data_dir=data_dir)
            out_dir = root / key
            record = run_entry(name, dataset, k, out_dir, epochs=epochs, seed=seed, patience=patience, qat_epochs=qat_epochs,
                               run_dir=Path(runs) / key, data_dir=data_dir, split=split, verbose=verbose)
            record.pop("reports")
            pretrained.record_entry(record, root)
            built.append(key)
            m = record["metrics"]
            bar.write(f"{key}: int8 AUROC {m['int8']['auroc']:.4f} (float {m['float']['auroc']:.4f}, PCA {m['pca']['auroc']:.4f}), "
                      f"{record['size']['tflite_bytes'] / 1024:.1f} KiB, {record['latency']['median_us']:.0f} us, "
                      f"{record['timing']['entry_seconds']:.0f} s")
            bar.update(1)
    bar.close()
    seconds = time.perf_counter() - t_build
    pretrained.record_session({"dataset": dataset, "models": models, "classes": classes, "epochs": epochs,
                               "patience": patience, "qat_epochs": qat_epochs, "seed": seed, "built": len(built),
                               "skipped": len(skipped), "seconds": round(seconds, 1)}, root)
    return {"built": built, "skipped": skipped, "seconds": seconds, "root": str(root)}
