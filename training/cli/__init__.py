"""``aezoo``: the command-line tool. Every subcommand is registered in :data:`COMMANDS`, in help order.

Each module below adds its subcommands with ``register(subparsers)`` and imports
TensorFlow only inside its handlers, so building the parser is fast and works on a
device without TensorFlow. The exception boundary is ``edge.cli.run``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from edge import cli as device
from edge.cli import PROG, run
from training.cli import bench, beyond, compress, data, demo, train
from training.cli import zoo as zoo_commands

# Modules with a ``register(subparsers)`` function; their order is the help order.
COMMANDS = (
    data,          # data prepare | info
    train,         # train, evaluate
    compress,      # optimize, export, report
    device,        # detect, calibrate, agreement, keygen
    zoo_commands,  # models, zoo build | list | verify | table
    beyond,        # embed, sample, interpolate, represent
    bench,         # bench small-images | vectors | series | ... | anomaly-maps | fuzz
    demo,          # demo
)


def build_parser() -> argparse.ArgumentParser:
    """The ``aezoo`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Autoencoder zoo: train, evaluate, compress and deploy autoencoder anomaly detectors.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    parser.set_defaults(parser=parser)  # `bench fuzz` runs generated argument lists through this very parser
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``aezoo``; return the exit code (2 for bad input, with no traceback)."""
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
