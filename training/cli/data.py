"""``aezoo data prepare | info``."""

from __future__ import annotations

import argparse
from typing import Any

from zoo.errors import UserError


def register(sub: Any) -> None:
    """Add ``data prepare`` and ``data info``."""
    p = sub.add_parser("data", help="prepare datasets and show what is stored")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True
    prep = data_sub.add_parser(
        "prepare", help="prepare a TFDS dataset (fashion_mnist from a local copy of its IDX files when present)",
        description="Prepare a dataset in the TFDS data directory. fashion_mnist is read from a local copy of its four "
                    "IDX .gz files when one is present (--mirror, $AEZOO_FASHION_MNIST_DIR, or Debian's "
                    "/usr/share/datasets/fashion-mnist), verified against the upstream checksums; otherwise TFDS downloads it.")
    prep.add_argument("name", help="fashion_mnist, mnist, cifar10, or a sensor set: basic_motions, acsf1, kdd_tsad_135 "
                                   "(prepared offline from the files in the aeon wheel, sha256-checked)")
    prep.add_argument("--mirror", metavar="DIR", help="directory with the four Fashion-MNIST IDX .gz files")
    prep.add_argument("--data-dir", metavar="DIR", help="TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    prep.set_defaults(func=_prepare)
    info = data_sub.add_parser("info", help="show splits, counts, input shape, classes and location of a dataset")
    info.add_argument("name", help="a named dataset, an image folder, a .csv/.npz/.npy file of vectors, a .ts set or a recording")
    info.add_argument("--data-dir", metavar="DIR", help="TFDS data directory (must exist; default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    info.set_defaults(func=_info)


def _prepare(args: argparse.Namespace) -> int:
    from training import data

    if args.name not in data.DATASETS:
        raise UserError(f"Expected one of {', '.join(data.DATASETS)}. Received: name={args.name!r}")
    builder = data.prepared_builder(args.name, data_dir=args.data_dir, mirror=args.mirror)
    counts = ", ".join(f"{s}={builder.info.splits[s].num_examples}" for s in sorted(builder.info.splits.keys()))
    print(f"{args.name} {builder.info.version} ready in {builder.data_path} ({counts})")
    return 0


def _info(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training import data

    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise UserError(f"--data-dir {args.data_dir} does not exist; `aezoo data prepare NAME --data-dir DIR` creates "
                        f"and fills one. Received: --data-dir {args.data_dir}")
    info = data.describe(args.name, data_dir=args.data_dir)
    shape = "x".join("?" if d is None else str(d) for d in info["input_shape"])
    print(f"{info['name']} {info['version']} ({info['input_kind']} inputs)")
    print(f"  stored in: {info['location']}")
    print(f"  inputs:    {shape} {info['dtype']}")
    print("  splits:")
    for split, count in info["splits"].items():
        print(f"    {split:<10} {count:>7,} examples")
    names = info["class_names"]
    print(f"  classes ({len(names)}): " + ", ".join(f"{i}={n}" for i, n in enumerate(names)))
    for line in info["csv_headers"]:
        print(f"  read as:   {line}")
    return 0
