"""The comparison report of one trained detector: Keras, TFLite quantizations and compressed variants.

``aezoo report RUN`` (:func:`build_report`) puts in one table, for the detector of a
training run: the float Keras detector; float32, float16, dynamic-range, full-int8 and 16x8 (16-bit
activations) TFLite conversions; full int8 by the LiteRT Quantizer; and the int8 TFLite detectors of its compressed runs (QAT,
pruned, clustered, ...; made by ``training.compress.optimize_run`` or reused). Per row:
test AUROC and its change against the float detector, recall at 5% FPR, file and
``gzip -9`` size, batch-1 latency through ``edge.Detector`` and the bare ``invoke()``
(``edge.latency``), and inputs/second at a large batch. The bundles stay in
``<out>/bundles/<row>/`` (``aezoo detect`` accepts them).
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edge.bundle import QUANT_MODES
from training import runs
from zoo.errors import UserError

DEFAULT_METHODS = ("qat", "prune", "cluster")
METHOD_LABELS = {"qat": "QAT int8", "prune": "pruned + int8", "cluster": "clustered + int8",
                 "pqat": "pruned + QAT int8", "cqat": "clustered + QAT int8"}


def _gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def _compressed_run(run: Path, method: str, *, epochs: int, seed: int, split: Any) -> tuple[Path, bool]:
    """The ``<RUN>-<method>`` run of ``run``: reused when it exists, else made with ``optimize_run``."""
    from training.compress import CompressConfig, default_out, optimize_run

    out = default_out(run, method)
    if out.exists():
        found = runs.Run(out).compression()
        if not found or found["config"]["method"] != method or Path(found["source_run"]) != run.resolve():
            raise UserError(f"{out} exists but is not a {method} compression of {run}; move it away or delete it. "
                            f"Received: its compression section {found}")
        return out, True
    return optimize_run(run, CompressConfig(method=method, epochs=epochs, seed=seed), out=out, split=split,
                        plots=False, verbose=0), False


def _metrics(detector: Any, split: Any) -> dict:
    from training.metrics import detection_metrics

    m = detection_metrics(split.y_test, detector.decision_function(split.x_test), detector.threshold_,
                          val_scores=detector.decision_function(split.x_val))
    return {"auroc": m["auroc"], "auprc": m["auprc"], "f1": m["f1"], "fpr": m["fpr"], "threshold": m["threshold"],
            "recall_at_5pct_fpr": m["recall_at_fpr"]["0.05"]["recall"]}


def _bundle_row(detector: Any, split: Any, out: Path, quant: str, provenance: dict, settings: dict,
                quantizer: str = "tflite-converter") -> dict:
    """Export ``detector`` as ``quant`` (by ``quantizer``) into ``out`` and measure the bundle."""
    from edge import Detector
    from edge.latency import batch1_latency, throughput
    from training.convert import export_detector

    bundle = export_detector(detector, out, quant=quant, x_train=split.x_train, x_val=split.x_val,
                             class_names=list(split.class_names), provenance=provenance,
                             preprocessing=split.preprocessing, overwrite=True, quantizer=quantizer)
    det = Detector.load(bundle, num_threads=1)
    data = (bundle / det.spec["model"]["file"]).read_bytes()
    x_batch = np.resize(split.x_test, (settings["batch"], *split.x_test.shape[1:])).astype(np.float32)
    return {"bundle": str(bundle), "file": "model.tflite", "bytes": len(data), "gzip_bytes": _gzip_size(data),
            "latency_us": batch1_latency(det, split.x_val[0], iterations=settings["iterations"]),
            "images_per_second": throughput(det.score, x_batch), **_metrics(det, split)}


def _keras_row(detector: Any, split: Any, run: Path, settings: dict) -> dict:
    from edge.latency import throughput

    data = (run / runs.MODEL).read_bytes()
    x_batch = np.resize(split.x_test, (settings["batch"], *split.x_test.shape[1:])).astype(np.float32)
    return {"file": runs.MODEL, "bytes": len(data), "gzip_bytes": _gzip_size(data), "latency_us": None,
            "images_per_second": throughput(detector.decision_function, x_batch), **_metrics(detector, split)}


def build_report(run: str | Path, *, out: str | Path | None = None, methods: Sequence[str] = DEFAULT_METHODS,
                 iterations: int = 1000, batch: int = 1000, epochs: int = 3, split: Any = None) -> dict:
    """Compare a run's float detector with its TFLite and compressed versions; write report.md and report.json.

    Args:
        run: a training run folder (the float detector).
        out: where report.md, report.json and bundles/ go. Defaults to ``RUN/report``.
        methods: compressed variants to include (``training.compress.METHODS``); an existing
            ``<RUN>-<method>`` folder is reused, a missing one made with ``epochs`` fine-tuning epochs.
        iterations: timed batch-1 calls per row (docs/PROTOCOL.md: at least 1000).
        batch: inputs per call for the throughput column.
        split: a prepared ``OneClassSplit`` (skips loading the run's data).
    """
    from training.progress import progress

    from training import data
    from training.compress import METHODS
    from training.detector import load_run

    run = Path(run)
    methods = list(dict.fromkeys(methods))
    if any(m not in METHODS for m in methods):
        raise UserError(f"methods must be among {', '.join(METHODS)}. Received: methods={methods}")
    if runs.Run(run).compression():
        raise UserError(f"{run} is a compressed run; report on the float run it came from. "
                        f"Received: {run} (source: {runs.Run(run).compression()['source_run']})")
    detector, config = load_run(run)
    out = Path(out) if out is not None else run / "report"
    split = split if split is not None else data.one_class_split(config.data_source(), config.normal_class)
    settings = {"threads": 1, "iterations": iterations, "batch": batch, "methods": methods}
    prov = runs.provenance(config.to_dict(), run=run.resolve().name, class_names=list(split.class_names))
    plan = [("keras", "float Keras", None, None)] + [(q, f"{q} TFLite", None, q) for q in QUANT_MODES] + \
           [("int8_litert", "int8 (LiteRT quantizer)", None, "int8")] + \
           [(f"{m}_int8", METHOD_LABELS[m], m, "int8") for m in methods]
    rows = []
    for key, label, method, quant in progress(plan, desc=f"report {run.name}", unit="row"):
        row: dict[str, Any] = {"key": key, "label": label, "method": method, "quant": quant or "float32 (Keras)"}
        if key == "keras":
            row.update(_keras_row(detector, split, run, settings))
        elif method is None:
            quantizer = "litert" if key == "int8_litert" else "tflite-converter"
            row.update(_bundle_row(detector, split, out / "bundles" / key, quant, {**prov, "report_row": key}, settings,
                                   quantizer))
        else:
            source, reused = _compressed_run(run, method, epochs=epochs, seed=config.seed, split=split)
            compressed, _ = load_run(source)
            stats = runs.read_json(source / runs.METRICS, "metrics")
            row.update({"run": str(source), "reused_run": reused, "keras_auroc": stats["model"]["auroc"],
                        "kernel_sparsity": stats["compression"]["sparsity"],
                        "max_unique_per_kernel": max(k["unique_values"] for k in stats["compression"]["kernels"].values())})
            row.update(_bundle_row(compressed, split, out / "bundles" / key, "int8", {**prov, "report_row": key}, settings))
        rows.append(row)
    for row in rows:
        row["auroc_change"] = row["auroc"] - rows[0]["auroc"]
    return _write_report(out, run, config, split, rows, settings)


def _write_report(out: Path, run: Path, config: Any, split: Any, rows: list[dict], settings: dict) -> dict:
    from zoo.files import write_json, write_text

    names = list(split.class_names)
    report = {"run": str(run.resolve()), "model": config.model, "params": config.params, "dataset": config.dataset,
              "normal_class": int(config.normal_class), "normal_class_name": names[int(config.normal_class)],
              "score": config.score, "n_test": int(len(split.y_test)), "settings": settings,
              "machine": runs.machine_info(), "rows": rows,
              "files": {"markdown": str(out / "report.md"), "json": str(out / "report.json")},
              "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_json(out / "report.json", report)
    write_text(out / "report.md", report_markdown(report))
    return report


def report_markdown(report: dict) -> str:
    """The report as a Markdown table with its settings and machine."""
    s = report["settings"]

    def us(row: dict, which: str) -> str:
        lat = row.get("latency_us")
        return f"{lat[which]['median']:.1f}" if lat else "-"

    lines = [f"# {report['model']} ({report['score']} score) on {report['dataset']}, normal class {report['normal_class']} "
             f"({report['normal_class_name']})", "", f"Run `{report['run']}`; AUROC on the {report['n_test']} test inputs.", "",
             "| variant | AUROC | change | recall @5% FPR | size (bytes) | gzip -9 | Detector µs | invoke µs | inputs/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        change = "" if r["key"] == "keras" else f"{r['auroc_change']:+.4f}"
        lines.append(f"| {r['label']} | {r['auroc']:.4f} | {change} | {r['recall_at_5pct_fpr']:.3f} | {r['bytes']:,} | "
                     f"{r['gzip_bytes']:,} | {us(r, 'detector')} | {us(r, 'invoke')} | {r['images_per_second']:,.0f} |")
    lines += ["", "size: model.keras for the Keras row, model.tflite otherwise. Latency: batch 1, LiteRT on one thread, "
              f"median of {s['iterations']} calls after warm-up; \"Detector\" is `edge.Detector.score` on one input (checks, "
              "quantization, scoring included), \"invoke\" the interpreter's bare `invoke()`. inputs/s: `edge.Detector.score` "
              f"(Keras: `decision_function`) on batches of {s['batch']}, median of 20."]
    compressed = [r for r in report["rows"] if r.get("method")]
    if compressed:
        lines += ["", "| compressed run | Keras AUROC | kernel sparsity | max unique values per kernel | |", "|---|---:|---:|---:|---|"]
        lines += [f"| {r['label']} | {r['keras_auroc']:.4f} | {r['kernel_sparsity']:.3f} | {r['max_unique_per_kernel']} | "
                  f"{'reused' if r['reused_run'] else 'created'} `{r['run']}` |" for r in compressed]
    m = report["machine"]
    lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}.", ""]
    return "\n".join(lines)
