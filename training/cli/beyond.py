"""Beyond detection: ``aezoo embed``, ``sample``, ``interpolate`` and the ``represent`` benchmark."""

from __future__ import annotations

import argparse
from typing import Any

import zoo
from training.cli.args import int_arg
from zoo.errors import UserError

# Decoded images are drawn into one PNG grid: beyond this it is neither readable nor small.
MAX_SAMPLES = 1024


def register(sub: Any) -> None:
    """Add ``embed``, ``sample``, ``interpolate`` and ``represent``."""
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
    p.add_argument("--tsne-samples", type=int_arg(10), default=2000, help="images drawn for --tsne (evenly spaced); default 2000")
    p.add_argument("--seed", type=int_arg(0), default=0, help="t-SNE seed; default 0")
    p.add_argument("--batch-size", type=int_arg(1), default=256, help="inference batch size; default 256")
    p.add_argument("--data-dir", metavar="DIR", help="TFDS data directory")
    p.set_defaults(func=_embed)
    _register_generation(sub)


def _register_generation(sub: Any) -> None:
    p = sub.add_parser("sample", help="draw images from a VAE's prior and save them as a grid",
                       description="Decode N draws of z ~ N(0, I) with a variational model (conv_vae, vae) into a PNG grid.")
    p.add_argument("model", metavar="MODEL", help="run folder or .keras file of a variational model")
    p.add_argument("--n", type=int_arg(1, MAX_SAMPLES), default=64, help=f"number of images, at most {MAX_SAMPLES}; default 64")
    p.add_argument("--seed", type=int_arg(0), default=0, help="seed of the draws; default 0")
    p.add_argument("--out", metavar="FILE.png", required=True, help="the PNG grid")
    p.set_defaults(func=_sample)

    p = sub.add_parser("interpolate", help="decode a straight walk between the codes of two test images",
                       description=("Encode test images A and B (VAE: their z_means), decode --steps points of the line "
                                    "between the two codes, and save A, the walk and B as a PNG row."))
    p.add_argument("model", metavar="MODEL", help="run folder or .keras file")
    p.add_argument("--dataset", help="default: the run's dataset, else fashion_mnist")
    p.add_argument("--split", default="test", help="dataset split the indices refer to; default test")
    p.add_argument("--a", type=int_arg(0), required=True, metavar="INDEX", help="index of image A in the split")
    p.add_argument("--b", type=int_arg(0), required=True, metavar="INDEX", help="index of image B in the split")
    p.add_argument("--steps", type=int_arg(2), default=10, help="points on the walk, both ends included; default 10")
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
    p.add_argument("--dims", nargs="+", type=int_arg(1), default=[8, 32], help="code sizes; default 8 32")
    p.add_argument("--epochs", type=int_arg(1), default=10, help="epochs per model; default 10")
    p.add_argument("--batch-size", type=int_arg(1), default=128, help="default 128")
    p.add_argument("--seed", type=int_arg(0), default=0, help="default 0")
    p.add_argument("--dataset", default="fashion_mnist", help="default fashion_mnist")
    p.add_argument("--data-dir", metavar="DIR", help="TFDS data directory")
    p.add_argument("--probe-max-iter", type=int_arg(1), default=1000, help="L-BFGS iterations of the probe on codes; default 1000")
    p.add_argument("--raw-probe-max-iter", type=int_arg(1), default=300,
                   help="L-BFGS iterations of the raw-pixel probe (784 features, minutes); default 300")
    p.add_argument("--no-raw-probe", action="store_true", help="skip the raw-pixel probe")
    p.add_argument("--out", metavar="DIR", default="runs/represent", help="default runs/represent")
    p.set_defaults(func=_represent)


def _dataset_of(model_path: str, dataset: str | None) -> str:
    from training.runs import dataset_of

    return dataset if dataset is not None else dataset_of(model_path)


def _embed(args: argparse.Namespace) -> int:
    from training.representation import embed_target
    from zoo.files import atomic_path, check_writable_file

    if args.out is None and args.plot is None and args.labels_out is None:
        raise UserError("embed needs somewhere to write: --out FILE.npy and/or --plot FILE.png. Received: neither")
    if args.tsne and args.plot is None:
        raise UserError("--tsne draws the --plot; give --plot FILE.png. Received: --tsne without --plot")
    for path in (args.out, args.plot, args.labels_out):
        check_writable_file(path)
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
    from training.generate import sample_grid
    from training.representation import load_model_target
    from zoo.files import check_writable_file

    check_writable_file(args.out)
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
    from zoo.files import check_writable_file

    check_writable_file(args.out)
    model = load_model_target(args.model)
    dataset = _dataset_of(args.model, args.dataset)
    x, labels = data.load_split(dataset, args.split, data_dir=args.data_dir)
    path = interpolation_grid(model, args.out, x, [(args.a, args.b)], steps=args.steps, labels=labels,
                              class_names=data.class_names(dataset))
    print(f"wrote {path}")
    return 0


def _represent(args: argparse.Namespace) -> int:
    from training.benchmark import represent, represent_markdown

    result = represent(args.variants, args.dims, epochs=args.epochs, out=args.out, dataset=args.dataset, data_dir=args.data_dir,
                       seed=args.seed, batch_size=args.batch_size, probe_max_iter=args.probe_max_iter,
                       raw_probe_max_iter=args.raw_probe_max_iter, raw_probe=not args.no_raw_probe)
    print(represent_markdown(result))
    print(f"wrote {args.out}/represent.md and {args.out}/represent.json" +
          "".join(f"; {p}" for imgs in result["images"].values() for p in imgs.values()))
    return 0
