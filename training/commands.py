"""``aezoo`` subcommands of the training package.

TensorFlow is imported inside the handlers only, so building the CLI parser stays
fast and works on a device without TensorFlow.
"""

from __future__ import annotations

import argparse

from zoo.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the training package's subcommands to ``aezoo``."""
    _register_data(sub)
    _register_train(sub)
    _register_evaluate(sub)
    _register_optimize(sub)
    _register_report(sub)
    _register_demo(sub)
    _register_beyond(sub)


def _register_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="prepare datasets and show what is stored")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True

    prep = data_sub.add_parser(
        "prepare",
        help="prepare a TFDS dataset (fashion_mnist from a local copy of its IDX files when present)",
        description=(
            "Prepare a dataset in the TFDS data directory. fashion_mnist is read from a local copy of its four "
            "IDX .gz files when one is present (--mirror, $AEZOO_FASHION_MNIST_DIR, or Debian's "
            "/usr/share/datasets/fashion-mnist), verified against the upstream checksums; otherwise TFDS downloads it."
        ),
    )
    prep.add_argument("name", help="fashion_mnist, mnist or cifar10")
    prep.add_argument("--mirror", metavar="DIR", help="directory with the four Fashion-MNIST IDX .gz files")
    prep.add_argument("--data-dir", metavar="DIR", help="TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    prep.set_defaults(func=_data_prepare)

    info = data_sub.add_parser("info", help="show splits, counts, shapes, classes and location of a dataset")
    info.add_argument("name", help="fashion_mnist, mnist, cifar10 or an ImageFolder directory")
    info.add_argument("--data-dir", metavar="DIR", help="TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    info.set_defaults(func=_data_info)


def _data_prepare(args: argparse.Namespace) -> int:
    from training import data

    if args.name not in data.DATASETS:
        raise UserError(f"Expected one of {', '.join(data.DATASETS)}. Received: name={args.name!r}")
    builder = data.prepared_builder(args.name, data_dir=args.data_dir, mirror=args.mirror)
    counts = ", ".join(f"{s}={builder.info.splits[s].num_examples}" for s in sorted(builder.info.splits.keys()))
    print(f"{args.name} {builder.info.version} ready in {builder.data_path} ({counts})")
    return 0


def _data_info(args: argparse.Namespace) -> int:
    from training import data

    info = data.describe(args.name, data_dir=args.data_dir)
    shape = "x".join("?" if d is None else str(d) for d in info["image_shape"])
    print(f"{info['name']} {info['version']}")
    print(f"  stored in: {info['location']}")
    print(f"  images:    {shape} {info['image_dtype']} (loaded as float32 in [0, 1])")
    print("  splits:")
    for split, count in info["splits"].items():
        print(f"    {split:<10} {count:>7,} examples")
    names = info["class_names"]
    print(f"  classes ({len(names)}): " + ", ".join(f"{i}={n}" for i, n in enumerate(names)))
    return 0


# --- train and evaluate (issue 4) -------------------------------------------------


def _int_arg(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}. Received: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}. Received: {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number. Received: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number. Received: {value}")
    return value


def _param_arg(text: str) -> tuple[str, object]:
    import json

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value (e.g. latent_dim=16). Received: {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare word such as relu
    return key.strip(), value


def _register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train an autoencoder on one normal class (or all of them) and evaluate it",
        description=(
            "Train a zoo autoencoder with Keras fit on the normal class's training images (early stopping on the "
            "normal validation images), calibrate the threshold on them, evaluate on the whole test split beside the "
            "PCA baseline, and write the run folder: model.keras, config.json, history.json, threshold.json, "
            "metrics.json, checkpoints/, logs/ (TensorBoard), plots/. --normal-class all trains one model per class "
            "and writes summary.md and summary.json (the training benchmark)."
        ),
    )
    # Defaults are None so that --resume can tell the flags given from the saved config.
    p.add_argument("--model", help="zoo model name (see `aezoo models`); default conv_ae")
    p.add_argument("--dataset", help="fashion_mnist (default), mnist, cifar10 or an ImageFolder directory")
    p.add_argument("--normal-class", help="class id treated as normal; 'all' (or a list such as 0,6) for one model "
                   "per class and a summary table; default 0")
    p.add_argument("--epochs", type=_int_arg(1), help="maximum epochs (early stopping may end sooner); default 30")
    p.add_argument("--batch-size", type=_int_arg(1), help="default 128")
    p.add_argument("--latent-dim", type=_int_arg(1), help="code size (the model's latent_dim parameter)")
    p.add_argument("--lr", type=_positive_float, help="Adam learning rate; default 0.001")
    p.add_argument("--seed", type=_int_arg(0), help="random seed; default 0")
    p.add_argument("--patience", type=_int_arg(1), help="early-stopping patience in epochs; default 5")
    p.add_argument("--score", choices=("mse", "mae", "ssim", "elbo"), help="anomaly score; default mse")
    p.add_argument("--threshold-method", choices=("percentile", "mean_std", "best_f1"), help="default percentile")
    p.add_argument("--percentile", type=_positive_float, help="for --threshold-method percentile; default 99")
    p.add_argument("--k", type=_positive_float, help="for --threshold-method mean_std; default 3")
    p.add_argument("--param", action="append", type=_param_arg, default=[], metavar="KEY=VALUE",
                   help="extra model parameter (JSON value), repeatable, e.g. --param filters=[8,16,32]")
    p.add_argument("--data-dir", metavar="DIR", help="TFDS data directory")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/MODEL-DATASET-CLASS)")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in --out from its last backup")
    p.add_argument("--all-classes-one-model", action="store_true",
                   help="train ONE model on every class of the train split (validation: a fixed 10%% of each class) for "
                   "embeddings, generation and compression; reports reconstruction MSE/PSNR instead of anomaly metrics. "
                   "Not with --normal-class")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no Keras progress bar")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from training import fit

    fields = {
        "model": args.model, "dataset": args.dataset, "epochs": args.epochs, "batch_size": args.batch_size,
        "lr": args.lr, "seed": args.seed, "patience": args.patience, "score": args.score,
        "threshold_method": args.threshold_method, "percentile": args.percentile, "k": args.k, "data_dir": args.data_dir,
    }
    overrides = {k: v for k, v in fields.items() if v is not None}
    params = dict(args.param)
    if args.latent_dim is not None:
        params["latent_dim"] = args.latent_dim
    if params:
        overrides["params"] = params
    text = str(args.normal_class).strip().lower()
    every = text == "all" or "," in text
    classes = None
    try:
        if "," in text:
            classes = [int(c) for c in text.split(",") if c.strip()]
        elif args.normal_class is not None and not every:
            overrides["normal_class"] = int(text)
    except ValueError:
        raise UserError(
            "--normal-class expects a class id (an integer), a comma-separated list of them, or 'all'. "
            f"Received: --normal-class {args.normal_class}"
        ) from None
    if args.all_classes_one_model:
        if args.normal_class is not None:
            raise UserError("--all-classes-one-model trains one model on every class; leave out --normal-class. "
                            f"Received: --normal-class {args.normal_class}")
        overrides["all_classes"] = True
    out = args.out
    if args.resume and out is None:
        raise UserError("--resume needs the --out run folder to continue. Received: no --out")
    if out is None:
        cfg = fit.TrainConfig(**overrides)
        tag = "allclasses" if cfg.all_classes else "all" if every else cfg.normal_class
        out = f"runs/{cfg.model}-{cfg.dataset.rstrip('/').replace('/', '_')}-{tag}"
    verbose = 0 if args.quiet else "auto"
    if every:
        config = fit.TrainConfig(**overrides).validate()
        for k in classes or []:
            fit.check_data_args(config.dataset, k, config.data_dir)
        summary = fit.train_all(config, out=out, classes=classes, resume=args.resume,
                                verbose=0 if args.quiet else 2, plots=not args.no_plots)
        print(fit.summary_markdown(summary))
        print(f"wrote {out}/summary.md and {out}/summary.json")
        return 0
    from training.evaluate import format_report

    if args.resume:
        result = fit.train(out=out, resume=True, verbose=verbose, plots=not args.no_plots, **overrides)
    else:
        result = fit.train(out=out, verbose=verbose, plots=not args.no_plots, **overrides)
    if result.config.all_classes:
        from training.representation import format_reconstruction_report

        print(format_reconstruction_report(result.metrics))
    else:
        print(format_report(result.metrics))
    h = result.history
    print(f"trained {h['epochs_run']} epochs in {h['train_seconds']:.1f} s ({h['images_per_second']:.0f} images/s); "
          f"best epoch {h['best_epoch'] + 1}; threshold {result.threshold['value']:.6g} ({result.threshold['method']})")
    print(f"run folder: {result.run_dir}")
    return 0


def _register_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a run folder, a .keras model or a .tflite detector bundle",
        description=(
            "Score the test split of the one-class protocol, print and write the metrics (AUROC, AUPRC, precision, "
            "recall, F1, FPR, per-class recall) beside the PCA baseline, and draw the plots."
        ),
    )
    p.add_argument("target", metavar="RUN_OR_MODEL", help="run folder, .keras file or bundle directory")
    p.add_argument("--dataset", help="default: the run's dataset, else fashion_mnist")
    p.add_argument("--normal-class", type=_int_arg(0), help="default: the run's normal class (required otherwise)")
    p.add_argument("--score", choices=("mse", "mae", "ssim", "elbo"), help="default: the run's score, else mse")
    p.add_argument("--batch-size", type=_int_arg(1), default=256, help="inference batch size; default 256")
    p.add_argument("--data-dir", metavar="DIR", help="TFDS data directory")
    p.add_argument("--out", metavar="DIR", help="where metrics.json and plots/ go (default RUN/evaluation)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_path

    evaluate_path(args.target, dataset=args.dataset, normal_class=args.normal_class, data_dir=args.data_dir,
                  out=args.out, score_kind=args.score, batch_size=args.batch_size, plots=not args.no_plots)
    return 0


# --- beyond detection: embeddings, generation, compression (issue 7) --------------


def _register_beyond(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed",
        help="write the latent codes of a dataset split (and optionally a 2-D latent-space plot)",
        description=(
            "Encode a dataset split with a model's encoder (VAE: z_mean) and save the codes as a float32 .npy array "
            "(N x latent_dim, in dataset order). MODEL is a run folder or a .keras file; a model trained with "
            "`aezoo train --all-classes-one-model` gives general-purpose embeddings."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="run folder or .keras file")
    p.add_argument("--dataset", help="default: the run's dataset, else fashion_mnist")
    p.add_argument("--split", default="test", help="dataset split; default test")
    p.add_argument("--out", metavar="FILE.npy", help="where to write the codes")
    p.add_argument("--labels-out", metavar="FILE.npy", help="also write the class ids (int64), in the same order")
    p.add_argument("--plot", metavar="FILE.png", help="scatter of the codes in 2-D colored by class (PCA of the codes)")
    p.add_argument("--tsne", action="store_true", help="with --plot: t-SNE instead of PCA, on a subsample")
    p.add_argument("--tsne-samples", type=_int_arg(10), default=2000, help="images drawn for --tsne (evenly spaced); default 2000")
    p.add_argument("--seed", type=_int_arg(0), default=0, help="t-SNE seed; default 0")
    p.add_argument("--batch-size", type=_int_arg(1), default=256, help="inference batch size; default 256")
    p.add_argument("--data-dir", metavar="DIR", help="TFDS data directory")
    p.set_defaults(func=_embed)

    p = sub.add_parser("sample", help="draw images from a VAE's prior and save them as a grid",
                       description="Decode N draws of z ~ N(0, I) with a variational model (conv_vae, vae) into a PNG grid.")
    p.add_argument("model", metavar="MODEL", help="run folder or .keras file of a variational model")
    p.add_argument("--n", type=_int_arg(1), default=64, help="number of images; default 64")
    p.add_argument("--seed", type=_int_arg(0), default=0, help="seed of the draws; default 0")
    p.add_argument("--out", metavar="FILE.png", required=True, help="the PNG grid")
    p.set_defaults(func=_sample)

    p = sub.add_parser("interpolate", help="decode a straight walk between the codes of two test images",
                       description=("Encode test images A and B (VAE: their z_means), decode --steps points of the line "
                                    "between the two codes, and save A, the walk and B as a PNG row."))
    p.add_argument("model", metavar="MODEL", help="run folder or .keras file")
    p.add_argument("--dataset", help="default: the run's dataset, else fashion_mnist")
    p.add_argument("--split", default="test", help="dataset split the indices refer to; default test")
    p.add_argument("--a", type=_int_arg(0), required=True, metavar="INDEX", help="index of image A in the split")
    p.add_argument("--b", type=_int_arg(0), required=True, metavar="INDEX", help="index of image B in the split")
    p.add_argument("--steps", type=_int_arg(2), default=10, help="points on the walk, both ends included; default 10")
    p.add_argument("--out", metavar="FILE.png", required=True, help="the PNG")
    p.add_argument("--data-dir", metavar="DIR", help="TFDS data directory")
    p.set_defaults(func=_interpolate)

    p = sub.add_parser(
        "represent",
        help="benchmark: each variant trained on all classes vs PCA (reconstruction, linear probe, int8 compression)",
        description=(
            "Train each zoo variant on all classes at each code size (run folders OUT/VARIANT-DIM, reused when "
            "finished), then measure beside PCA of the same size: test PSNR/SSIM, linear-probe accuracy, int8 code "
            "bytes per image, compression ratio and PSNR/SSIM after int8; plus a raw-pixel probe and, for VAEs, "
            "sample and interpolation grids. Writes OUT/represent.md and OUT/represent.json."
        ),
    )
    p.add_argument("--variants", nargs="+", metavar="MODEL", help="zoo models; default all")
    p.add_argument("--dims", nargs="+", type=_int_arg(1), default=[8, 32], help="code sizes; default 8 32")
    p.add_argument("--epochs", type=_int_arg(1), default=10, help="epochs per model; default 10")
    p.add_argument("--batch-size", type=_int_arg(1), default=128, help="default 128")
    p.add_argument("--seed", type=_int_arg(0), default=0, help="default 0")
    p.add_argument("--dataset", default="fashion_mnist", help="default fashion_mnist")
    p.add_argument("--data-dir", metavar="DIR", help="TFDS data directory")
    p.add_argument("--probe-max-iter", type=_int_arg(1), default=1000, help="L-BFGS iterations of the probe on codes; default 1000")
    p.add_argument("--raw-probe-max-iter", type=_int_arg(1), default=300,
                   help="L-BFGS iterations of the raw-pixel probe (784 features, minutes); default 300")
    p.add_argument("--no-raw-probe", action="store_true", help="skip the raw-pixel probe")
    p.add_argument("--out", metavar="DIR", default="runs/represent", help="default runs/represent")
    p.set_defaults(func=_represent)


def _dataset_of(model_path: str, dataset: str | None) -> str:
    import json
    from pathlib import Path

    config = Path(model_path) / "config.json"
    if dataset is None and config.is_file():
        return json.loads(config.read_text()).get("dataset", "fashion_mnist")
    return dataset or "fashion_mnist"


def _embed(args: argparse.Namespace) -> int:
    from training.representation import embed_target
    from zoo.files import atomic_path

    if args.out is None and args.plot is None and args.labels_out is None:
        raise UserError("embed needs somewhere to write: --out FILE.npy and/or --plot FILE.png. Received: neither")
    if args.tsne and args.plot is None:
        raise UserError("--tsne draws the --plot; give --plot FILE.png. Received: --tsne without --plot")
    codes, labels = embed_target(args.model, dataset=_dataset_of(args.model, args.dataset), split=args.split,
                                 data_dir=args.data_dir, out=args.out, plot=args.plot, tsne=args.tsne,
                                 tsne_samples=args.tsne_samples, seed=args.seed, batch_size=args.batch_size)
    if args.labels_out:
        import numpy as np

        with atomic_path(args.labels_out) as tmp, open(tmp, "wb") as f:
            np.save(f, labels)
    print(f"{len(codes)} codes of size {codes.shape[1]}" + "".join(
        f"; wrote {what} {path}" for what, path in (("codes", args.out), ("labels", args.labels_out), ("plot", args.plot)) if path))
    return 0


def _sample(args: argparse.Namespace) -> int:
    import zoo
    from training.generate import sample_grid
    from training.representation import load_model_target

    model = load_model_target(args.model)
    if not zoo.is_variational(model):
        raise UserError(f"sample needs a variational model (conv_vae or vae, with z_mean/z_log_var layers) to draw from "
                        f"its prior. Received: {args.model} (a {model.name})")
    print(f"wrote {sample_grid(model, args.out, n=args.n, seed=args.seed)}")
    return 0


def _interpolate(args: argparse.Namespace) -> int:
    from training import data
    from training.generate import interpolation_grid
    from training.representation import load_model_target

    model = load_model_target(args.model)
    dataset = _dataset_of(args.model, args.dataset)
    x, labels = data.load_split(dataset, args.split, data_dir=args.data_dir)
    path = interpolation_grid(model, args.out, x, [(args.a, args.b)], steps=args.steps, labels=labels,
                              class_names=data.class_names(dataset))
    print(f"wrote {path}")
    return 0


def _represent(args: argparse.Namespace) -> int:
    from training.representation import represent, represent_markdown

    result = represent(args.variants, args.dims, epochs=args.epochs, out=args.out, dataset=args.dataset, data_dir=args.data_dir,
                       seed=args.seed, batch_size=args.batch_size, probe_max_iter=args.probe_max_iter,
                       raw_probe_max_iter=args.raw_probe_max_iter, raw_probe=not args.no_raw_probe)
    print(represent_markdown(result))
    print(f"wrote {args.out}/represent.md and {args.out}/represent.json" +
          "".join(f"; {p}" for imgs in result["images"].values() for p in imgs.values()))
    return 0


# --- aezoo demo: the main job (issue 6) -------------------------------------------


def _register_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole journey on Fashion-MNIST: train conv_ae, QAT, int8 export, edge detector, comparison table",
        description=(
            "Prepare Fashion-MNIST, train the default conv_ae on one normal class, fine-tune it with quantization-aware "
            "training, export the int8 detector bundle, run it with edge.Detector on test images, print the float vs "
            "int8 vs PCA comparison and write the plots; then load a pretrained entry from saved_models/ when there is "
            "one. Uses the zoo's budgeted epochs (about a minute of training) unless --epochs is given."
        ),
    )
    p.add_argument("--normal-class", type=_int_arg(0), default=0, help="normal class id; default 0 (T-shirt/top)")
    p.add_argument("--epochs", type=_int_arg(1), help="maximum training epochs; default: the zoo's budgeted value")
    p.add_argument("--qat-epochs", type=_int_arg(1), help="QAT fine-tuning epochs; default: the zoo's budgeted value")
    p.add_argument("--seed", type=_int_arg(0), default=0, help="random seed; default 0")
    p.add_argument("--out", metavar="DIR", default="runs/demo", help="output folder; default runs/demo")
    p.add_argument("--data-dir", metavar="DIR", help="TFDS data directory")
    p.set_defaults(func=_demo)


def _demo_pretrained(normal_class: int, images, labels, names: list[str], demo_record: dict) -> dict | None:
    """Load the saved_models entry for the demo's class, score the same images, say so clearly when there is none."""
    import numpy as np

    import edge
    import zoo
    from zoo import pretrained

    root = pretrained.saved_models_dir()
    key = pretrained.entry_key("conv_ae", "fashion_mnist", normal_class)
    entries = pretrained.read_manifest(root)["entries"]
    if key not in entries:
        print(f"      No pretrained entry {key} in {root}: nothing to load. `aezoo zoo build --models conv_ae "
              f"--classes {normal_class}` creates it ({len(entries)} other entries present).")
        return None
    record = entries[key]
    model = zoo.load("conv_ae", dataset="fashion_mnist", normal_class=normal_class)
    det = edge.Detector.from_zoo("conv_ae", dataset="fashion_mnist", normal_class=normal_class)
    float_mse = np.mean((model.predict(images, verbose=0) - images) ** 2, axis=(1, 2, 3))
    scores = det.score(images)
    print(f"      zoo.load('conv_ae', dataset='fashion_mnist', normal_class={normal_class}) -> {model.name} "
          f"({model.count_params():,} parameters)\n      edge.Detector.from_zoo(...) -> {det!r} (sha256 verified)")
    print(f"      {'image':<14} {'float mse':>10} {'int8 score':>11}  flagged")
    for i, (label, f, s) in enumerate(zip(labels, float_mse, scores)):
        print(f"      {names[label]:<14} {f:>10.5f} {s:>11.5f}  {'anomaly' if s > det.threshold_ else 'normal'}")
    m = record["metrics"]
    print(f"      pretrained entry: int8 AUROC {m['int8']['auroc']:.4f} (float {m['float']['auroc']:.4f}), this demo's: "
          f"{demo_record['metrics']['int8']['auroc']:.4f} (float {demo_record['metrics']['float']['auroc']:.4f})")
    return {"entry": key, "int8_auroc": m["int8"]["auroc"], "float_auroc": m["float"]["auroc"],
            "scores": [float(s) for s in scores]}


def _demo(args: argparse.Namespace) -> int:
    import shutil
    import time
    from pathlib import Path

    import numpy as np

    from training import data, pipeline
    from training.metrics import roc_curve
    from training.plots import roc_curves
    from zoo.files import write_json

    t_start = time.perf_counter()
    out = Path(args.out)
    k = args.normal_class
    epochs = args.epochs or pipeline.ZOO_EPOCHS
    qat_epochs = args.qat_epochs or pipeline.QAT_EPOCHS
    names = data.class_names("fashion_mnist")
    if not 0 <= k < len(names):
        raise UserError(f"--normal-class must be in 0..{len(names) - 1} for fashion_mnist. Received: --normal-class {k}")

    print(f"[1/5] Fashion-MNIST: preparing the data (offline from the local IDX copy when needed)")
    data.prepared_builder("fashion_mnist", data_dir=args.data_dir)
    split = data.one_class_split("fashion_mnist", k, data_dir=args.data_dir)
    print(f"      normal class {k} ({names[k]}): {len(split.x_train)} training, {len(split.x_val)} validation images; "
          f"test: {len(split.x_test)} images, {int(split.y_test.sum())} anomalies")

    print(f"[2/5] conv_ae: train (up to {epochs} epochs) -> QAT fine-tune ({qat_epochs} epoch{'s' if qat_epochs > 1 else ''}) -> int8 export -> "
          "evaluate float, QAT, int8 and PCA")
    run_dir = out / "run"
    if (run_dir / "config.json").is_file():
        print(f"      replacing the previous demo run in {run_dir}")
        shutil.rmtree(run_dir)
    record = pipeline.run_entry("conv_ae", "fashion_mnist", k, out / "entry", epochs=epochs, qat_epochs=qat_epochs,
                                seed=args.seed, run_dir=run_dir, data_dir=args.data_dir, split=split, plots=True,
                                verbose="auto")
    reports = record.pop("reports")

    print("[3/5] edge.Detector (LiteRT, int8, TensorFlow-free) on test images: the first of each class")
    import edge

    det = edge.Detector.load(out / "entry" / "detector")
    idx = np.array([np.flatnonzero(split.test_labels == c)[0] for c in range(len(names))])
    images, labels = split.x_test[idx], split.test_labels[idx]
    scores = det.score(images)
    print(f"      {det!r}")
    print(f"      {'image':<14} {'truth':<8} {'score':>9}  flagged")
    for label, s in zip(labels, scores):
        truth = "normal" if label == k else "anomaly"
        print(f"      {names[label]:<14} {truth:<8} {s:>9.5f}  {'anomaly' if s > det.threshold_ else 'normal'}")

    print("[4/5] comparison on the 10,000 test images (threshold calibrated on normal validation images only)")
    m, size, lat = record["metrics"], record["size"], record["latency"]
    rows = [("float Keras", m["float"], f"{size['keras_bytes'] / 1024:.0f} KiB .keras", "-"),
            ("QAT Keras", m["qat"], "-", "-"),
            ("int8 TFLite", m["int8"], f"{size['tflite_bytes'] / 1024:.1f} KiB", f"{lat['median_us']:.0f} us"),
            (f"PCA ({m['pca']['n_components']} comp.)", m["pca"], "-", "-")]
    print(f"      {'detector':<18} {'AUROC':>7} {'AUPRC':>7} {'F1':>6} {'FPR':>6}  {'size':<16} batch-1 latency")
    for name, r, sz, lt in rows:
        print(f"      {name:<18} {r['auroc']:>7.4f} {r['auprc']:>7.4f} {r['f1']:>6.3f} {r['fpr']:>6.3f}  {sz:<16} {lt}")
    gap = m["int8"]["auroc"] - m["float"]["auroc"]
    print(f"      int8 - float AUROC: {gap:+.4f} ({'within' if abs(gap) <= 0.005 else 'outside'} the 0.005 target of PROTOCOL.md)")
    import zoo
    from training.baselines import PCABaseline
    from training.scoring import score

    float_model = zoo.load_model(out / "entry" / "model.keras")
    test_scores = {"float Keras": (score(float_model, split.x_test), m["float"]["auroc"]),
                   "int8 TFLite": (det.score(split.x_test), m["int8"]["auroc"]),
                   "PCA": (PCABaseline().fit(split.x_train, split.x_val).decision_function(split.x_test), m["pca"]["auroc"])}
    comparison = roc_curves(out / "comparison_roc.png",
                            {n: (*roc_curve(split.y_test, s), a) for n, (s, a) in test_scores.items()},
                            title=f"conv_ae on Fashion-MNIST, normal class {k} ({names[k]})")
    plots = sorted(str(p) for p in run_dir.rglob("*.png")) + [str(comparison)]
    print(f"      plots: {comparison}, and {len(plots) - 1} more under {run_dir} (training, reconstructions, "
          "scores, ROC, latent space)")

    print("[5/5] the pretrained zoo (saved_models/)")
    pretrained = _demo_pretrained(k, images, labels, names, record)
    seconds = time.perf_counter() - t_start
    write_json(out / "demo.json", {"normal_class": k, "entry": record, "pretrained": pretrained, "plots": plots,
                                   "detector_scores": {names[c]: float(s) for c, s in zip(labels, scores)},
                                   "per_class_int8": reports["int8"]["model"].get("per_class"), "seconds": seconds})
    print(f"done in {seconds / 60:.1f} min: {out / 'entry'} (model.keras, detector/, card.json), {out / 'demo.json'}")
    return 0


# --- compression and the comparison report (issue 5) ----------------------------------


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), e.g. 0.5. Received: {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), e.g. 0.5. Received: {value}")
    return value


OPTIMIZE_METHODS = ("qat", "prune", "cluster", "pqat", "cqat")


def _register_optimize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "optimize",
        help="compress a trained run with TFMOT (QAT, pruning, clustering, or pruning/cluster-preserving QAT)",
        description=(
            "Fine-tune RUN's model with the TensorFlow Model Optimization toolkit on its normal training images and "
            "write the result as a run folder of its own (default: RUN-METHOD beside RUN): model.keras, config.json "
            "(RUN's config plus a 'compression' section), threshold.json recalibrated on the normal validation images, "
            "metrics.json (test AUROC beside PCA, kernel sparsity and unique values) and plots/. `aezoo evaluate` and "
            "`aezoo export` work on it like on any run. Methods: qat (quantization-aware training), prune (magnitude "
            "pruning to --sparsity), cluster (--clusters shared values per kernel), pqat / cqat (prune / cluster, then "
            "QAT that keeps the zeros / the shared values)."
        ),
    )
    p.add_argument("run", metavar="RUN", help="training run folder")
    p.add_argument("--method", required=True, choices=OPTIMIZE_METHODS, help="compression method")
    p.add_argument("--sparsity", type=_fraction, default=0.5, help="prune/pqat: target fraction of zero kernel weights; default 0.5")
    p.add_argument("--clusters", type=_int_arg(2), default=16, help="cluster/cqat: shared values per kernel; default 16")
    p.add_argument("--epochs", type=_int_arg(1), default=3, help="fine-tuning epochs (per stage for pqat/cqat); default 3")
    p.add_argument("--lr", type=_positive_float, default=2e-4, help="fine-tuning learning rate; default 0.0002")
    p.add_argument("--batch-size", type=_int_arg(1), default=128, help="default 128")
    p.add_argument("--seed", type=_int_arg(0), default=0, help="default 0")
    p.add_argument("--out", metavar="DIR", help="the compressed run folder (default: RUN-METHOD beside RUN)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no Keras progress bar")
    p.set_defaults(func=_optimize)


def _optimize(args: argparse.Namespace) -> int:
    import json

    from training.compress import CompressConfig, format_stats, optimize_run
    from training.evaluate import format_report

    config = CompressConfig(method=args.method, epochs=args.epochs, sparsity=args.sparsity, clusters=args.clusters,
                            lr=args.lr, batch_size=args.batch_size, seed=args.seed).validate()
    out = optimize_run(args.run, config, out=args.out, plots=not args.no_plots, verbose=0 if args.quiet else "auto")
    report = json.loads((out / "metrics.json").read_text())
    print(format_report(report))
    print(format_stats(report))
    source = report["compression"].get("source_auroc")
    if source is not None:
        print(f"AUROC {report['model']['auroc']:.4f} (source run {source:.4f}, change {report['model']['auroc'] - source:+.4f})")
    print(f"run folder: {out}  (next: aezoo export {out} --out BUNDLE --quant int8)")
    return 0


def _register_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="compare a trained model with its TFLite and compressed versions: AUROC, size, latency, throughput",
        description=(
            "Build one table for RUN: the float Keras model; float32, float16, dynamic and int8 TFLite; and int8 "
            "TFLite of the compressed runs (QAT, pruned, clustered by default; existing RUN-METHOD folders are "
            "reused, missing ones are created with `aezoo optimize` defaults). Per row: test AUROC, file size and "
            "gzip -9 size, batch-1 latency (LiteRT, one thread, median over --iterations invocations after warm-up, "
            "in microseconds) through edge.Detector and through the interpreter's bare invoke(), and images/s at a "
            "large batch. Writes report.md and report.json (with the CPU model and core count) and the bundles."
        ),
    )
    p.add_argument("run", metavar="RUN", help="training run folder (float model)")
    p.add_argument("--out", metavar="DIR", help="default RUN/report")
    p.add_argument("--methods", nargs="+", choices=OPTIMIZE_METHODS, default=["qat", "prune", "cluster"],
                   help="compressed variants to include; default: qat prune cluster")
    p.add_argument("--iterations", type=_int_arg(1), default=1000,
                   help="timed batch-1 invocations per row (after warm-up); default 1000")
    p.add_argument("--batch", type=_int_arg(1), default=1000, help="batch size for the throughput column; default 1000")
    p.add_argument("--epochs", type=_int_arg(1), default=3, help="fine-tuning epochs for compressed runs it creates; default 3")
    p.add_argument("--data-dir", metavar="DIR", help="TFDS data directory")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from training.report import build_report, report_markdown

    report = build_report(args.run, out=args.out, methods=args.methods, iterations=args.iterations,
                          batch=args.batch, epochs=args.epochs, data_dir=args.data_dir)
    print(report_markdown(report))
    print(f"wrote {report['files']['markdown']} and {report['files']['json']}")
    return 0
