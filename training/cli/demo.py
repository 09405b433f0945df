"""``aezoo demo``: the main job end to end on Fashion-MNIST, a pretrained entry in use, then a sensor series streamed."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import zoo
from training.cli.args import int_arg
from training.pipeline import ENTRY_QUANTS
from zoo.errors import UserError

DATASET = "fashion_mnist"
MODEL = "conv_ae"


def register(sub: Any) -> None:
    """Add ``demo``."""
    p = sub.add_parser(
        "demo", help="the whole journey on Fashion-MNIST: train conv_ae, quantize, export, edge detector, comparison",
        description="Prepare Fashion-MNIST, train the default conv_ae detector (nap score) on one normal class, quantize "
                    "it as the zoo does (int16x8 for nap: 16-bit activations, the same verdict on every runtime; "
                    "--quant int8: quantization-aware training, then full int8), export the detector bundle, run it with "
                    "edge.Detector on test images, print float vs (QAT vs) the device detector vs PCA vs kNN and write "
                    "the plots; then load the pretrained "
                    "entry of that class from saved_models/ and use it; then stream a real sensor test recording "
                    "through a series detector (edge.StreamDetector) and show its alarms against the labels.")
    p.add_argument("--normal-class", type=int_arg(0, 9), default=0, help="normal class id; default 0 (T-shirt/top)")
    p.add_argument("--epochs", type=int_arg(1, 10_000), help="maximum training epochs; default: the zoo's")
    p.add_argument("--min-steps", type=int_arg(0, 10_000_000), help="least optimizer steps; default: the zoo's")
    p.add_argument("--quant", choices=("auto", *ENTRY_QUANTS), help="the device detector's mode; default: the zoo's "
                   "(auto: int16x8 for the nap score)")
    p.add_argument("--qat-epochs", type=int_arg(1, 1000), help="QAT fine-tuning epochs (int8); default: the zoo's")
    p.add_argument("--seed", type=int_arg(0), default=0, help="random seed; default 0")
    p.add_argument("--out", metavar="DIR", default="runs/demo", help="output folder; default runs/demo")
    p.add_argument("--series", action="store_true",
                   help="only the sensor-series part: a series detector streaming a real test recording")
    p.set_defaults(func=_demo)


def _prepare(k: int) -> tuple[Any, list[str]]:
    from training import data

    print("[1/6] Fashion-MNIST: preparing the data (offline from the local IDX copy when needed)")
    data.prepared_builder(DATASET)
    split = data.one_class_split(DATASET, k)
    names = list(split.class_names)
    print(f"      normal class {k} ({names[k]}): {len(split.x_train)} training, {len(split.x_val)} validation images; "
          f"test: {len(split.x_test)} images, {int(split.y_test.sum())} anomalies")
    return split, names


def _build_entry(split: Any, out: Path, settings: Any) -> dict:
    from training import pipeline, runs

    quant = settings.quant_for(zoo.model_info(MODEL).score)
    how = f"QAT fine-tune ({settings.qat_epochs} epochs) -> int8 export" if quant == "int8" else f"{quant} export"
    print(f"[2/6] {MODEL}: train (up to {settings.epochs} epochs) -> fit its score -> {how} -> evaluate float, "
          f"{'QAT, ' if quant == 'int8' else ''}{quant}, PCA and kNN")
    run_dir = out / "run"
    if runs.Run(run_dir).exists():
        import shutil

        # The demo's own run (with its evaluation plots per device mode) is replaced; a user's file in it never is.
        others = sorted(p.name for p in run_dir.iterdir() if p.name not in runs.RUN_ENTRIES | set(pipeline.ENTRY_QUANTS))
        if others:
            raise UserError(f"{run_dir} holds the previous demo run and also {', '.join(others[:5])}, which the demo did "
                            "not write: nothing was deleted. Move those out, or give another --out")
        print(f"      replacing the previous demo run in {run_dir}")
        shutil.rmtree(run_dir)
    return pipeline.run_entry(MODEL, DATASET, split.normal_class, out / "entry", settings=settings, run_dir=run_dir,
                              split=split, plots=True, verbose="auto")


def _edge(out: Path, split: Any, names: list[str]) -> tuple[Any, Any, Any]:
    import numpy as np

    import edge

    print("[3/6] edge.Detector (LiteRT, TensorFlow-free) on test images: the first of each class")
    det = edge.Detector.load(out / "entry" / "detector")
    idx = np.array([np.flatnonzero(split.test_labels == c)[0] for c in range(len(names))])
    images, labels = split.x_test[idx], split.test_labels[idx]
    scores = det.score(images)
    print(f"      {det!r}")
    print(f"      {'image':<14} {'truth':<8} {'score':>9}  flagged")
    for label, s in zip(labels, scores):
        truth = "normal" if label == split.normal_class else "anomaly"
        print(f"      {names[label]:<14} {truth:<8} {s:>9.4g}  {'anomaly' if s > det.threshold_ else 'normal'}")
    return det, images, labels


def _comparison(record: dict) -> None:
    print("[4/6] comparison on the 10,000 test images (everything chosen on normal training/validation images only)")
    m, size, lat, q = record["metrics"], record["size"], record["latency"], record["quant"]
    rows = [("float Keras", m["float"], f"{size['keras_bytes'] / 1024:.0f} KiB .keras", "-"),
            *([("QAT Keras", m["qat"], "-", "-")] if "qat" in m else []),
            (f"{q} TFLite", m[q], f"{size['bundle_bytes'] / 1024:.1f} KiB bundle",
             f"{lat['detector']['median']:.0f} us ({lat['invoke']['median']:.0f} invoke)"),
            (f"PCA ({m['pca'].get('n_components')} comp.)", m["pca"], "-", "-"), ("kNN (k=5)", m["knn"], "-", "-")]
    print(f"      {'detector':<18} {'AUROC':>7} {'AUPRC':>7} {'rec@5%':>7} {'F1':>6} {'FPR':>6}  {'size':<18} batch-1 latency")
    for name, r, size_text, latency in rows:
        rec = r.get("recall_at_fpr", {}).get("0.05", {}).get("recall")
        rec_text = "-" if rec is None else f"{rec:.3f}"
        print(f"      {name:<18} {r['auroc']:>7.4f} {r['auprc']:>7.4f} {rec_text:>7} {r['f1']:>6.3f} {r['fpr']:>6.3f}  "
              f"{size_text:<18} {latency}")
    gap = m[q]["auroc"] - m["float"]["auroc"]
    print(f"      {q} - float AUROC: {gap:+.4f} ({'within' if abs(gap) <= 0.005 else 'outside'} the 0.005 target of docs/PROTOCOL.md)")


def _pretrained(k: int, images: Any, labels: Any, names: list[str], record: dict) -> dict | None:
    """Load the saved_models entry of the demo's class and score the same images; say so when there is none."""
    import edge
    from zoo import catalog

    print("[5/6] the pretrained zoo (saved_models/)")
    root = catalog.saved_models_dir()
    key = catalog.entry_key(MODEL, DATASET, k)
    entries = catalog.read_manifest(root)["entries"]
    if key not in entries:
        print(f"      No pretrained entry {key} in {root}: nothing to load. `aezoo zoo build --models {MODEL} "
              f"--classes {k}` creates it ({len(entries)} other entries present).")
        return None
    model = zoo.load(MODEL, dataset=DATASET, normal_class=k)
    det = edge.Detector.from_zoo(MODEL, dataset=DATASET, normal_class=k)
    scores = det.score(images)
    print(f"      zoo.load({MODEL!r}, dataset={DATASET!r}, normal_class={k}) -> {model.name} ({model.count_params():,} "
          f"parameters)\n      edge.Detector.from_zoo(...) -> {det!r} (sha256 verified)")
    for label, s in zip(labels, scores):
        print(f"      {names[label]:<14} score {s:>9.4g}  {'anomaly' if s > det.threshold_ else 'normal'}")
    m, q = entries[key]["metrics"], catalog.device_key(entries[key])
    ours = record["metrics"]
    print(f"      pretrained entry: {q} AUROC {m[q]['auroc']:.4f} (float {m['float']['auroc']:.4f}), this demo's: "
          f"{record['quant']} {ours[record['quant']]['auroc']:.4f} (float {ours['float']['auroc']:.4f})")
    return {"entry": key, "quant": q, "device_auroc": m[q]["auroc"], "float_auroc": m["float"]["auroc"],
            "scores": [float(s) for s in scores]}


def _demo(args: argparse.Namespace) -> int:
    from zoo.files import write_json

    from training import pipeline
    from training.cli.demo_series import series_demo

    t_start = time.perf_counter()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; expected a folder for the demo's outputs")
    given = {"epochs": args.epochs, "min_steps": args.min_steps, "qat_epochs": args.qat_epochs, "seed": args.seed,
             "quant": args.quant}
    settings = pipeline.EntrySettings().replace(**{k: v for k, v in given.items() if v is not None})
    if args.series:
        write_json(out / "series" / "demo.json", series_demo(out / "series", settings))
        print(f"done in {(time.perf_counter() - t_start) / 60:.1f} min: {out / 'series'}")
        return 0
    split, names = _prepare(args.normal_class)
    record = _build_entry(split, out, settings)
    reports = record.pop("reports")
    det, images, labels = _edge(out, split, names)
    _comparison(record)
    plots = sorted(str(p) for p in (out / "run").rglob("*.png"))
    print(f"      plots: {len(plots)} under {out / 'run'} (training curves, reconstructions, score histogram, ROC against "
          "PCA and kNN, latent space)")
    used = _pretrained(args.normal_class, images, labels, names, record)
    series = series_demo(out / "series", settings, step="[6/6] ")
    seconds = time.perf_counter() - t_start
    write_json(out / "demo.json", {"normal_class": args.normal_class, "entry": record, "pretrained": used, "plots": plots,
                                   "series": series,
                                   "detector_scores": {names[c]: float(s) for c, s in zip(labels, det.score(images))},
                                   "per_class_device": reports[record["quant"]]["model"].get("per_class"),
                                   "seconds": seconds})
    print(f"done in {seconds / 60:.1f} min: {out / 'entry'} (model.keras, detector/, card.json), {out / 'demo.json'}")
    return 0
