"""``aezoo``: the command-line tool. Every subcommand is registered in :data:`COMMANDS`, in help order.

Each module below adds its subcommands with ``register(subparsers)`` and imports
TensorFlow only inside its handlers, so building the parser is fast and works on a
device without TensorFlow. The exception boundary is ``edge.cli.run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from edge.cli import PROG, run

# Modules with a ``register(subparsers)`` function; their order is the help order.
COMMANDS = (
    "training.cli.data",      # data prepare | info
    "training.cli.train",     # train, evaluate
    "training.cli.compress",  # optimize, export, report
    "edge.cli",               # detect, calibrate, agreement, keygen
    "training.cli.zoo",       # models, zoo build | list | verify | table
    "training.cli.beyond",    # embed, sample, interpolate, represent
    "training.cli.bench",     # bench small-images | vectors
    "training.cli.demo",      # demo
)


def build_parser() -> argparse.ArgumentParser:
    """The ``aezoo`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Autoencoder zoo: train, evaluate, compress and deploy autoencoder anomaly detectors.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``aezoo``; return the exit code (2 for bad input, with no traceback)."""
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
