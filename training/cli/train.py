"""``aezoo train`` and ``aezoo evaluate``."""

from __future__ import annotations

import argparse
from typing import Any

from training.cli.args import int_arg, param, positive_float, size
from training.distribute import MAX_WORKERS, STRATEGIES
from training.scores import score_kinds
from zoo.errors import UserError


def register(sub: Any) -> None:
    """Add ``train`` and ``evaluate``."""
    p = sub.add_parser(
        "train", help="train an autoencoder detector on one normal class (or all of them) and evaluate it",
        description="Train a zoo autoencoder with Keras fit on the normal class's training inputs (early stopping on "
                    "the normal validation inputs), fit its score and calibrate the threshold on them, evaluate on the "
                    "test split beside PCA and kNN, and write the run folder: model.keras, config.json, history.json, "
                    "threshold.json, metrics.json, checkpoints/, logs/ (TensorBoard), plots/. --normal-class all trains "
                    "one detector per class and writes summary.md and summary.json.")
    # Defaults are None so that --resume can tell the flags given from the saved config.
    p.add_argument("--model", help="zoo model name (see `aezoo models`); default conv_ae")
    p.add_argument("--dataset", help="fashion_mnist (default), mnist, cifar10, basic_motions, acsf1, kdd_tsad_135, an image "
                                     "folder (root/<split>/<label>/*), a .csv/.npz/.npy file of feature vectors, a .ts series "
                                     "set, or a recording (.csv with a timestamp column, or .npy with --input-kind series)")
    p.add_argument("--test-data", metavar="FILE", help="for files: the labelled test rows (.csv/.npz), .ts series or recording")
    p.add_argument("--input-kind", choices=("image", "vector", "series"), help="what --dataset holds (default: inferred)")
    p.add_argument("--window", type=int_arg(2, 1_000_000), metavar="LEN",
                   help="series: window length in samples (default: chosen from the normal training data, recorded)")
    p.add_argument("--hop", type=int_arg(1, 1_000_000), metavar="H", help="series: samples between windows (default: from the window)")
    p.add_argument("--aggregate", choices=("mean", "max"), help="series sets: a series' score from its windows' (default mean)")
    p.add_argument("--label-column", help="the CSV column of class labels; default label")
    p.add_argument("--image-size", type=size, metavar="H,W", help="resize a folder's images (the bundle resizes alike)")
    color = p.add_mutually_exclusive_group()
    color.add_argument("--grayscale", action="store_const", const="grayscale", dest="color_mode", help="convert images to gray")
    color.add_argument("--rgb", action="store_const", const="rgb", dest="color_mode", help="convert images to RGB")
    p.add_argument("--normal-class", help="class id treated as normal; 'all' (or a list such as 0,6) for one detector "
                                          "per class and a summary table; default 0")
    p.add_argument("--score", choices=("auto", *score_kinds()), help="anomaly score; default auto: the model's own (nap for the "
                                                                "convolutional variants, mse for the others)")
    p.add_argument("--score-option", action="append", type=param, default=[], metavar="KEY=VALUE",
                   help="an option of the score, repeatable, e.g. --score-option pool=fine")
    p.add_argument("--epochs", type=int_arg(1, 100_000), help="maximum epochs (early stopping may end sooner); default 30")
    p.add_argument("--min-steps", type=int_arg(0, 10_000_000), help="least optimizer steps; small datasets get more epochs; default 1000")
    p.add_argument("--batch-size", type=int_arg(1, 65_536), help="default 128 (never more than the training inputs)")
    p.add_argument("--latent-dim", type=int_arg(1, 4096), help="code size (the model's latent_dim parameter)")
    p.add_argument("--lr", type=positive_float, help="Adam learning rate; default 0.001")
    p.add_argument("--seed", type=int_arg(0), help="random seed; default 0")
    p.add_argument("--patience", type=int_arg(1), help="early-stopping patience in epochs; default 5")
    p.add_argument("--threshold-method", choices=("percentile", "mean_std", "best_f1"), help="default percentile")
    p.add_argument("--percentile", type=positive_float, help="for --threshold-method percentile; default 99")
    p.add_argument("--k", type=positive_float, help="for --threshold-method mean_std; default 3")
    p.add_argument("--param", action="append", type=param, default=[], metavar="KEY=VALUE",
                   help="extra model parameter (JSON value), repeatable, e.g. --param filters=[8,16,32]")
    p.add_argument("--data-dir", metavar="DIR", help="TFDS data directory")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/MODEL-DATASET-CLASS)")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in --out from its last backup")
    p.add_argument("--all-classes-one-model", action="store_true",
                   help="train ONE model on every class (validation: a fixed 10%% of each class) for embeddings, "
                        "generation and compression; reports reconstruction MSE/PSNR instead of anomaly metrics")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no Keras progress bar")
    p.add_argument("--strategy", choices=STRATEGIES, default="none",
                   help="tf.distribute strategy; multiworker joins the cluster of $TF_CONFIG (default: none)")
    p.add_argument("--workers", type=int_arg(1, MAX_WORKERS), metavar="N",
                   help="start N loopback workers here (MultiWorkerMirroredStrategy, generated TF_CONFIG) for one run")
    p.set_defaults(func=_train)
    _register_evaluate(sub)


def _register_evaluate(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="evaluate a run folder, a .keras model or a detector bundle beside PCA and kNN",
                       description="Score the test split of the one-class protocol, print and write the metrics (AUROC, "
                                   "AUPRC, recall at 1% and 5% FPR, precision, recall, F1, FPR, per-class recall) beside "
                                   "PCA and kNN, and draw the plots.")
    p.add_argument("target", metavar="RUN_OR_MODEL", help="run folder, .keras file or bundle directory")
    p.add_argument("--dataset", help="default: the run's or bundle's dataset, else fashion_mnist")
    p.add_argument("--normal-class", type=int_arg(0), help="default: the run's or bundle's normal class")
    p.add_argument("--score", choices=score_kinds(), help="for a bare .keras file; default mse")
    p.add_argument("--data-dir", metavar="DIR", help="TFDS data directory")
    p.add_argument("--out", metavar="DIR", help="where metrics.json and plots/ go (default RUN/evaluation)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.set_defaults(func=_evaluate)


_FIELDS = ("model", "dataset", "epochs", "min_steps", "batch_size", "lr", "seed", "patience", "score", "threshold_method",
           "percentile", "k", "data_dir", "test_data", "label_column", "image_size", "color_mode", "input_kind", "window", "hop",
           "aggregate")


def _overrides(args: argparse.Namespace) -> dict:
    overrides = {k: getattr(args, k) for k in _FIELDS if getattr(args, k) is not None}
    params = dict(args.param)
    if args.latent_dim is not None:
        params["latent_dim"] = args.latent_dim
    if params:
        overrides["params"] = params
    if args.score_option:
        overrides["score_options"] = dict(args.score_option)
    if args.all_classes_one_model:
        if args.normal_class is not None:
            raise UserError("--all-classes-one-model trains one model on every class; leave out --normal-class. "
                            f"Received: --normal-class {args.normal_class}")
        overrides["all_classes"] = True
    return overrides


def _classes(text: str | None) -> tuple[int | None, list[int] | None, bool]:
    """(one class, a list of classes, all classes) from --normal-class."""
    if text is None:
        return None, None, False
    text = text.strip().lower()
    if text == "all":
        return None, None, True
    try:
        values = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        values = []
    if not values:
        raise UserError("--normal-class expects a class id (an integer), a comma-separated list of them, or 'all'. "
                        f"Received: --normal-class {text}")
    return (values[0], None, False) if "," not in text else (None, values, True)


def _train(args: argparse.Namespace) -> int:
    from training import trainer
    from training.config import TrainConfig

    if args.workers is not None:
        return _launch(args, args.argv)
    overrides = _overrides(args)
    one, listed, every = _classes(args.normal_class)
    if one is not None:
        overrides["normal_class"] = one
    if args.resume and args.out is None:
        raise UserError("--resume needs the --out run folder to continue. Received: no --out")
    config = TrainConfig().replace(**overrides) if not args.resume else None
    out = args.out or _default_out(config, every)
    verbose = 0 if args.quiet else "auto"
    if every:
        summary = trainer.train_all(config, out=out, classes=listed, resume=args.resume, verbose=0 if args.quiet else 2,
                                    plots=not args.no_plots)
        print(trainer.summary_markdown(summary))
        print(f"wrote {out}/summary.md and {out}/summary.json")
        return 0
    result = trainer.train(config, out=out, resume=args.resume, verbose=verbose, plots=not args.no_plots,
                           strategy=args.strategy, **(overrides if args.resume else {}))
    if result.metrics:  # a non-chief worker writes and prints nothing
        _print_result(result)
    return 0


def _launch(args: argparse.Namespace, argv: list[str]) -> int:
    """``--workers N``: the same command as N loopback workers; they write one run (the chief's)."""
    from training import distribute

    if args.strategy != "none" or args.out is None:
        raise UserError("--workers starts its own multi-worker cluster: give --out, and leave out --strategy. "
                        f"Received: --strategy {args.strategy}, --out {args.out}")
    if args.normal_class is not None and ("," in args.normal_class or args.normal_class.strip().lower() == "all"):
        raise UserError("--workers trains one run: give one --normal-class")
    rest, skip = [], False
    for a in argv:  # the same arguments without --workers N
        if skip:
            skip = False
        elif a == "--workers":
            skip = True
        elif not a.startswith("--workers="):
            rest.append(a)
    return distribute.launch(rest, args.workers)


def _default_out(config: Any, every: bool) -> str:
    from pathlib import Path

    tag = "allclasses" if config.all_classes else "all" if every else config.normal_class
    return f"runs/{config.model}-{Path(config.dataset).stem}-{tag}"


def _print_result(result: Any) -> None:
    from training.data import csv_headers
    from training.evaluate import format_reconstruction_report, format_report

    if result.config.all_classes:
        print(format_reconstruction_report(result.metrics))
    else:
        print(format_report(result.metrics))
        for warning in result.metrics.get("checks", {}).get("warnings", []):
            print(f"WARNING: {warning}")
    for line in csv_headers(result.config.data_source()):
        print(f"read as: {line}")
    h = result.history
    print(f"trained {h['epochs_run']} epochs ({h['steps_run']} steps) in {h['train_seconds']:.1f} s "
          f"({h['images_per_second']:.0f} inputs/s); best epoch {h['best_epoch'] + 1}; budget: {h['budget']['reason']}; "
          f"threshold {result.threshold['value']:.6g} ({result.threshold['method']})")
    print(f"run folder: {result.run_dir}")


def _evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_path

    evaluate_path(args.target, dataset=args.dataset, normal_class=args.normal_class, data_dir=args.data_dir,
                  out=args.out, score_kind=args.score, plots=not args.no_plots)
    return 0
