"""``aezoo optimize``, ``aezoo export`` and ``aezoo report``: compression, conversion, and their comparison."""

from __future__ import annotations

import argparse
import json
from typing import Any

from edge.bundle import QUANT_MODES, QUANTIZERS
from training.cli.args import fraction, int_arg, positive_float

METHODS = ("qat", "prune", "cluster", "pqat", "cqat")  # training.compress.METHODS, without importing TensorFlow


def register(sub: Any) -> None:
    """Add ``optimize``, ``export`` and ``report``."""
    p = sub.add_parser(
        "optimize", help="compress a trained run with TFMOT (QAT, pruning, clustering, or pruning/cluster-preserving QAT)",
        description="Fine-tune RUN's model with the TensorFlow Model Optimization toolkit on its normal training inputs "
                    "and write the result as a run folder of its own (default: RUN-METHOD beside RUN): the score refitted "
                    "and the threshold recalibrated on normal data, metrics beside PCA and kNN, kernel sparsity and "
                    "unique values. `aezoo evaluate` and `aezoo export` work on it like on any run. Methods: qat, prune "
                    "(to --sparsity), cluster (--clusters values per kernel), pqat / cqat (prune / cluster, then QAT that "
                    "keeps the zeros / the shared values).")
    p.add_argument("run", metavar="RUN", help="training run folder")
    p.add_argument("--method", required=True, choices=METHODS, help="compression method")
    p.add_argument("--sparsity", type=fraction, default=0.5, help="prune/pqat: target fraction of zero kernel weights; default 0.5")
    p.add_argument("--clusters", type=int_arg(2, 256), default=16, help="cluster/cqat: shared values per kernel; default 16")
    p.add_argument("--epochs", type=int_arg(1, 10_000), default=3, help="fine-tuning epochs (per stage for pqat/cqat); default 3")
    p.add_argument("--lr", type=positive_float, default=2e-4, help="fine-tuning learning rate; default 0.0002")
    p.add_argument("--batch-size", type=int_arg(1, 65_536), default=128, help="default 128")
    p.add_argument("--seed", type=int_arg(0), default=0, help="default 0")
    p.add_argument("--out", metavar="DIR", help="the compressed run folder (default: RUN-METHOD beside RUN)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no Keras progress bar")
    p.set_defaults(func=_optimize)

    p = sub.add_parser(
        "export", help="export a run to a detector bundle (.tflite + detector.json) or a C array for TFLite Micro",
        description="Convert RUN's detector (its network and score graph) to TFLite and write a bundle: model.tflite and "
                    "detector.json (tensors, preprocessing, score, a threshold recalibrated on the exported model's "
                    "scores of the normal validation inputs, provenance). --format c-array also writes aezoo_model.c/.h "
                    "and checks the model, its scores and verdicts under TFLite Micro. See docs/BUNDLE.md.")
    p.add_argument("run", metavar="RUN", help="training run folder")
    p.add_argument("--quant", choices=("auto", *QUANT_MODES), default="auto",
                   help="quantization (default auto: int16x8 for the nap score, int8 otherwise and for c-array, "
                        "--quantizer litert and QAT/pruned/clustered runs; int8: full integer, fastest on XNNPACK; "
                        "int16x8: 16-bit activations, the same verdict on XNNPACK and reference kernels at several "
                        "times the latency)")
    p.add_argument("--out", required=True, help="bundle directory to write (new, empty, or a bundle with --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out (never anything else)")
    p.add_argument("--sign-key", metavar="KEY", help="sign the bundle with this Ed25519 private key (`aezoo keygen KEY`): "
                   "a device given KEY.pub loads only bundles it signed (`aezoo detect --public-key`, $AEZOO_PUBLIC_KEY)")
    p.add_argument("--format", dest="fmt", choices=("bundle", "c-array"), default="bundle",
                   help="bundle (default), or c-array: int8 batch-1 model + C source/header + TFLite Micro check")
    p.add_argument("--representative", type=int_arg(1, 100_000), default=500, metavar="N",
                   help="normal training inputs used to calibrate int8 (default: 500)")
    p.add_argument("--quantizer", choices=QUANTIZERS, default=QUANTIZERS[0],
                   help="who makes the int8 model: TensorFlow's TFLiteConverter (default) or the LiteRT Quantizer "
                        "(litert-quantizer) on the float .tflite")
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "report", help="compare a trained model with its TFLite and compressed versions: AUROC, size, latency, throughput",
        description="One table for RUN: the float Keras detector; float32, float16, dynamic and int8 TFLite; and int8 "
                    "TFLite of the compressed runs (existing RUN-METHOD folders are reused, missing ones made with "
                    "`aezoo optimize` defaults). Per row: test AUROC, recall at 5% FPR, file and gzip -9 size, batch-1 "
                    "latency through edge.Detector and the interpreter's bare invoke(), and inputs/s at a large batch.")
    p.add_argument("run", metavar="RUN", help="training run folder (float model)")
    p.add_argument("--out", metavar="DIR", help="default RUN/report")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=["qat", "prune", "cluster"],
                   help="compressed variants to include; default: qat prune cluster")
    p.add_argument("--iterations", type=int_arg(1, 1_000_000), default=1000, help="timed batch-1 calls per row; default 1000")
    p.add_argument("--batch", type=int_arg(1, 10_000), default=1000, help="batch size of the throughput column; default 1000")
    p.add_argument("--epochs", type=int_arg(1, 10_000), default=3, help="fine-tuning epochs of compressed runs it creates; default 3")
    p.set_defaults(func=_report)


def _optimize(args: argparse.Namespace) -> int:
    from training.compress import CompressConfig, format_stats, optimize_run
    from training.evaluate import format_report
    from training.runs import METRICS, read_json

    config = CompressConfig(method=args.method, epochs=args.epochs, sparsity=args.sparsity, clusters=args.clusters,
                            lr=args.lr, batch_size=args.batch_size, seed=args.seed).validate()
    out = optimize_run(args.run, config, out=args.out, plots=not args.no_plots, verbose=0 if args.quiet else "auto")
    report = read_json(out / METRICS, "the compressed run's metrics")
    print(format_report(report))
    print(format_stats(report))
    source = report["compression"].get("source_auroc")
    if source is not None and report["model"]["auroc"] is not None:
        print(f"AUROC {report['model']['auroc']:.4f} (source run {source:.4f}, change {report['model']['auroc'] - source:+.4f})")
    print(f"run folder: {out}  (next: aezoo export {out} --out BUNDLE --quant int8)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from training.convert import export_run

    out = export_run(args.run, args.out, quant=args.quant, fmt=args.fmt, n_representative=args.representative,
                     overwrite=args.overwrite, quantizer=args.quantizer, sign_key=args.sign_key)
    spec = json.loads((out / "detector.json").read_text())
    print(f"wrote {out}/: {spec['model']['file']} ({spec['model']['bytes']} bytes, {spec['model']['quant']}), "
          f"detector.json (score {spec['score']['kind']}, threshold {spec['threshold']['value']:.6g}, "
          f"{spec['threshold']['method']})")
    micro = spec.get("micro")
    if micro is not None:
        print(f"TFLite Micro: {micro['message']}; ops: {', '.join(micro['ops'])}")
        return 0 if micro["ok"] else 1
    return 0


def _report(args: argparse.Namespace) -> int:
    from training.report import build_report, report_markdown

    report = build_report(args.run, out=args.out, methods=args.methods, iterations=args.iterations, batch=args.batch,
                          epochs=args.epochs)
    print(report_markdown(report))
    print(f"wrote {report['files']['markdown']} and {report['files']['json']}")
    return 0
