"""``aezoo models``: list the zoo's variants (TensorFlow is imported only when it runs)."""

from __future__ import annotations

import argparse
import math
from typing import Any

# Per weighted layer, a full-int8 TFLite file stores 1 byte per weight and, per output
# channel, an int32 bias plus per-channel scale/zero point (float32 + int64) for the
# weights and for the bias: 4 + 12 + 12 bytes. The rest (ops, tensor names, shape
# arithmetic of a dynamic batch, activation quantization) came to about 1.1 KB per
# weighted layer when the default variants were converted (TF 2.21).
_BYTES_PER_CHANNEL = 28
_BYTES_PER_LAYER = 1100
_WEIGHTED = ("Dense", "Conv2D", "Conv2DTranspose")
# Layers that the deterministic (inference) graph never reaches, so TFLite drops them.
_TRAINING_ONLY = ("z_log_var",)


def register(sub: Any) -> None:
    """Add the ``models`` subcommand."""
    p = sub.add_parser("models", help="list the model zoo's variants with parameter counts and int8 sizes")
    p.add_argument("pattern", nargs="?", default="*", help="glob over variant names (default: all)")
    p.add_argument(
        "--input-shape",
        default="28,28,1",
        help="input shape to build each variant with, comma-separated (default: 28,28,1)",
    )
    p.add_argument(
        "--measure",
        action="store_true",
        help="convert each variant to full-int8 TFLite and report the real size (slower) instead of the estimate",
    )
    p.set_defaults(func=_models)
    _register_zoo(sub)


def int8_size_estimate(model: Any) -> int:
    """Estimate the bytes of a post-training full-int8 TFLite file of ``model``'s inference graph.

    Counts weights at 1 byte and per-channel quantization data per output channel
    (see the constants above); within about 1% of measured sizes for the zoo's defaults.
    """
    total = 0
    for layer in model.layers:
        if type(layer).__name__ not in _WEIGHTED or layer.name in _TRAINING_ONLY:
            continue
        kernel = layer.kernel
        channels = kernel.shape[-2] if type(layer).__name__ == "Conv2DTranspose" else kernel.shape[-1]
        total += math.prod(kernel.shape) + _BYTES_PER_CHANNEL * channels + _BYTES_PER_LAYER
    return total


def _measured_int8_size(model: Any) -> int:
    import numpy as np

    from zoo.keras import tf

    shape = tuple(model.input_shape[1:])
    reps = np.random.default_rng(0).random((8, 1, *shape), dtype=np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([r] for r in reps)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return len(converter.convert())


def _parse_shape(text: str) -> tuple[int, ...]:
    from zoo.errors import UserError

    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise UserError(f"--input-shape must be positive integers separated by commas, e.g. 28,28,1. Received: {text!r}")
    return shape


def _models(args: argparse.Namespace) -> int:
    import zoo
    from tqdm import tqdm

    shape = _parse_shape(args.input_shape)
    kind = "image" if len(shape) == 3 else "vector"
    names = zoo.list_models(args.pattern)
    if not names:
        print(f"No model matches {args.pattern!r}. Valid models: {', '.join(zoo.list_models())}")
        return 0
    rows = []
    for name in tqdm(names, desc="models", unit="model", leave=False, disable=not args.measure):
        info = zoo.model_info(name)
        if kind not in info.input_kinds:
            rows.append((name, info.family, ",".join(info.input_kinds), "-", "-", info.summary))
            continue
        model = zoo.build(name, input_shape=shape)
        size = _measured_int8_size(model) if args.measure else int8_size_estimate(model)
        rows.append((name, info.family, ",".join(info.input_kinds), f"{model.count_params():,}", f"{size / 1024:.1f}", info.summary))
    how = "measured by converting (full int8, post-training)" if args.measure else "estimated from the weights (full int8, post-training)"
    header = ("model", "family", "inputs", "params", "int8 KiB", "description")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    print(f"Input shape {shape}; int8 size {how}.")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  " + header[5])
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  " + row[5])
    return 0


# --- pretrained zoo: aezoo zoo build|list|verify|table (issue 6) ------------------------------------------


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected class ids separated by commas, e.g. 0,6. Received: {text!r}")
    return values


def _name_list(text: str) -> list[str]:
    names = [part for part in text.replace(" ", "").split(",") if part]
    if not names:
        raise argparse.ArgumentTypeError(f"expected model names separated by commas, e.g. conv_ae,vae. Received: {text!r}")
    return names


def _register_zoo(sub: Any) -> None:
    p = sub.add_parser("zoo", help="build, list, verify the pretrained entries in saved_models/ and write the README table",
                       description="Pretrained entries: saved_models/<model>/<dataset>/class_<k>/ (model.keras, detector/, "
                                   "card.json) listed with sha256s and metrics in saved_models/manifest.json. The folder "
                                   "is the repository's saved_models/ or $AEZOO_SAVED_MODELS.")
    zsub = p.add_subparsers(dest="zoo_command", metavar="ACTION")
    zsub.required = True
    b = zsub.add_parser("build", help="train, QAT, export and evaluate every model x normal class (resumable)",
                        description="For each registered model and normal class: train with the zoo's fixed defaults, "
                                    "QAT fine-tune, export the int8 detector, evaluate float, QAT, int8 and PCA on the test "
                                    "split, and record the entry in saved_models/manifest.json. Entries already complete and "
                                    "verified are skipped; an interrupted training run resumes from runs/zoo_build/.")
    b.add_argument("--dataset", default="fashion_mnist", help="default fashion_mnist")
    b.add_argument("--models", type=_name_list, help="comma-separated model names (default: every registered model)")
    b.add_argument("--classes", type=_int_list, help="comma-separated normal classes (default: all)")
    b.add_argument("--epochs", type=int, help="maximum training epochs (default: the zoo's budgeted value)")
    b.add_argument("--patience", type=int, help="early-stopping patience (default: the zoo's budgeted value)")
    b.add_argument("--qat-epochs", type=int, help="QAT fine-tuning epochs (default: the zoo's budgeted value)")
    b.add_argument("--seed", type=int, default=0, help="default 0")
    b.add_argument("--runs", default="runs/zoo_build", metavar="DIR", help="training run folders, kept for resuming (default runs/zoo_build)")
    b.add_argument("--saved-models", metavar="DIR", help="default: $AEZOO_SAVED_MODELS or the repository's saved_models/")
    b.add_argument("--data-dir", metavar="DIR", help="TFDS data directory")
    b.add_argument("--force", action="store_true", help="rebuild entries that are already complete")
    b.set_defaults(func=_zoo_build)

    ls = zsub.add_parser("list", help="print the pretrained entries and their metrics")
    ls.add_argument("pattern", nargs="?", default="*", help="glob over model names (default: all)")
    ls.add_argument("--dataset", help="only this dataset")
    ls.add_argument("--saved-models", metavar="DIR", help="default: $AEZOO_SAVED_MODELS or the repository's saved_models/")
    ls.set_defaults(func=_zoo_list)

    v = zsub.add_parser("verify", help="check every entry's files against the manifest's sha256s and the 50 MB limit")
    v.add_argument("--saved-models", metavar="DIR", help="default: $AEZOO_SAVED_MODELS or the repository's saved_models/")
    v.set_defaults(func=_zoo_verify)

    t = zsub.add_parser("table", help="print the README zoo table from the manifest, or rewrite it in a README")
    t.add_argument("--dataset", default="fashion_mnist", help="default fashion_mnist")
    t.add_argument("--write", metavar="README", help="replace the section between the zoo-table markers of this file")
    t.add_argument("--saved-models", metavar="DIR", help="default: $AEZOO_SAVED_MODELS or the repository's saved_models/")
    t.set_defaults(func=_zoo_table)


def _zoo_build(args: argparse.Namespace) -> int:
    from training import pipeline

    options = {"epochs": args.epochs, "patience": args.patience, "qat_epochs": args.qat_epochs}
    result = pipeline.build_zoo(args.dataset, models=args.models, classes=args.classes, seed=args.seed, runs=args.runs,
                                root=args.saved_models, data_dir=args.data_dir, force=args.force,
                                **{k: v for k, v in options.items() if v is not None})
    print(f"built {len(result['built'])} entries, skipped {len(result['skipped'])} complete ones, "
          f"in {result['seconds'] / 60:.1f} min; manifest: {result['root']}/manifest.json")
    return 0


def _zoo_list(args: argparse.Namespace) -> int:
    from zoo import pretrained

    root = pretrained.saved_models_dir(args.saved_models)
    records = pretrained.list_pretrained(args.pattern, dataset=args.dataset, root=root)
    if not records:
        print(f"No pretrained entries in {root} (build them with `aezoo zoo build --dataset fashion_mnist`).")
        return 0
    header = ("entry", "int8 AUROC", "float AUROC", "PCA AUROC", "int8 AUPRC", "threshold", "KiB", "latency us", "train s", "entry s")
    rows = []
    for r in records:
        m = r["metrics"]
        rows.append((r["path"], f"{m['int8']['auroc']:.4f}", f"{m['float']['auroc']:.4f}", f"{m['pca']['auroc']:.4f}",
                     f"{m['int8']['auprc']:.4f}", f"{r['threshold']['int8']['value']:.5g}", f"{r['size']['tflite_bytes'] / 1024:.1f}",
                     f"{r['latency']['median_us']:.0f}", f"{r['timing']['train_seconds']:.0f}", f"{r['timing']['entry_seconds']:.0f}"))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    print(f"{len(records)} entries in {root}; load one with zoo.load(model, dataset=..., normal_class=...) "
          "or edge.Detector.from_zoo(...)")
    return 0


def _zoo_verify(args: argparse.Namespace) -> int:
    from zoo import pretrained

    root = pretrained.saved_models_dir(args.saved_models)
    records = pretrained.list_pretrained(root=root)
    bad = 0
    for r in records:
        problems = pretrained.entry_problems(r, root)
        if problems:
            bad += 1
            print(f"FAILED {r['path']}:")
            for problem in problems:
                print(f"  {problem}")
    total = pretrained.total_bytes(root)
    limit = pretrained.MAX_TOTAL_BYTES
    print(f"{len(records) - bad} of {len(records)} entries verified; saved_models holds {total / 2**20:.1f} MiB "
          f"(limit {limit / 2**20:.0f} MiB)")
    if bad:
        print("Restore the files with `git checkout -- saved_models/...` or rebuild them with "
              "`aezoo zoo build --models MODEL --classes K`.")
    return 1 if bad or total > limit else 0


def _zoo_table(args: argparse.Namespace) -> int:
    from zoo import pretrained

    table = pretrained.zoo_table(dataset=args.dataset, root=args.saved_models)
    if args.write:
        changed = pretrained.write_readme_table(args.write, table)
        print(f"{'updated' if changed else 'already up to date:'} the zoo table in {args.write}")
    else:
        print(table)
    return 0
