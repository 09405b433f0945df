"""``aezoo models`` and ``aezoo zoo build | list | verify | table``: the variants and the pretrained entries."""

from __future__ import annotations

import argparse
from typing import Any

import zoo
from training.cli.args import int_arg, int_list, name_list
from training.pipeline import ENTRY_QUANTS
from zoo.errors import UserError

SAVED = "default: $AEZOO_SAVED_MODELS or the repository's saved_models/"


def register(sub: Any) -> None:
    """Add ``models`` and ``zoo``."""
    p = sub.add_parser("models", help="list the model zoo's variants with parameter counts and int8 sizes")
    p.add_argument("pattern", nargs="?", default="*", help="glob over variant names (default: all)")
    p.add_argument("--input-shape", default="28,28,1", help="input shape to build each variant with: H,W,C (images), WINDOW,CHANNELS (series, "
                                                        "e.g. 64,1) or FEATURES (default: 28,28,1)")
    p.add_argument("--measure", action="store_true",
                   help="convert each variant to full-int8 TFLite and report the real size (slower) instead of the estimate")
    p.set_defaults(func=_models)
    _register_zoo(sub)


def _register_zoo(sub: Any) -> None:
    p = sub.add_parser("zoo", help="build, list and verify the pretrained entries in saved_models/; write the README table",
                       description="Pretrained entries: saved_models/<model>/<dataset>/class_<k>/ (model.keras, score.npz, "
                                   "detector/, card.json) listed with sha256s and metrics in saved_models/manifest.json.")
    zsub = p.add_subparsers(dest="zoo_command", metavar="ACTION")
    zsub.required = True
    b = zsub.add_parser("build", help="train, QAT, export and evaluate every model x normal class (resumable)",
                        description="For each model and normal class: train with the zoo's fixed settings, QAT fine-tune, "
                                    "export the int8 detector, evaluate float, QAT and int8 beside PCA and kNN on the test "
                                    "split, and record the entry in manifest.json. Complete, verified entries are skipped; "
                                    "an interrupted training run resumes from --runs.")
    b.add_argument("--dataset", default="fashion_mnist", help="default fashion_mnist")
    b.add_argument("--models", type=name_list, help="comma-separated model names (default: every registered model)")
    b.add_argument("--classes", type=int_list, help="comma-separated normal classes (default: all)")
    b.add_argument("--score", help="score kind of the detectors (default: the zoo's, nap)")
    b.add_argument("--epochs", type=int_arg(1, 10_000), help="maximum training epochs (default: the zoo's)")
    b.add_argument("--min-steps", type=int_arg(0, 10_000_000), help="least optimizer steps per training (default: the zoo's)")
    b.add_argument("--patience", type=int_arg(1, 10_000), help="early-stopping patience (default: the zoo's)")
    b.add_argument("--qat-epochs", type=int_arg(1, 1000), help="QAT fine-tuning epochs (default: the zoo's)")
    b.add_argument("--quant", choices=("auto", *ENTRY_QUANTS),
                   help="the device detector's mode (default auto: int16x8 for nap, whose verdicts then agree on every "
                        "runtime; int8 by QAT otherwise)")
    b.add_argument("--seed", type=int_arg(0), help="default 0")
    b.add_argument("--runs", default="runs/zoo_build", metavar="DIR", help="training run folders, kept for resuming")
    b.add_argument("--saved-models", metavar="DIR", help=SAVED)
    b.add_argument("--force", action="store_true",
                   help="rebuild entries that are already complete (from their float model when the training settings "
                        "match and no run folder is there: a new --quant trains nothing)")
    b.add_argument("--shard", default="1/1", metavar="I/N",
                   help="build only the I-th of N interleaved shares of the entries (N machines, then `zoo merge`)")
    b.set_defaults(func=_build)
    m = zsub.add_parser("merge", help="combine the saved_models folders of a sharded build into one",
                        description="Copies every entry of the SHARD folders (each verified against its manifest) into "
                                    "--into and merges the manifests; an entry in two shards (or already in --into) is "
                                    "refused before anything is copied.")
    m.add_argument("shards", nargs="+", metavar="SHARD", help="saved_models folders written by `zoo build --shard`")
    m.add_argument("--into", required=True, metavar="DIR", help="the merged saved_models folder")
    m.set_defaults(func=_merge)
    _register_inspection(zsub)


def _register_inspection(zsub: Any) -> None:
    """zoo list | verify | compare-scores | latency | agreement | table: reading (and re-measuring) the entries."""
    ls = zsub.add_parser("list", help="print the pretrained entries and their metrics")
    ls.add_argument("pattern", nargs="?", default="*", help="glob over model names (default: all)")
    ls.add_argument("--dataset", help="only this dataset")
    ls.add_argument("--saved-models", metavar="DIR", help=SAVED)
    ls.set_defaults(func=_list)
    v = zsub.add_parser("verify", help="check every entry's files against the manifest's sha256s and the 50 MB limit")
    v.add_argument("--saved-models", metavar="DIR", help=SAVED)
    v.set_defaults(func=_verify)
    c = zsub.add_parser("compare-scores", help="compare score kinds on the entries, on a development split of the "
                                               "training data (how each variant's default score was chosen)",
                        description="For each entry's float model: fit each score on the normal training images and "
                                    "measure AUROC on a development split made of the train split only (the class's "
                                    "held-out validation images vs 2,000 train images of the other classes). The test "
                                    "split is never read. Writes --out (JSON).")
    c.add_argument("--models", type=name_list, help="comma-separated model names (default: all)")
    c.add_argument("--scores", type=name_list, default=["mse", "nap"], help="score kinds (default: mse,nap)")
    c.add_argument("--classes", type=int_list, help="normal classes (default: all)")
    c.add_argument("--out", metavar="FILE.json", default="runs/compare_scores.json", help="default runs/compare_scores.json")
    c.add_argument("--saved-models", metavar="DIR", help=SAVED)
    c.set_defaults(func=_compare_scores)

    lat = zsub.add_parser("latency", help="measure every entry's batch-1 latency again on this machine (run it idle)",
                          description="Latency belongs to a machine: re-measure each entry's int8 detector (batch 1, one "
                                      "thread, median of 1,000 calls; and the bare invoke) and its throughput, and record "
                                      "them with this machine's CPU in the manifest and the cards.")
    lat.add_argument("--models", type=name_list, help="comma-separated model names (default: all)")
    lat.add_argument("--saved-models", metavar="DIR", help=SAVED)
    lat.set_defaults(func=_latency)

    ag = zsub.add_parser("agreement", help="measure every entry's verdict agreement across runtimes on its test split",
                         description="For each entry: its int8 detector on LiteRT's default (XNNPACK) and reference "
                                     "kernels and its float Keras model (at its own threshold) score the test split; "
                                     "record, per pair, the fraction of the same verdicts and the score differences in "
                                     "the manifest and the card (the zoo table shows them). Nothing is chosen on it.")
    ag.add_argument("--models", type=name_list, help="comma-separated model names (default: all)")
    ag.add_argument("--saved-models", metavar="DIR", help=SAVED)
    ag.set_defaults(func=_agreement)

    t = zsub.add_parser("table", help="print the README zoo table from the manifest, or rewrite it in a README")
    t.add_argument("--dataset", help="only this dataset (default: one table per dataset in the manifest)")
    t.add_argument("--write", metavar="README", help="replace the section between the zoo-table markers of this file")
    t.add_argument("--saved-models", metavar="DIR", help=SAVED)
    t.set_defaults(func=_table)


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1 or len(shape) not in (1, 2, 3):
        raise UserError("--input-shape must be HEIGHT,WIDTH,CHANNELS (images), WINDOW,CHANNELS (series) or FEATURES "
                        f"(vectors), positive integers. Received: {text!r}")
    return shape


def _measured_int8_size(model: Any) -> int:
    import numpy as np

    from training.convert import to_tflite

    reps = np.random.default_rng(0).random((8, *model.input_shape[1:]), dtype=np.float32)
    return len(to_tflite(model, "int8", reps))


def _models(args: argparse.Namespace) -> int:
    from training.progress import progress

    from zoo.registry import int8_size_estimate

    shape = _parse_shape(args.input_shape)
    kind = {3: "image", 2: "series", 1: "vector"}[len(shape)]
    names = zoo.list_models(args.pattern)
    if not names:
        raise UserError(f"no model matches {args.pattern!r}. Valid models: {', '.join(zoo.list_models())}")
    rows = []
    for name in progress(names, desc="models", unit="model", leave=False, disable=not args.measure):
        info = zoo.model_info(name)
        if kind not in info.input_kinds:
            rows.append((name, info.family, ",".join(info.input_kinds), info.score, "-", "-", info.summary))
            continue
        model = zoo.build(name, input_shape=shape)
        size = _measured_int8_size(model) if args.measure else int8_size_estimate(model)
        rows.append((name, info.family, ",".join(info.input_kinds), info.score, f"{model.count_params():,}",
                     f"{size / 1024:.1f}", info.summary))
    how = "measured by converting (full int8, post-training)" if args.measure else "estimated from the weights (full int8, post-training)"
    header = ("model", "family", "inputs", "score", "params", "int8 KiB", "description")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(6)]
    print(f"Input shape {shape}; int8 size of the reconstruction model {how}; score = the default anomaly score.")
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  " + row[6])
    return 0


def _build(args: argparse.Namespace) -> int:
    from training import pipeline

    given = {"score": args.score, "epochs": args.epochs, "min_steps": args.min_steps, "patience": args.patience,
             "qat_epochs": args.qat_epochs, "seed": args.seed, "quant": args.quant}
    settings = pipeline.EntrySettings().replace(**{k: v for k, v in given.items() if v is not None})
    shard = pipeline.parse_shard(args.shard)
    result = pipeline.build_zoo(args.dataset, models=args.models, classes=args.classes, settings=settings,
                                runs_dir=args.runs, root=args.saved_models, force=args.force, shard=shard)
    print(f"built {len(result['built'])} entries, skipped {len(result['skipped'])} complete ones, "
          f"in {result['seconds'] / 60:.1f} min; manifest: {result['root']}/manifest.json")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from zoo import pretrained

    merged = pretrained.merge(args.shards, args.into)
    print(f"merged {len(merged)} entries from {len(args.shards)} shards into {args.into}/manifest.json")
    return 0


def _list(args: argparse.Namespace) -> int:
    from zoo import catalog, pretrained

    root = catalog.saved_models_dir(args.saved_models, must_exist=True)
    records = catalog.list_pretrained(args.pattern, dataset=args.dataset, root=root)
    if not records:
        print(f"No pretrained entries match {args.pattern!r} in {root}.")
        return 0
    header = ("entry", "score", "device", "AUROC", "float AUROC", "PCA AUROC", "kNN AUROC", "threshold", "KiB", "latency us")
    rows = [(r["path"], r.get("score", "mse"), catalog.device_key(r),
             *(pretrained.format_auroc(r, w) for w in (catalog.device_key(r), "float", "pca", "knn")),
             f"{r['threshold'][catalog.device_key(r)]['value']:.5g}", f"{r['size'].get('bundle_bytes', r['size']['tflite_bytes']) / 1024:.1f}",
             f"{pretrained.latency_us(r):.0f}") for r in records]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    print(f"{len(records)} entries in {root}; load one with zoo.load(model, dataset=..., normal_class=...) "
          "or edge.Detector.from_zoo(...)")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from zoo import catalog

    root = catalog.saved_models_dir(args.saved_models, must_exist=True)
    records = catalog.list_pretrained(root=root, require_manifest=True)
    bad = 0
    for r in records:
        problems = catalog.entry_problems(r, root)
        if problems:
            bad += 1
            print(f"FAILED {r['path']}:")
            for problem in problems:
                print(f"  {problem}")
    total = catalog.total_bytes(root)
    limit = catalog.MAX_TOTAL_BYTES
    print(f"{len(records) - bad} of {len(records)} entries verified; saved_models holds {total / 2**20:.1f} MiB "
          f"(limit {limit / 2**20:.0f} MiB)")
    if not records:
        raise UserError(f"{root / catalog.MANIFEST} lists no entries: nothing to verify")
    if bad:  # a failed check is the user's data, not a bug: exit 2 like every refusal (1 means an internal error)
        raise UserError(f"{bad} of {len(records)} entries failed (listed above); restore their files with "
                        "`git checkout -- saved_models/...` or rebuild them with `aezoo zoo build --models MODEL --classes K`")
    if total > limit:
        raise UserError(f"saved_models holds {total / 2**20:.1f} MiB, over the {limit / 2**20:.0f} MiB limit")
    return 0


def _compare_scores(args: argparse.Namespace) -> int:
    from training.benchmark import compare_scores
    from zoo.files import write_json

    models = args.models or zoo.list_models()
    result = compare_scores(models, args.scores, classes=args.classes, root=args.saved_models)
    for m, means in result["mean"].items():
        print(f"{m:<14} " + "  ".join(f"{s} {v:.4f}" for s, v in means.items()) + f"  -> {result['best'][m]}")
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


def _latency(args: argparse.Namespace) -> int:
    from training.pipeline import remeasure_latency

    updated = remeasure_latency(args.saved_models, models=args.models)
    print(f"measured {len(updated)} entries again")
    return 0


def _agreement(args: argparse.Namespace) -> int:
    from training.pipeline import remeasure_agreement

    def report(key: str, result: dict) -> None:
        kernels = result["pairs"]["litert_default vs litert_reference"]
        p99 = kernels.get("score_diff_p99")
        print(f"{key}: kernels agree on {100 * kernels['verdicts_agree']:.2f}% ({kernels['disagree']} differ, score "
              f"difference p99 {'n/a (threshold 0)' if p99 is None else f'{100 * p99:.1f}% of the threshold'}); float vs int8 "
              f"{100 * result['pairs']['litert_default vs keras_float']['verdicts_agree']:.2f}%", flush=True)

    updated = remeasure_agreement(args.saved_models, models=args.models, progress=report)
    print(f"measured {len(updated)} entries")
    return 0


def _table(args: argparse.Namespace) -> int:
    from zoo import catalog, pretrained

    table = pretrained.zoo_table(dataset=args.dataset, root=catalog.saved_models_dir(args.saved_models, must_exist=True))
    if args.write:
        changed = pretrained.write_readme_table(args.write, table)
        print(f"{'updated' if changed else 'already up to date:'} the zoo table in {args.write}")
    else:
        print(table)
    return 0
