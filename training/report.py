"""The comparison report of one trained model: Keras, TFLite quantizations and compressed variants.

``aezoo report RUN`` (:func:`build_report`) puts in one table, for the model of a
training run: the float Keras model; float32, float16, dynamic-range and full-int8
TFLite conversions; and the int8 TFLite models of its compressed runs (QAT, pruned,
clustered, ...; made by ``training.compress.optimize_run`` or reused). Per row:

- test AUROC (the one-class protocol's test split) and its change against the float model;
- ``.tflite`` size and ``gzip -9`` size (pruning and clustering pay off in the latter);
- batch-1 latency with LiteRT on one thread, median over ``iterations`` calls after
  warm-up, in microseconds, measured twice: through ``edge.Detector.score`` (input
  checks, quantization, scoring included) and the interpreter's bare ``invoke()``,
  so it is clear where the time goes;
- images/second through ``edge.Detector.score`` at a large batch.

The bundles are kept in ``<out>/bundles/<row>/`` (``aezoo detect`` accepts them).
"""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zoo.errors import UserError

TFLITE_QUANTS = ("float32", "float16", "dynamic", "int8")
DEFAULT_METHODS = ("qat", "prune", "cluster")
METHOD_LABELS = {"qat": "QAT int8", "prune": "pruned + int8", "cluster": "clustered + int8",
                 "pqat": "pruned + QAT int8", "cqat": "clustered + QAT int8"}
# Untimed calls before the timed ones: first invocations allocate and warm caches.
WARMUP = 100
# Timed repetitions of the large-batch throughput measurement.
BATCH_REPEATS = 20


def _gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def _summary(times_ns: list[int]) -> dict[str, float]:
    us = np.asarray(times_ns, np.float64) / 1e3
    return {"median": float(np.median(us)), "p10": float(np.percentile(us, 10)), "p90": float(np.percentile(us, 90)),
            "n": int(len(us))}


def measure_latency(bundle: str | os.PathLike, image: np.ndarray, *, iterations: int = 1000, warmup: int = WARMUP) -> dict:
    """Batch-1 latency of a detector bundle on one LiteRT thread, in microseconds.

    Returns ``{"detector": {...}, "invoke": {...}}``, each with median, p10, p90 and n:
    ``edge.Detector.score`` on one float image (input checks, quantization, scoring
    included), and the interpreter's bare ``invoke()`` with the input tensor set once.
    """
    from ai_edge_litert.interpreter import Interpreter

    from edge.detector import Detector

    x1 = np.asarray(image, np.float32).reshape(1, *np.shape(image)[-3:])
    det = Detector.load(bundle, num_threads=1)
    for _ in range(warmup):
        det.score(x1)
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        det.score(x1)
        times.append(time.perf_counter_ns() - t0)
    detector = _summary(times)

    interp = Interpreter(model_path=str(Path(bundle) / det.spec["model"]["file"]), num_threads=1)
    inp = interp.get_input_details()[0]
    if int(inp["shape"][0]) != 1:
        interp.resize_tensor_input(inp["index"], [1, *det.image_shape])
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], det.quantize(x1))
    invoke = interp.invoke
    for _ in range(warmup):
        invoke()
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        invoke()
        times.append(time.perf_counter_ns() - t0)
    return {"detector": detector, "invoke": _summary(times)}


def measure_throughput(predict: Any, images: np.ndarray, *, repeats: int = BATCH_REPEATS) -> float:
    """Images/second of ``predict(images)`` (one warm-up call, then the median of ``repeats`` calls)."""
    predict(images)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict(images)
        times.append(time.perf_counter() - t0)
    return float(len(images) / np.median(times))


def _compressed_run(run: Path, method: str, *, epochs: int, seed: int, split) -> tuple[Path, bool]:
    """The ``<RUN>-<method>`` run of ``run``: reused when it exists, else made with ``optimize_run``."""
    from training.compress import CompressConfig, compression_of, default_out, optimize_run

    out = default_out(run, method)
    if out.exists():
        found = compression_of(out)
        if not found or found["config"]["method"] != method or Path(found["source_run"]) != run.resolve():
            raise UserError(f"{out} exists but is not a {method} compression of {run}; move it away or delete it. "
                            f"Received: its compression section {found}")
        return out, True
    return optimize_run(run, CompressConfig(method=method, epochs=epochs, seed=seed), out=out, split=split,
                        plots=False, verbose=0), False


def build_report(
    run: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    iterations: int = 1000,
    batch: int = 1000,
    epochs: int = 3,
    data_dir: str | None = None,
    split=None,
    warmup: int = WARMUP,
) -> dict:
    """Compare a run's float model with its TFLite and compressed versions; write report.md and report.json.

    Args:
        run: a training run folder (the float model).
        out: where report.md, report.json and bundles/ go. Defaults to ``RUN/report``.
        methods: compressed variants to include (``training.compress.METHODS``); an
            existing ``<RUN>-<method>`` folder is reused, a missing one is created with
            ``epochs`` fine-tuning epochs.
        iterations: timed batch-1 calls per row (PROTOCOL.md: at least 1000). Defaults to 1000.
        batch: images per call for the throughput column. Defaults to 1000.
        epochs: fine-tuning epochs for compressed runs that must be created. Defaults to 3.
        data_dir: data directory for the run's dataset.
        split: a prepared ``OneClassSplit`` (skips loading the run's data).
        warmup: untimed calls before timing. Defaults to 100.

    Returns:
        The report (also written to ``out/report.json``).
    """
    from tqdm.auto import tqdm

    from edge.convert import export_model
    from training.compress import METHODS, compression_of
    from training.fit import _machine, load_one_class_split, load_run
    from training.metrics import detection_metrics
    from training.scoring import score
    from zoo.files import write_json, write_text

    run = Path(run)
    methods = list(dict.fromkeys(methods))
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise UserError(f"methods must be among {', '.join(METHODS)}. Received: methods={methods}")
    for name, value in (("iterations", iterations), ("batch", batch), ("epochs", epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{name} must be an integer >= 1. Received: {name}={value!r}")
    model, config, threshold = load_run(run)
    if compression_of(run):
        raise UserError(f"{run} is a compressed run; report on the float run it came from. "
                        f"Received: {run} (source: {compression_of(run)['source_run']})")
    out = Path(out) if out is not None else run / "report"
    if split is None:
        split = load_one_class_split(config.dataset, config.normal_class, data_dir or config.data_dir)
    names = list(split.class_names)
    y = split.y_test
    x_batch = np.resize(split.x_test, (batch, *split.x_test.shape[1:])).astype(np.float32)
    x1 = split.x_val[:1]

    plan = [("keras", "float Keras", None, None)]
    plan += [(q, f"{q} TFLite", None, q) for q in TFLITE_QUANTS]
    plan += [(f"{m}_int8", METHOD_LABELS[m], m, "int8") for m in methods]
    rows: list[dict[str, Any]] = []
    bar = tqdm(plan, desc=f"report {run.name}", unit="row")
    for key, label, method, quant in bar:
        bar.set_postfix_str(label)
        row: dict[str, Any] = {"key": key, "label": label, "method": method, "quant": quant or "float32 (Keras)"}
        source, source_model, source_threshold = run, model, threshold
        if method is not None:
            source, reused = _compressed_run(run, method, epochs=epochs, seed=config.seed, split=split)
            source_model, _, source_threshold = load_run(source)
            stats = json.loads((source / "metrics.json").read_text())["compression"]
            row.update({"run": str(source), "reused_run": reused, "keras_auroc": json.loads((source / "metrics.json").read_text())["model"]["auroc"],
                        "kernel_sparsity": stats["sparsity"],
                        "max_unique_per_kernel": max(k["unique_values"] for k in stats["kernels"].values())})
        if key == "keras":
            scores = score(model, split.x_test, config.score)
            m = detection_metrics(y, scores, float(threshold["value"]))
            data = (run / "model.keras").read_bytes()
            row.update({"file": "model.keras", "bytes": len(data), "gzip_bytes": _gzip_size(data),
                        "latency_us": None,
                        "images_per_second": measure_throughput(lambda x: model.predict(x, batch_size=len(x), verbose=0), x_batch)})
        else:
            thr = {"percentile": config.percentile, "k": config.k, **source_threshold}
            provenance = {"run": source.resolve().name, "dataset": config.dataset, "normal_class": int(config.normal_class),
                          "normal_class_name": names[int(config.normal_class)], "seed": config.seed, "model": config.model,
                          "params": config.params, "epochs": config.epochs, "run_threshold": thr, "report_row": key}
            bundle = export_model(source_model, out / "bundles" / key, quant=quant, x_train=split.x_train, x_val=split.x_val,
                                  threshold=thr, class_names=names, provenance=provenance)
            from edge.detector import Detector

            det = Detector.load(bundle, num_threads=1)
            scores = det.score(split.x_test)
            m = detection_metrics(y, scores, det.threshold_)
            data = (bundle / det.spec["model"]["file"]).read_bytes()
            row.update({"bundle": str(bundle), "file": "model.tflite", "bytes": len(data), "gzip_bytes": _gzip_size(data),
                        "latency_us": measure_latency(bundle, x1, iterations=iterations, warmup=warmup),
                        "images_per_second": measure_throughput(det.score, x_batch)})
        row.update({"auroc": m["auroc"], "auprc": m["auprc"], "f1": m["f1"], "fpr": m["fpr"], "threshold": m["threshold"]})
        rows.append(row)
    float_auroc = rows[0]["auroc"]
    for row in rows:
        row["auroc_change"] = row["auroc"] - float_auroc
    report = {
        "run": str(run.resolve()),
        "model": config.model, "params": config.params, "dataset": config.dataset, "normal_class": int(config.normal_class),
        "normal_class_name": names[int(config.normal_class)], "score": config.score,
        "n_test": int(len(y)),
        "settings": {"threads": 1, "iterations": iterations, "warmup": warmup, "batch": batch,
                     "batch_repeats": BATCH_REPEATS, "methods": methods},
        "machine": _machine(),
        "rows": rows,
        "files": {"markdown": str(out / "report.md"), "json": str(out / "report.json")},
    }
    write_json(out / "report.json", report)
    write_text(out / "report.md", report_markdown(report))
    return report


def report_markdown(report: dict) -> str:
    """Return the report as a Markdown table with its settings and machine."""
    s = report["settings"]

    def us(row: dict, which: str) -> str:
        lat = row.get("latency_us")
        return f"{lat[which]['median']:.1f}" if lat else "-"

    lines = [
        f"# {report['model']} on {report['dataset']}, normal class {report['normal_class']} ({report['normal_class_name']})",
        "",
        f"Run `{report['run']}`; score {report['score']}; AUROC on the {report['n_test']} test images.",
        "",
        "| variant | AUROC | change | size (bytes) | gzip -9 | Detector µs | invoke µs | images/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        change = "" if r["key"] == "keras" else f"{r['auroc_change']:+.4f}"
        lines.append(f"| {r['label']} | {r['auroc']:.4f} | {change} | {r['bytes']:,} | {r['gzip_bytes']:,} | "
                     f"{us(r, 'detector')} | {us(r, 'invoke')} | {r['images_per_second']:,.0f} |")
    lines += [
        "",
        "size: model.keras for the Keras row, model.tflite otherwise. Latency: batch 1, LiteRT on one thread, median of "
        f"{s['iterations']} calls after {s['warmup']} warm-up calls; \"Detector\" is `edge.Detector.score` on one float "
        "image (checks, quantization, scoring included), \"invoke\" the interpreter's bare `invoke()`. images/s: "
        f"`edge.Detector.score` (Keras: `predict`) on batches of {s['batch']}, median of {s['batch_repeats']}.",
    ]
    compressed = [r for r in report["rows"] if r.get("method")]
    if compressed:
        lines += ["", "| compressed run | Keras AUROC | kernel sparsity | max unique values per kernel | |", "|---|---:|---:|---:|---|"]
        for r in compressed:
            lines.append(f"| {r['label']} | {r['keras_auroc']:.4f} | {r['kernel_sparsity']:.3f} | {r['max_unique_per_kernel']} | "
                         f"{'reused' if r['reused_run'] else 'created'} `{r['run']}` |")
    m = report["machine"]
    lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}.", ""]
    return "\n".join(lines)
