"""``aezoo``: the command-line tool.

Each package registers its own subcommands from a ``commands`` module that does
not import TensorFlow at import time, so ``aezoo detect`` runs on a device that
has only ai-edge-litert and numpy.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from zoo.errors import UserError

# Modules with a ``register(subparsers)`` function; order is the help order.
COMMAND_MODULES = ("training.commands", "zoo.commands", "edge.commands")


def build_parser() -> argparse.ArgumentParser:
    """Return the ``aezoo`` argument parser with every package's subcommands."""
    parser = argparse.ArgumentParser(
        prog="aezoo",
        description="Autoencoder zoo: train, evaluate, compress and deploy autoencoder anomaly detectors.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a device install may lack a package
            if exc.name and exc.name.split(".")[0] in {"training", "zoo", "edge"}:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``aezoo``; return the exit code (2 for bad input, with no traceback)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except UserError as exc:
        print(f"aezoo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if not missing or missing in {"training", "zoo", "edge"}:
            raise
        # A device install (requirements-edge.txt) has only what `aezoo detect` needs.
        print(
            f"aezoo {args.command}: error: this command needs {missing}, which is not installed; "
            "install the full package with `pip install autoencoder-zoo`. "
            "Only `aezoo detect` runs with the edge runtime alone (requirements-edge.txt).",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"aezoo {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
