"""One pretrained entry end to end, and the zoo build that repeats it over models and classes.

``run_entry`` is the single journey of an entry: train (``training.train``) -> for an
int8 entry, QAT fine-tune (``training.compress``) -> export the full-integer detector
bundle (``training.convert``; int16x8 entries by post-training quantization of the float
model) -> evaluate the float model, the QAT model and the device detector beside the
baselines on the same split (``training.evaluate``), measure its latency
(``edge.latency``) and its runtimes' agreement. ``aezoo zoo build`` and ``aezoo demo``
both call it.

Hyperparameters are fixed before any test evaluation and are the same for every
class: the variant's defaults, the training defaults, and the budget below, set
from measured times (not test metrics) so that the whole zoo builds in under an
hour on a 2-core CPU.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import zoo
from edge.bundle import INTEGER_MODES
from training import runs
from zoo import catalog, pretrained
from zoo.config import Config, check_choice, check_int
from zoo.errors import UserError
from zoo.files import atomic_path, write_json

DEFAULT_RUNS = Path("runs") / "zoo_build"
LATENCY_ITERATIONS = 1000
ENTRY_QUANTS = INTEGER_MODES  # an entry's device detector is full-integer: int8, or int16x8 (16-bit activations)
REUSED_ENTRY = "reused the entry's float model"


@dataclasses.dataclass
class EntrySettings(Config):
    """How every zoo entry is made (the same for every variant and class); recorded in the manifest.

    Args:
        score: the score kind of the detectors, or "auto": each variant's default (``zoo.model_info``).
        epochs: maximum training epochs (raised to reach ``min_steps`` optimizer steps). patience: early-stopping patience.
        qat_epochs: QAT fine-tuning epochs (int8 entries). seed: training and fine-tuning seed.
        quant: the device detector's mode, or "auto": the score kind's (``Score.device_quant``: int16x8 for nap,
            whose whitening magnifies int8 rounding, int8 otherwise).
    """

    score: str = "auto"
    epochs: int = 30
    min_steps: int = 1000
    patience: int = 5
    qat_epochs: int = 2
    seed: int = 0
    quant: str = "auto"

    def validate(self) -> "EntrySettings":
        """Check every field."""
        from training.scores import score_kinds

        check_choice(self, "score", ("auto", *score_kinds()))
        check_choice(self, "quant", ("auto", *ENTRY_QUANTS))
        for name, low in (("epochs", 1), ("patience", 1), ("qat_epochs", 1), ("seed", 0), ("min_steps", 0)):
            check_int(self, name, low)
        return self

    def quant_for(self, score_kind: str) -> str:
        """The device detector's quantization mode for an entry scored by ``score_kind``."""
        from training.scores import make_score

        return make_score(score_kind).device_quant if self.quant == "auto" else self.quant


SELECTION = ("Fixed for all normal classes before any test evaluation: the variant's default arguments, the training "
             "defaults of training.TrainConfig (Adam lr 1e-3, batch 128, threshold at the 99th percentile of the normal "
             "validation scores), the score kind and its device quantization (int16x8 for nap, chosen on development "
             "data), and epochs / patience / QAT epochs set from the time budget. Early "
             "stopping, score parameters and both thresholds use only the normal training and validation images; test "
             "labels chose nothing.")


def _compact(report: dict) -> dict:
    keep = ("auroc", "auprc", "precision", "recall", "f1", "fpr", "threshold", "recall_at_fpr", "n_components", "event_recall",
            "false_alarms_per_10k", "ucr_hit", "location")
    return {k: report[k] for k in keep if k in report}


def _train_or_reuse(config: Any, run_dir: Path, split: Any, *, plots: bool, verbose: Any,
                    entry: tuple[dict, Path] | None = None) -> tuple[Any, dict, str]:
    """(float detector, its metrics, how) for the run folder, training only what is missing.

    Without a run folder, ``entry`` (the zoo's record and folder of this entry) gives the float model when it was
    trained with ``config``: re-exporting an entry (another quantization) needs no training.
    """
    from training.detector import load_run
    from training.trainer import train

    run = runs.Run(run_dir)
    if entry is not None and not run.exists():
        record, folder = entry
        train_keys = record["hyperparameters"]["train"]
        if train_keys == {k: v for k, v in config.to_dict().items() if k in train_keys}:
            return (entry_float_detector(record, folder), {"training": record["training"], "checks": record["checks"]},
                    REUSED_ENTRY)
    if run.is_finished():
        detector, saved = load_run(run_dir)
        if saved != config:
            diff = {k: (v, config.to_dict()[k]) for k, v in saved.to_dict().items() if v != config.to_dict()[k]}
            raise UserError(f"the finished run in {run_dir} was trained with other settings (saved, requested): {diff}. "
                            "Delete that folder to retrain it, or give another runs folder.")
        return detector, runs.read_json(run.file(runs.METRICS), "metrics"), "reused finished run"
    resume = run.exists()
    result = train(config, out=run_dir, resume=resume, split=split, verbose=verbose, plots=plots)
    return result.detector, result.metrics, "resumed" if resume else "trained"


def _quantize(detector: Any, split: Any, settings: EntrySettings, verbose: Any) -> tuple[Any, dict]:
    """The QAT fine-tune of a float detector, its score and threshold fitted again on normal data."""
    from training.compress import CompressConfig, compress
    from training.detector import AutoencoderDetector

    qat_config = CompressConfig(method="qat", epochs=settings.qat_epochs, seed=settings.seed,
                                batch_size=detector.config.batch_size)
    qat, _ = compress(detector.model_, split.x_train, split.x_val, qat_config, verbose=verbose)
    return AutoencoderDetector(detector.config, network=qat).calibrate(split.x_train, split.x_val), qat_config.to_dict()


def _speed(bundle: Path, x: np.ndarray) -> dict:
    """Batch-1 latency (Detector and bare invoke) on ``x[0]`` and throughput on 1,000 of ``x`` (model inputs), of a bundle.

    Measured in a child process that imports no TensorFlow (``python -m edge.latency``), as on a device.
    """
    import json
    import subprocess
    import sys
    import tempfile

    from edge.bundle import read_bundle
    from edge.inputs import for_spec

    device_inputs = for_spec(read_bundle(bundle)[1]).to_device(np.asarray(x[:1000], np.float32))  # raw, as a device reads
    with tempfile.TemporaryDirectory(prefix="aezoo-latency-") as tmp:
        np.save(Path(tmp) / "x.npy", device_inputs)
        proc = subprocess.run([sys.executable, "-m", "edge.latency", str(bundle), str(Path(tmp) / "x.npy"),
                               str(LATENCY_ITERATIONS)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"latency measurement of {bundle} failed: {proc.stderr[-500:]}")
    return json.loads(proc.stdout)


def run_entry(model_name: str, dataset: str, normal_class: int, out_dir: str | Path, *,
              settings: EntrySettings | None = None, run_dir: str | Path | None = None, split: Any = None,
              plots: bool = False, verbose: Any = 0, entry: tuple[dict, Path] | None = None) -> dict:
    """Train, quantize, export and evaluate one entry; write it to ``out_dir``.

    ``out_dir`` receives ``model.keras`` (the trained float model), ``score.npz`` (its
    score's parameters, if any), ``detector/`` (the device bundle: int8 exported from the
    QAT model, or int16x8 from the float model, by ``settings.quant_for``) and
    ``card.json``. The training run (checkpoints, logs, plots) goes to ``run_dir``
    (default ``runs/zoo_build/<key>``): an unfinished run there is resumed, a finished one
    reused; without one, ``entry`` (this entry's manifest record and folder) lends its
    float model if it was trained with the same settings.

    Returns:
        The manifest record (metrics, thresholds, size, latency, timing, hyperparameters,
        file sha256s...), plus ``"reports"``: the full evaluation reports.
    """
    from training import data
    from training.config import TrainConfig

    settings = (settings or EntrySettings()).validate()
    t_entry = time.perf_counter()
    out_dir = Path(out_dir)
    key = catalog.entry_key(model_name, dataset, normal_class)
    run_dir = Path(run_dir) if run_dir is not None else DEFAULT_RUNS / key
    config = TrainConfig(model=model_name, dataset=dataset, normal_class=int(normal_class), seed=settings.seed,
                         epochs=settings.epochs, min_steps=settings.min_steps, patience=settings.patience,
                         score=settings.score).validate().resolved()
    split = split if split is not None else data.one_class_split(dataset, normal_class)
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    float_det, float_metrics, how = _train_or_reuse(config, run_dir, split, plots=plots, verbose=verbose, entry=entry)
    timing["train_session_seconds"] = round(time.perf_counter() - t0, 3)
    quant = settings.quant_for(float_det.score_kind)
    qat_det, qat_config = None, None
    if quant == "int8":
        t0 = time.perf_counter()
        qat_det, qat_config = _quantize(float_det, split, settings, verbose)
        timing["qat_seconds"] = round(time.perf_counter() - t0, 3)
    reports, bundle = _export_and_evaluate(float_det, qat_det, quant, split, out_dir, run_dir, config, qat_config, timing,
                                           plots, keep_model=how == REUSED_ENTRY)
    timing.update(entry_seconds=round(time.perf_counter() - t_entry, 3))
    record = _record(model_name, dataset, split, key, float_det, qat_det, quant, reports, bundle, out_dir, float_metrics,
                     settings, qat_config, timing, how)
    return record


def _export_and_evaluate(float_det: Any, qat_det: Any, quant: str, split: Any, out_dir: Path, run_dir: Path, config: Any,
                         qat_config: dict | None, timing: dict, plots: bool, keep_model: bool) -> tuple[dict, Path]:
    """Export the device bundle (from the QAT detector if there is one), save the float model (unless ``keep_model``:
    it is the entry's own already), evaluate float / QAT / device beside the baselines; ``reports[quant]`` is the
    device's."""
    from edge import Detector
    from training.baselines import fit_baselines
    from training.convert import export_detector
    from training.evaluate import OnDevice, evaluate_split

    t0 = time.perf_counter()
    names = list(split.class_names)
    prov = runs.provenance(config.to_dict(), run=str(run_dir), class_names=names,
                           compression=qat_config or {"method": "post-training", "quant": quant},
                           run_threshold=float_det.threshold_record_)
    bundle = export_detector(qat_det or float_det, out_dir / "detector", x_train=split.x_train, x_val=split.x_val,
                             class_names=names, provenance=prov, preprocessing=split.preprocessing, quant=quant,
                             overwrite=True)

    if not keep_model:
        with atomic_path(out_dir / runs.MODEL) as tmp:
            # Loaded uncompiled from the run: the entry keeps the weights, not the optimizer state (a third of the bytes).
            zoo.load_model(run_dir / runs.MODEL).save(str(tmp))
    float_det.score_.save_state(out_dir / runs.SCORE_STATE)
    timing["export_seconds"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    baselines = fit_baselines(split.x_train, split.x_val, split.units)
    reports = {quant: evaluate_split(OnDevice(Detector.load(bundle)), split, baselines=baselines,
                                     out_dir=run_dir / quant if plots else None, plots=plots,
                                     label=f"{config.model} {quant} (TFLite)")}
    # The baselines' metrics are the same for the three detectors: computed once, above.
    same = {name: reports[quant][name] for name in baselines}
    reports["float"] = {**evaluate_split(float_det, split, baselines={}, label=f"{config.model} float"), **same}
    if qat_det is not None:
        reports["qat"] = {**evaluate_split(qat_det, split, baselines={}, label=f"{config.model} QAT (Keras)"), **same}
    timing["eval_seconds"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    reports["speed"] = _speed(bundle, split.x_test)
    timing["latency_seconds"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    reports["agreement"] = entry_agreement(bundle, float_det.decision_function(split.x_test), float_det.threshold_, split)
    timing["agreement_seconds"] = round(time.perf_counter() - t0, 3)
    return reports, bundle


def entry_agreement(bundle: Path, float_scores: np.ndarray, float_threshold: float, split: Any) -> dict:
    """Do the runtimes agree on the test inputs (images, vectors, windows)? The int8 bundle on LiteRT's default and
    reference kernels, and the float Keras model's scores at its own threshold (``edge.agreement``). Measured, never
    chosen on: nothing depends on it."""
    from edge import agreement
    from edge.bundle import read_bundle
    from edge.inputs import for_spec

    model, spec = read_bundle(bundle)
    return agreement.measure(model, spec, for_spec(spec).to_device(split.x_test),
                             others={"keras_float": (float_scores, float_threshold)}, inputs="the test split")


def _record(model_name: str, dataset: str, split: Any, key: str, float_det: Any, qat_det: Any, quant: str, reports: dict,
            bundle: Path, out_dir: Path, float_metrics: dict, settings: EntrySettings, qat_config: dict | None, timing: dict,
            how: str) -> dict:
    """The manifest record and the model card of an entry: ``metrics[quant]`` and ``threshold[quant]`` are the device
    detector's."""
    from edge.bundle import read_bundle
    from training.evaluate import BASELINE_TITLES

    tflite, spec = read_bundle(bundle)
    k = int(split.normal_class)
    t = float_metrics["training"]
    device = reports[quant]
    qat = {"qat": (qat_det, reports["qat"])} if qat_det is not None else {}
    record = {
        "model": model_name, "dataset": dataset, "normal_class": k, "normal_class_name": split.class_names[k], "path": key,
        "score": float_det.score_kind, "quant": quant,
        "metrics": {"float": _compact(reports["float"]["model"]), **{n: _compact(r["model"]) for n, (_, r) in qat.items()},
                    quant: _compact(device["model"]),
                    **{b: _compact(device[b]) for b in BASELINE_TITLES if b in device}},
        "threshold": {quant: spec["threshold"], "float": float_det.threshold_record_,
                      **{n: d.threshold_record_ for n, (d, _) in qat.items()}},
        "size": {"tflite_bytes": len(tflite), "tflite_gzip_bytes": len(gzip.compress(tflite, 9, mtime=0)),
                 "bundle_bytes": sum(p.stat().st_size for p in bundle.iterdir() if p.is_file()),
                 "keras_bytes": (out_dir / runs.MODEL).stat().st_size, "parameters": int(float_det.model_.count_params())},
        "latency": reports["speed"]["latency"], "throughput_per_second": reports["speed"]["throughput_per_second"],
        "agreement": reports["agreement"],
        "training": {"how": how, **{n: t[n] for n in ("epochs_run", "best_epoch", "stopped_early", "still_improving",
                                                      "images_per_second", "n_train")},
                     "n_val": int(len(split.x_val))},
        **({"series": device["series"]} if "series" in device else {}),
        "checks": float_metrics.get("checks"), "timing": timing, "seed": settings.seed,
        "hyperparameters": {"model": zoo.config_for(model_name, input_shape=tuple(split.x_train.shape[1:])).to_dict(),
                            "train": {k: v for k, v in float_det.config.to_dict().items() if k not in ("model", "dataset",
                                      "normal_class", "data_dir")}, "qat": qat_config, "entry": settings.to_dict()},
        "hyperparameter_selection": SELECTION,
        "protocol": split.protocol,
        "versions": runs.package_versions(), "machine": runs.machine_info(),
    }
    made = "int8 detector from QAT" if qat else f"{quant} detector by post-training quantization of the float model"
    card = {**record, "description": f"{model_name} trained on {dataset} class {k} ({split.class_names[k]}) as the normal "
                                     f"class, scored with {float_det.score_kind!r}; {made}.",
            "per_class": {quant: device["model"].get("per_class"), "float": reports["float"]["model"].get("per_class")},
            "usage": {"keras": f"zoo.load({model_name!r}, dataset={dataset!r}, normal_class={k})",
                      "edge": f"edge.Detector.from_zoo({model_name!r}, dataset={dataset!r}, normal_class={k})"}}
    write_json(out_dir / "card.json", card)
    names = [n for n in catalog.ENTRY_FILES if (out_dir / n).is_file()]
    record["files"] = catalog.file_records(out_dir, names)
    record["reports"] = reports
    return record


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 1 <= I <= N; anything else is a UserError."""
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        i = n = 0
    if not 1 <= i <= n:
        raise UserError(f"--shard must be I/N with 1 <= I <= N, e.g. 2/4. Received: {text!r}")
    return i, n


def build_zoo(dataset: str = "fashion_mnist", *, models: Sequence[str] | None = None, classes: Sequence[int] | None = None,
              settings: EntrySettings | None = None, runs_dir: str | Path = DEFAULT_RUNS, root: str | Path | None = None,
              force: bool = False, verbose: Any = 0, shard: tuple[int, int] = (1, 1)) -> dict:
    """Build (or finish building) the pretrained zoo: ``run_entry`` for every model x normal class.

    Entries already in the manifest whose files verify are skipped (with ``force`` rebuilt,
    reusing their float model when no run folder is there and the settings match: a new
    quantization needs no training); an entry whose training run is unfinished in
    ``runs_dir`` resumes it. The manifest is rewritten
    after every entry, so an interruption loses at most the entry in progress. With
    ``shard=(I, N)`` only every N-th entry (of the sorted class x model list), starting
    at the I-th, is built: N machines build the zoo together, then ``aezoo zoo merge``.

    Returns:
        ``{"built": [...keys], "skipped": [...keys], "seconds": float, "root": str}``.
    """
    from training.progress import progress

    from training import data

    settings = (settings or EntrySettings()).validate()
    root = catalog.saved_models_dir(root)
    kind = data.as_source(dataset).kind
    models = list(models) if models else [m for m in zoo.list_models() if kind in zoo.model_info(m).input_kinds]
    for name in models:
        zoo.model_info(name)  # unknown names fail before any training
    names = data.class_names(dataset)
    classes = data.normal_classes(dataset) if classes is None else [int(k) for k in classes]
    for k in classes:
        data.check_source(dataset, k)
    t_build = time.perf_counter()
    built, skipped = [], []
    plan = [(k, name) for k in classes for name in models][shard[0] - 1::shard[1]]
    bar = progress(total=len(plan), desc=f"zoo build {dataset}" + (f" shard {shard[0]}/{shard[1]}" if shard[1] > 1 else ""),
               unit="entry")
    for k in sorted({k for k, _ in plan}):
        split = None
        for name in [m for c, m in plan if c == k]:
            key = catalog.entry_key(name, dataset, k)
            bar.set_postfix_str(f"{name} class {k} ({names[k]})")
            problems = catalog.check_entry(key, root)
            if not force and not problems:
                skipped.append(key)
            else:
                split = split or data.one_class_split(dataset, k)
                entry = None if problems else (catalog.read_manifest(root)["entries"][key], root / key)
                record = run_entry(name, dataset, k, root / key, settings=settings, run_dir=Path(runs_dir) / key,
                                   split=split, verbose=verbose, entry=entry)
                record.pop("reports")
                pretrained.record_entry(record, root)
                built.append(key)
                m, q = record["metrics"], record["quant"]
                others = ", ".join(f"{b} {v['auroc']:.4f}" for b, v in m.items() if b not in (q, "qat"))
                bar.write(f"{key}: {q} AUROC {m[q]['auroc']:.4f} ({others}), {record['size']['bundle_bytes'] / 1024:.1f} "
                          f"KiB, {record['latency']['detector']['median']:.0f} us, {record['timing']['entry_seconds']:.0f} s")
            bar.update(1)
    bar.close()
    seconds = time.perf_counter() - t_build
    pretrained.record_session({"dataset": dataset, "models": models, "classes": classes, "settings": settings.to_dict(),
                               "shard": f"{shard[0]}/{shard[1]}", "built": len(built), "skipped": len(skipped),
                               "seconds": round(seconds, 1)}, root)
    return {"built": built, "skipped": skipped, "seconds": seconds, "root": str(root)}


def entry_float_detector(record: dict, entry: Path) -> Any:
    """An entry's float detector, assembled from its files: model.keras, score.npz and the float threshold record."""
    from training.config import DetectorConfig
    from training.detector import AutoencoderDetector

    train = record["hyperparameters"]["train"]
    return AutoencoderDetector.assemble(DetectorConfig.from_run_config(train), zoo.load_model(entry / runs.MODEL),
                                        record["score"], train.get("score_options"), entry / runs.SCORE_STATE,
                                        record["threshold"]["float"])


def remeasure_agreement(root: str | Path | None = None, *, models: Sequence[str] | None = None,
                        progress: Any = None) -> list[str]:
    """Measure every entry's runtime agreement on its test split (:func:`entry_agreement`); update manifest and cards.

    The float detector is assembled from the entry's files (model.keras, score.npz, the float threshold record);
    its test AUROC must reproduce the manifest's, or the entry is refused. Returns the keys updated.
    """
    from training import data
    from training.metrics import ranking_metrics

    root = catalog.saved_models_dir(root, must_exist=True)
    updated, split_key, split = [], None, None
    records = [r for r in catalog.list_pretrained(root=root) if not models or r["model"] in models]
    for record in records:
        entry = catalog.verify_entry(record, root)
        if (record["dataset"], record["normal_class"]) != split_key:  # entries come sorted: one split at a time
            split_key = (record["dataset"], record["normal_class"])
            split = data.one_class_split(*split_key)
        float_det = entry_float_detector(record, entry)
        scores = float_det.decision_function(split.x_test)
        result = entry_agreement(entry / "detector", scores, float_det.threshold_, split)
        got = ranking_metrics(split.y_test, split.unit_scores(scores, "test"))["auroc"]
        if abs(got - record["metrics"]["float"]["auroc"]) > 1e-6:
            raise UserError(f"{record['path']}: its float model gives test AUROC {got:.6f}, the manifest says "
                            f"{record['metrics']['float']['auroc']:.6f}: the entry's files do not match its record")
        card = runs.read_json(entry / "card.json", "the model card")
        for doc in (record, card):
            doc["agreement"] = result
        json.dumps(record, allow_nan=False)  # a value JSON cannot hold fails here, before any file changes
        write_json(entry / "card.json", card)
        record["files"] = catalog.file_records(entry, list(record["files"]))
        pretrained.record_entry(record, root)
        updated.append(record["path"])
        if progress is not None:
            progress(record["path"], result)
    return updated


def remeasure_latency(root: str | Path | None = None, *, models: Sequence[str] | None = None) -> list[str]:
    """Measure every entry's batch-1 latency and throughput again on this machine; update manifest and cards.

    Latency is a property of the machine, not of the model: run this on an idle machine (or on
    the device that will use the detectors). Returns the keys updated.
    """
    from training import data

    root = catalog.saved_models_dir(root, must_exist=True)
    updated, inputs = [], {}
    for record in catalog.list_pretrained(root=root):
        if models and record["model"] not in models:
            continue
        entry = catalog.verify_entry(record, root)
        key = (record["dataset"], record["normal_class"])  # a class's test inputs carry its own standardization
        if key not in inputs:
            inputs[key] = data.one_class_split(*key).x_test[:1000]
        speed = _speed(entry / "detector", inputs[key])
        card = runs.read_json(entry / "card.json", "the model card")
        for doc in (record, card):
            doc.update(latency=speed["latency"], throughput_per_second=speed["throughput_per_second"], machine=runs.machine_info())
        write_json(entry / "card.json", card)
        record["files"] = catalog.file_records(entry, list(record["files"]))
        pretrained.record_entry(record, root)
        updated.append(record["path"])
    return updated
