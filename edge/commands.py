"""``aezoo export`` and ``aezoo detect`` (no TensorFlow at import time; ``detect`` never imports it)."""

from __future__ import annotations

import argparse
import json
import sys

QUANT_CHOICES = ("float32", "float16", "dynamic", "int8")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` and ``detect`` subcommands."""
    p = sub.add_parser(
        "export",
        help="export a training run to a detector bundle (.tflite + detector.json) or a C array for TFLite Micro",
        description="Convert RUN/model.keras to TFLite and write a detector bundle: model.tflite and detector.json "
        "(shapes, quantization, preprocessing, score, a threshold recalibrated on the exported model's scores of "
        "the normal validation images, provenance). --format c-array also writes aezoo_model.c/.h and checks the "
        "model under TFLite Micro. The format is described in docs/BUNDLE.md.",
    )
    p.add_argument("run", metavar="RUN", help="training run folder (model.keras, config.json, threshold.json)")
    p.add_argument("--quant", choices=QUANT_CHOICES, default="int8", help="quantization (default: int8, full integer)")
    p.add_argument("--out", required=True, help="bundle directory to write (replaced atomically)")
    p.add_argument("--format", dest="fmt", choices=("bundle", "c-array"), default="bundle",
                   help="bundle (default), or c-array: int8 batch-1 model + C source/header + TFLite Micro check")
    p.add_argument("--representative", type=int, default=500, metavar="N",
                   help="normal training images used to calibrate int8 (default: 500)")
    p.add_argument("--data-dir", default=None, help="dataset directory, if not the run's")
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "detect",
        help="score images with a detector bundle (needs only ai-edge-litert, numpy, Pillow)",
        description="Print an anomaly score and a verdict (score > threshold = anomaly) per input. Inputs: PNG/JPEG "
        "images of the bundle's size (converted to its color mode) or .npy arrays (one image or a batch; uint8 "
        "0..255 or float in [0, 1]).",
    )
    p.add_argument("bundle", metavar="BUNDLE", help="detector bundle directory")
    p.add_argument("files", metavar="FILES", nargs="+", help="PNG/JPEG images or .npy arrays")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--threads", type=int, default=1, help="LiteRT CPU threads (default: 1)")
    p.set_defaults(func=_detect)


def _export(args: argparse.Namespace) -> int:
    from zoo.errors import UserError

    if args.representative < 1:
        raise UserError(f"--representative must be at least 1. Received: {args.representative}")
    from edge.convert import export_run

    out = export_run(args.run, args.out, quant=args.quant, fmt=args.fmt, data_dir=args.data_dir,
                     n_representative=args.representative)
    spec = json.loads((out / "detector.json").read_text())
    print(f"wrote {out}/: {spec['model']['file']} ({spec['model']['bytes']} bytes, {spec['model']['quant']}), "
          f"detector.json (threshold {spec['threshold']['value']:.6g}, {spec['threshold']['method']}, "
          f"{spec['score']['kind']})")
    micro = spec.get("micro")
    if micro is not None:
        print(f"TFLite Micro: {'OK' if micro['ok'] else 'FAILED'}: {micro['message']}; ops: {', '.join(micro['ops'])}")
        if not micro["ok"]:
            return 1
    return 0


def _detect(args: argparse.Namespace) -> int:
    import numpy as np

    from edge.detector import Detector, load_image_file
    from zoo.errors import UserError

    detector = Detector.load(args.bundle, num_threads=args.threads)
    names, arrays = [], []
    for path in args.files:
        arr = load_image_file(path, detector.spec)
        try:
            x = detector.prepare(arr)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        arrays.append(x)
        names += [path] if len(x) == 1 else [f"{path}[{i}]" for i in range(len(x))]
    scores = detector.score(np.concatenate([a.astype(np.float32, copy=False) for a in arrays]))
    verdicts = scores > detector.threshold_
    if args.json:
        results = [{"input": n, "score": float(s), "anomaly": bool(v)} for n, s, v in zip(names, scores, verdicts)]
        json.dump({"bundle": args.bundle, "score": detector.score_kind, "threshold": detector.threshold_,
                   "results": results}, sys.stdout, indent=2)
        print()
    else:
        width = max(len(n) for n in names)
        for n, s, v in zip(names, scores, verdicts):
            print(f"{n:<{width}}  {detector.score_kind}={s:.6g}  {'ANOMALY' if v else 'normal'}")
        print(f"({len(names)} inputs, threshold {detector.threshold_:.6g}, {int(verdicts.sum())} anomalies)")
    return 0
