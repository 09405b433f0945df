"""``aezoo bench small-images | vectors | series | series-dev | fidelity | stream | corruption | fuzz``: benchmarks that print and record their figures."""

from __future__ import annotations

import argparse
from typing import Any

from training.cli.args import float_list, int_arg, name_list


def register(sub: Any) -> None:
    """Add ``bench``."""
    p = sub.add_parser("bench", help="own-data benchmarks: a small real image folder, feature vectors from a CSV")
    bsub = p.add_subparsers(dest="bench_command", metavar="ACTION")
    bsub.required = True
    s = bsub.add_parser("small-images", help="every model on a folder of N real Fashion-MNIST images per class, vs PCA and kNN",
                        description="Writes an image folder (N train PNGs per class drawn with a fixed seed, the full test "
                                    "split), trains each model on every class through the folder path (`aezoo train "
                                    "--dataset FOLDER --normal-class all`), and records the mean AUROC beside PCA and kNN.")
    s.add_argument("--per-class", type=int_arg(20, 6000), default=100, help="train images per class; default 100")
    s.add_argument("--models", type=name_list, default=["conv_ae", "dense_ae"], help="default conv_ae,dense_ae")
    s.add_argument("--epochs", type=int_arg(1, 10_000), default=30, help="default 30 (min_steps raises it for small data)")
    s.add_argument("--out", metavar="DIR", default="runs/bench_small_images", help="default runs/bench_small_images")
    s.set_defaults(func=_small_images)
    v = bsub.add_parser("vectors", help="dense models on a tabular dataset scikit-learn ships, vs PCA, kNN, IsolationForest",
                        description="Writes train.csv and test.csv (70/30, stratified) of the dataset and trains each model "
                                    "on the normal class's train rows through the CSV path.")
    v.add_argument("--dataset", choices=("breast_cancer", "wine"), default="breast_cancer", help="default breast_cancer")
    v.add_argument("--normal-class", type=int_arg(0), default=1, help="default 1 (benign, for breast_cancer)")
    v.add_argument("--models", type=name_list, default=["dense_ae", "denoising_ae", "sparse_ae", "vae"],
                   help="default dense_ae,denoising_ae,sparse_ae,vae")
    v.add_argument("--epochs", type=int_arg(1, 100_000), default=200, help="default 200")
    v.add_argument("--out", metavar="DIR", default="runs/bench_vectors", help="default runs/bench_vectors")
    v.set_defaults(func=_vectors)
    sr = bsub.add_parser("series", help="the default series detector (float and int8) vs PCA, kNN, IsolationForest and the "
                                        "matrix profile on the real sensor sets, every class",
                         description="Trains the default series variant on every class of basic_motions and acsf1 and on the "
                                     "kdd_tsad_135 recording, exports each as an int8 bundle, and scores float, int8 and the "
                                     "baselines on the same windows. Resumable: finished runs are reused.")
    sr.add_argument("--sets", type=name_list, default=["basic_motions", "acsf1", "kdd_tsad_135"],
                    help="default basic_motions,acsf1,kdd_tsad_135")
    sr.add_argument("--model", default=None, help="default conv1d_ae")
    sr.add_argument("--out", metavar="DIR", default="runs/bench_series", help="default runs/bench_series")
    sr.set_defaults(func=_series)
    d = bsub.add_parser("series-dev", help="how the series defaults were chosen: window x score x aggregation on a "
                                           "development split of the training series (the test split is never read)")
    d.add_argument("dataset", help="a series set, e.g. basic_motions or acsf1")
    d.add_argument("--windows", type=name_list, required=True, help="window lengths, e.g. 16,32,64")
    d.add_argument("--model", default="conv1d_ae", help="default conv1d_ae")
    d.add_argument("--out", metavar="DIR", default="runs/series_dev", help="default runs/series_dev")
    d.set_defaults(func=_series_dev)
    fd = bsub.add_parser("fidelity", help="device fidelity on development data: the int8 score head's quantization-noise "
                         "floor vs verdict agreement of LiteRT's two kernel sets and AUROC (test data never read)")
    fd.add_argument("--entries", type=name_list, required=True, metavar="MODEL/DATASET/CLASS,...",
                    help="zoo entries, e.g. conv_ae/fashion_mnist/8,conv1d_ae/acsf1/9")
    fd.add_argument("--steps", type=float_list, default=[0.0, 0.25, 1.0, 4.0],
                    help="noise floors in squared quantization steps (default 0,0.25,1,4)")
    fd.add_argument("--score", help="score the entries' networks with this kind instead of their own (e.g. mse)")
    fd.add_argument("--quant", choices=("int8", "int16x8"), default="int8", help="full-integer mode (default int8)")
    fd.add_argument("--c-array", action="store_true", help="export the microcontroller build (batch 1, TFLite Micro check)")
    fd.add_argument("--out", metavar="DIR", default="runs/bench_fidelity", help="default runs/bench_fidelity")
    fd.set_defaults(func=_fidelity)
    st = bsub.add_parser("stream", help="per-hop latency of StreamDetector on every series zoo entry, and the C stream "
                                        "detector under TFLite Micro",
                         description="Streams each series entry's test data through edge.StreamDetector in a TensorFlow-free "
                                     "child process (per-hop median and p99, the interpreter's invoke apart, samples per "
                                     "second); with --c-array RUN, exports RUN as a c-array bundle and runs its aezoo_detect.c "
                                     "with the model under TFLite Micro against LiteRT's verdicts.")
    st.add_argument("--saved-models", metavar="DIR", help="the zoo folder (default: saved_models/)")
    st.add_argument("--c-array", metavar="RUN", help="a series run folder to export and check as C")
    st.add_argument("--out", metavar="DIR", default="runs/bench_stream", help="default runs/bench_stream")
    st.set_defaults(func=_stream)
    _register_checks(bsub)


def _register_checks(bsub: Any) -> None:
    """The benchmarks that check behaviour rather than train: corruption, anomaly maps, fuzz."""
    c = bsub.add_parser("corruption", help="random single-byte and single-field corruptions of a bundle, through aezoo detect",
                        description="Counts, over --cases corrupted copies of BUNDLE: exit 0 with the intact bundle's "
                                    "verdicts, exit 2 with a one-line error, or anything else.")
    c.add_argument("bundle", metavar="BUNDLE", help="a detector bundle (it is copied, never changed)")
    c.add_argument("--cases", type=int_arg(1, 100_000), default=500, help="default 500")
    c.add_argument("--seed", type=int_arg(0), default=0, help="which random corruptions; default 0")
    c.add_argument("--out", metavar="DIR", default="runs/bench_corruption", help="default runs/bench_corruption")
    c.set_defaults(func=_corruption)
    am = bsub.add_parser("anomaly-maps", help="localization of the zoo's image anomaly maps on synthetic defects "
                                               "(pixel AUROC) beside PCA's per-pixel error and the mean normal image",
                         description="Pastes a patch of another class's test image into normal test images (mask known, "
                                     "labelled synthetic) and measures each entry's anomaly map (pixel AUROC) and score "
                                     "(image AUROC, defective vs intact); training.localization.")
    am.add_argument("--models", type=name_list, default=["conv_ae", "dense_ae"], help="default conv_ae,dense_ae")
    am.add_argument("--classes", type=name_list, default=[str(k) for k in range(10)], help="default 0..9")
    am.add_argument("--images", type=int_arg(10, 1000), default=200, help="normal test images per class; default 200")
    am.add_argument("--seed", type=int_arg(0), default=0, help="default 0")
    am.add_argument("--out", metavar="DIR", default="runs/bench_anomaly_maps", help="default runs/bench_anomaly_maps")
    am.set_defaults(func=_anomaly_maps)
    fz = bsub.add_parser("fuzz", help="a seeded sweep of generated user inputs (files, edited bundles, arguments) "
                                      "through aezoo: every case must end correct or in a clear refusal",
                         description="Generates --cases cases (image files, arrays, vector CSVs, recordings, detector.json "
                                     "edits with and without a recomputed hash, zoo manifest edits, arguments; training.fuzz) and runs each in a sandbox "
                                     "beside the user's own files. A problem: exit 1 or a traceback, a wrong answer with "
                                     "exit 0, a non-finite score judged, a changed user file.")
    fz.add_argument("--cases", type=int_arg(1, 1_000_000), default=1000, help="default 1000")
    fz.add_argument("--seed", type=int_arg(0), default=0, help="default 0")
    fz.add_argument("--out", metavar="DIR", default="runs/bench_fuzz", help="default runs/bench_fuzz")
    fz.set_defaults(func=_fuzz)


def _fidelity(args: argparse.Namespace) -> int:
    from training.benchmark import fidelity_study

    fidelity_study(args.entries, args.steps, args.out, fmt="c-array" if args.c_array else "bundle", score=args.score,
                   quant=args.quant)
    print(f"wrote {args.out}/fidelity.json")
    return 0


def _small_images(args: argparse.Namespace) -> int:
    from training.benchmark import small_images

    result = small_images(args.out, models=args.models, per_class=args.per_class, epochs=args.epochs)
    for name, r in result["models"].items():
        print(f"{name:<14} ({r['score']}) mean AUROC {r['model_mean_auroc']:.4f} (min {r['model_min_auroc']:.4f}); "
              f"PCA {r['pca_mean_auroc']:.4f}; kNN {r['knn_mean_auroc']:.4f}; {r['total_train_seconds']:.0f} s training")
    print(f"wrote {args.out}/small_images.json")
    return 0


def _vectors(args: argparse.Namespace) -> int:
    from training.benchmark import vectors

    result = vectors(args.out, dataset=args.dataset, normal_class=args.normal_class, models=args.models, epochs=args.epochs)
    print(f"{result['dataset']}: {result['normal']}; {result['n_train_normal']} normal train rows, {result['n_test']} test rows")
    for name, r in result["models"].items():
        print(f"{name:<14} AUROC {r['model']:.4f}; PCA {r['pca']:.4f}; kNN {r['knn']:.4f}")
    print(f"IsolationForest AUROC {result['isolation_forest_auroc']:.4f}; wrote {args.out}/vectors.json")
    return 0


def _series(args: argparse.Namespace) -> int:
    from training.series_bench import series_benchmark, series_markdown

    result = series_benchmark(args.out, sets=args.sets, model=args.model)
    print(series_markdown(result))
    print(f"wrote {args.out}/series.json")
    return 0


def _stream(args: argparse.Namespace) -> int:
    from training.series_bench import stream_benchmark

    stream_benchmark(args.saved_models, c_array_from=args.c_array, out=args.out)
    print(f"wrote {args.out}/stream.json")
    return 0


def _series_dev(args: argparse.Namespace) -> int:
    from training.series_bench import development_study
    from zoo.errors import UserError

    try:
        windows = [int(w) for w in args.windows]
    except ValueError:
        raise UserError(f"--windows expects integers separated by commas, e.g. 16,32,64. Received: {args.windows}") from None
    result = development_study(args.dataset, windows, model=args.model, out=args.out)
    for key, value in sorted(result["mean"].items(), key=lambda kv: -kv[1]):
        print(f"  {key:<22} mean development AUROC {value:.4f}")
    print(f"best: {result['best']}; wrote {args.out}/dev_{args.dataset}.json")
    return 0


def _anomaly_maps(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training.localization import localization, localization_markdown
    from zoo.errors import UserError
    from zoo.files import write_json

    bad = [c for c in args.classes if not c.isdigit() or int(c) > 9]
    if bad:
        raise UserError(f"--classes takes Fashion-MNIST classes 0..9. Received: {', '.join(bad)}")
    entries = [f"{m}/fashion_mnist/{c}" for m in args.models for c in args.classes]
    r = localization(entries, n_images=args.images, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = localization_markdown(r)
    (out / "anomaly_maps.md").write_text(md)
    write_json(out / "anomaly_maps.json", r)
    print(md + f"wrote {out}/anomaly_maps.md and {out}/anomaly_maps.json")
    return 0


def _fuzz(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.cli import run
    from training.fuzz import sweep
    from training.progress import progress
    from zoo.files import write_json

    out = Path(args.out)
    with progress(total=args.cases, desc="fuzz", unit="case") as bar:
        r = sweep(args.cases, out, lambda argv: run(args.parser, argv), seed=args.seed, progress=lambda i: bar.update(1))
    for surface, counts in sorted(r["per_surface"].items()):
        print(f"  {surface:<11} {counts}")
    for p in r["problems"][:20]:
        print(f"  PROBLEM {p['surface']}: {p['case']}: {p['problem']}")
    write_json(out / "fuzz.json", r)
    print(f"{r['cases']} cases (seed {r['seed']}): {len(r['problems'])} problems; wrote {out}/fuzz.json")
    return 0 if not r["problems"] else 1


def _corruption(args: argparse.Namespace) -> int:
    from training.benchmark import corruption_check

    r = corruption_check(args.bundle, args.out, cases=args.cases, seed=args.seed)
    print(f"{r['cases']} corruptions of {args.bundle}: {r['exit_0_same_verdicts']} exit 0 with unchanged verdicts, "
          f"{r['exit_2_clear_error']} exit 2 with a clear error, {r['wrong_or_crash']} wrong verdicts or crashes")
    for kind, counts in r["by_kind"].items():
        print(f"  {kind:<11} {counts}")
    print(f"wrote {args.out}/corruption.json")
    return 0 if r["wrong_or_crash"] == 0 else 1
