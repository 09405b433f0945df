"""The device side of ``aezoo``: ``aezoo detect``, ``calibrate`` and ``agreement``, and the one exception boundary
every ``aezoo`` command runs in.

Importing this module imports neither TensorFlow nor the training package: a device
with only ai-edge-litert, numpy and Pillow runs these three commands (the full tool's
entry point is ``training.cli.main``; a runtime-only install's is :func:`main`).

The boundary (:func:`run`): a ``UserError`` is printed as one line and exits 2; a
missing optional package exits 2 naming it; Ctrl-C exits 130; a closed pipe
(``aezoo detect ... | head -1``) ends quietly; any other exception is a bug: one line
saying so, and the traceback only with ``AEZOO_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import re
import sys
import traceback
from typing import Any, Callable, Sequence

from zoo.errors import UserError

PROG = "aezoo"
# Packages of the full tool that a runtime-only install lacks (a clear message instead of a traceback).
OPTIONAL = {"tensorflow", "tf_keras", "tensorflow_model_optimization", "tensorflow_datasets", "sklearn", "matplotlib",
            "tqdm", "tflite_micro", "scipy", "training", "PIL"}
RESUMABLE = {"train", "zoo"}


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command inside the exception boundary; return the exit code."""
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]  # for commands that start copies of themselves
    name = getattr(args, "command", PROG)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        return _fail(name, str(exc))
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in OPTIONAL:
            return _bug(name, exc)
        return _fail(name, f"this command needs the package {missing!r}, which is not installed. Install the full "
                           "tool with `pip install autoencoder-zoo`; a runtime-only install runs `aezoo detect`, "
                           "`calibrate` and `agreement`.")
    except KeyboardInterrupt:
        hint = "; continue it with the same command and --resume" if name in RESUMABLE else ""
        print(f"{PROG} {name}: interrupted{hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head -1`): stop quietly, without a second error at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except MemoryError:
        return _fail(name, "out of memory: use a smaller batch or fewer inputs at a time", code=1)
    except OSError as exc:
        message = os_error_message(exc)
        resume = " (a training run continues with --resume)" if name in RESUMABLE else ""
        return _fail(name, message + resume) if message else _bug(name, exc)
    except Exception as exc:  # noqa: BLE001 - the one place where unexpected errors become a clear message
        return _bug(name, exc)


# OS errors a user's machine causes (a full disk, a file-size limit, a read-only or foreign folder, a file where a
# folder belongs), each with what to do; any other OSError is a bug.
_OS_HINTS = {errno.ENOSPC: "free some space and run the same command again",
             errno.EDQUOT: "free some space (the disk quota) and run the same command again",
             errno.EFBIG: "the file-size limit (ulimit -f) stopped the write; raise it and run the same command again",
             errno.EACCES: "choose a folder you can write, or ask for permission",
             errno.EPERM: "choose a folder you can write (this one, or its file, is protected)",
             errno.EROFS: "that file system is read-only: choose another folder",
             errno.ENOTDIR: "a part of that path is a file, not a folder",
             errno.EISDIR: "that path is a folder; a file was expected",
             errno.ENAMETOOLONG: "choose a shorter path"}


def os_error_message(exc: OSError) -> str | None:
    """The one-line message of an OS error a user can cause (None for any other): what failed, where, what to do.

    h5py (Keras's .h5 and .keras writes) reports the errno only inside its text ("errno = 28").
    """
    code = exc.errno
    if code is None:
        found = re.search(r"errno = (\d+)", str(exc))
        code = int(found.group(1)) if found else None
    if code not in _OS_HINTS:
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    # Every write of a result is atomic (a temporary, then a rename): what stopped is not left half-written.
    return f"{os.strerror(code)}{where}: the command stopped at that write; {_OS_HINTS[code]}"


def _fail(name: str, message: str, code: int = 2) -> int:
    print(f"{PROG} {name}: error: {message}", file=sys.stderr)
    return code


def _bug(name: str, exc: BaseException) -> int:
    if os.environ.get("AEZOO_DEBUG") == "1":
        traceback.print_exc()
    print(f"{PROG} {name}: internal error (a bug in aezoo, please report it): {type(exc).__name__}: {exc}"
          + ("" if os.environ.get("AEZOO_DEBUG") == "1" else "\nSet AEZOO_DEBUG=1 to see the traceback."), file=sys.stderr)
    return 1


def int_arg(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], the limit named in the message."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}. Received: {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"in {low}..{high}"
            raise argparse.ArgumentTypeError(f"expected an integer {bounds}. Received: {value}")
        return value

    return parse


def register(sub: Any) -> None:
    """Add ``aezoo detect``, ``aezoo calibrate`` and ``aezoo agreement``."""
    from edge.detector import MAX_THREADS

    p = sub.add_parser(
        "detect",
        help="score images, feature vectors or sensor recordings with a detector bundle (needs only ai-edge-litert, numpy, "
             "Pillow)",
        description="Print an anomaly score and a verdict (score > threshold = anomaly) per input. Inputs: images "
        "(PNG/JPEG/BMP...) of the bundle's size or resized as its preprocessing says, .npy arrays (one input or a batch; "
        "uint8 0..255 or float in [0, 1] for images, raw values for vectors and series), .csv files of vectors, or "
        "recordings (.csv with the training channels, timestamp and is_anomaly optional; .npy [T, C]) for series "
        "bundles: one verdict per window, every hop samples.",
    )
    p.add_argument("bundle", metavar="BUNDLE", help="detector bundle directory")
    p.add_argument("files", metavar="FILES", nargs="*", help="images, .npy arrays, .csv files or recordings")
    p.add_argument("--stream", metavar="FILE|-",
                   help="series bundles: read CSV lines of raw samples from FILE or standard input (-) as they arrive and "
                        "print one verdict per hop, e.g. `tail -f sensor.csv | aezoo detect det/ --stream -`")
    p.add_argument("--on-bad-line", choices=("stop", "skip"), default="stop",
                   help="with --stream: a line that is not a sample stops the run (exit 2) or is reported and skipped "
                        "(default: stop)")
    p.add_argument("--header", metavar="COLUMNS",
                   help="with --stream: the comma-separated column names of a stream without a header line, e.g. "
                        "timestamp,value,is_anomaly (tail -f starts inside a file)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text (JSON lines with --stream)")
    p.add_argument("--map", metavar="DIR", help="image bundles: also write DIR/NAME.map.png per input: the input, its "
                   "reconstruction and the anomaly map (per-pixel squared reconstruction error) over the input")
    p.add_argument("--map-scale", type=float, default=0.1, metavar="ERR",
                   help="with --map: the squared pixel error drawn at full heat, the same for every input so maps "
                        "compare (default 0.1: a pixel off by about a third of the range)")
    _public_key_argument(p)
    p.add_argument("--threads", type=int_arg(1, MAX_THREADS), default=1, help=f"LiteRT CPU threads, 1..{MAX_THREADS} (default: 1)")
    p.set_defaults(func=detect)

    from edge.calibrate import CALIBRATION_METHODS

    p = sub.add_parser(
        "calibrate",
        help="set a bundle's threshold again from normal inputs collected on the device (writes a new bundle; no TensorFlow)",
        description="Score inputs known to be normal with the bundle's model, set a new threshold with the method of "
        "training (the bundle's method, percentile and k unless given), compare the scores with the calibration data "
        "the bundle records (a warning with the figures when they look shifted) and write a new bundle with the new "
        "threshold and its provenance. The old bundle is never changed.",
    )
    p.add_argument("bundle", metavar="BUNDLE", help="detector bundle directory")
    p.add_argument("files", metavar="NORMAL_INPUTS", nargs="+", help="normal inputs: images, .npy arrays, .csv files or "
                   "recordings, as `aezoo detect` takes them")
    p.add_argument("--out", required=True, help="the new bundle directory (must not exist, or be empty)")
    p.add_argument("--method", choices=CALIBRATION_METHODS, help="threshold method (default: the bundle's)")
    p.add_argument("--percentile", type=float, help="for --method percentile, in (0, 100] (default: the bundle's)")
    p.add_argument("--k", type=float, help="for --method mean_std: standard deviations (default: the bundle's)")
    p.add_argument("--overwrite", action="store_true", help="replace --out when it is a bundle (never anything else)")
    p.add_argument("--json", action="store_true", help="print the calibration as JSON")
    _public_key_argument(p)
    p.add_argument("--sign-key", metavar="KEY", help="sign the new bundle with this private key (`aezoo keygen KEY`)")
    p.add_argument("--threads", type=int_arg(1, MAX_THREADS), default=1, help=f"LiteRT CPU threads, 1..{MAX_THREADS} (default: 1)")
    p.set_defaults(func=calibrate)

    p = sub.add_parser(
        "agreement",
        help="score inputs on LiteRT's default (XNNPACK) and reference kernels and compare the verdicts (no TensorFlow)",
        description="Does this board reach the verdict a microcontroller (reference kernels) or another board "
        "(XNNPACK) reaches? Scores the inputs with both kernel sets and prints, per pair, the fraction of inputs with "
        "the same verdict and the score differences in percent of the threshold, beside what the export recorded.",
    )
    p.add_argument("bundle", metavar="BUNDLE", help="detector bundle directory")
    p.add_argument("files", metavar="FILES", nargs="+", help="images, .npy arrays, .csv files or recordings")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=agreement)

    p = sub.add_parser(
        "keygen", help="make an Ed25519 key pair to sign bundles with (KEY) and to check them on devices (KEY.pub)",
        description="Write a new private key KEY (PEM, readable by its owner only: keep it on the machine that "
        "exports) and its public key KEY.pub (give it to devices: `aezoo detect --public-key KEY.pub`, "
        "$AEZOO_PUBLIC_KEY). Existing files are never replaced. Needs the `cryptography` package.")
    p.add_argument("key", metavar="KEY", help="the private key file to write")
    p.set_defaults(func=keygen)


def keygen(args: argparse.Namespace) -> int:
    """``aezoo keygen``: a new key pair."""
    from edge.signing import key_id, load_public_key, new_keypair

    public = new_keypair(args.key)
    print(f"wrote {args.key} (private: sign with `aezoo export ... --sign-key {args.key}`) and {public} (public, key id "
          f"{key_id(load_public_key(public))}: `aezoo detect --public-key {public}` or AEZOO_PUBLIC_KEY={public})")
    return 0


def _public_key_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--public-key", metavar="KEY.pub", help="the public key this device trusts: only a bundle signed with "
                   "its private key loads (default: $AEZOO_PUBLIC_KEY; unset: no signature check)")


def detect(args: argparse.Namespace) -> int:
    """``aezoo detect``: one line (or JSON object) per input."""
    from edge.detector import Detector
    from edge.inputs import ImageInput

    if args.stream is not None:
        if args.files:
            raise UserError(f"give input FILES or --stream, not both. Received: {len(args.files)} file(s) and --stream {args.stream}")
        from edge.stream import run_stream

        if args.map:
            raise UserError("--map draws images' anomaly maps; a --stream is a series")
        header = args.header.split(",") if args.header else None
        return run_stream(args.bundle, args.stream, as_json=args.json, on_bad_line=args.on_bad_line, threads=args.threads,
                          header=header, public_key=args.public_key)
    if args.header:
        raise UserError("--header names the columns of a --stream; files name theirs in their first line")
    if not args.files:
        raise UserError("expected input FILES (images, .npy, .csv, recordings) or --stream FILE|- for a series bundle")
    detector = Detector.load(args.bundle, num_threads=args.threads, public_key=args.public_key)
    if detector.spec.get("upgraded_from_version") == 1:
        print(f"{PROG} detect: note: {args.bundle} is a version-1 bundle: its threshold and preprocessing carry no "
              "integrity hash, so they are unverified; re-export it to have them checked", file=sys.stderr)
    if args.map and not isinstance(detector.input, ImageInput):
        raise UserError(f"--map draws per-pixel maps of images: {detector.input.name} bundles have none")
    x, names = read_inputs(detector, args.files, "detect")
    # Inputs are prepared already; score them raw so they are not standardized twice.
    scores = detector.score_prepared(x)
    broken = [n for n, s in zip(names, scores) if not math.isfinite(s)]
    if broken:  # a NaN compares as "not above the threshold": it must never print as normal
        raise UserError(f"the detector gave no finite score for {', '.join(broken[:5])}"
                        f"{' ...' if len(broken) > 5 else ''}: the bundle or these inputs are broken; nothing is judged")
    verdicts = scores > detector.threshold_
    maps = _write_maps(detector, x, names, scores, verdicts, args.map, args.map_scale) if args.map else None
    if args.json:
        results = [{"input": n, "score": float(s), "anomaly": bool(v)} for n, s, v in zip(names, scores, verdicts)]
        json.dump({"bundle": args.bundle, "score": detector.score_kind, "threshold": detector.threshold_,
                   "results": results}, sys.stdout, indent=2)
        print()
    else:
        width = max(len(n) for n in names)
        for n, s, v in zip(names, scores, verdicts):
            print(f"{n:<{width}}  {detector.score_kind}={s:.6g}  {'ANOMALY' if v else 'normal'}")
        print(f"({len(names)} inputs, threshold {detector.threshold_:.6g}, {int(verdicts.sum())} anomalies)")
    if maps:
        print(f"wrote {len(maps)} anomaly map(s) in {args.map}", file=sys.stderr)
    sys.stdout.flush()
    return 0


def _write_maps(detector: Any, x: Any, names: list[str], scores: Any, verdicts: Any, out: str, scale: float) -> list:
    """``--map``: one PNG per input in ``out``; every target is checked before the first is written."""
    import re
    from pathlib import Path

    from edge.anomaly_map import pixel_error_map, write_map_png

    if not (scale > 0 and scale < float("inf")):
        raise UserError(f"--map-scale must be a positive number. Received: {scale}")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--map {out} is a file; expected a folder (it is created when missing)")
    stems = [re.sub(r"[^\w.-]+", "_", re.sub(r"\.(png|jpe?g|bmp|gif|tiff?|webp|npy)(?=$|\[)", "", Path(n).name,
                                               flags=re.I)).strip("_") for n in names]
    targets = [folder / f"{stem}{'' if stems.count(stem) == 1 else f'-{i}'}.map.png" for i, stem in enumerate(stems)]
    taken = [str(t) for t in targets if t.exists()]
    if taken:
        raise UserError(f"--map would overwrite {', '.join(taken[:3])}{' ...' if len(taken) > 3 else ''}: "
                        "choose an empty folder; nothing was written")
    folder.mkdir(parents=True, exist_ok=True)
    recon = detector.reconstruct(x)
    maps = pixel_error_map(x, recon)
    for target, image, r, m, s, v in zip(targets, x, recon, maps, scores, verdicts):
        write_map_png(target, image, r, m, vmax=scale, title=f"{detector.score_kind}={s:.4g} {'ANOMALY' if v else 'normal'}")
    return targets


def read_inputs(detector: Any, paths: Sequence[str], command: str) -> tuple[Any, list[str]]:
    """(prepared inputs, one name each) of input files for ``detector``; a bad file is named in the error.

    How each CSV's first row was read (header or data) goes to stderr under ``command``'s name.
    """
    import numpy as np

    from edge.inputs import describe_csv, load_input_file

    names, arrays = [], []
    for path in paths:
        try:
            x, labels = detector.input.file_inputs(load_input_file(path, detector.spec), path)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        if not len(x):
            raise UserError(f"{path}: holds no inputs (an empty array)")
        if path.lower().endswith(".csv"):  # the header rule cannot know a header of numbers: say what was taken
            print(f"{PROG} {command}: {describe_csv(path)}", file=sys.stderr)
        arrays.append(x)
        names += labels
    return np.concatenate(arrays), names


def calibrate(args: argparse.Namespace) -> int:
    """``aezoo calibrate``: a new bundle with a threshold set on normal inputs collected on the device."""
    from pathlib import Path

    from edge.detector import Detector

    out, bundle = Path(args.out).resolve(), Path(args.bundle).resolve()
    if out == bundle or bundle in out.parents:
        raise UserError(f"--out {args.out} is the bundle being recalibrated or inside it; the old bundle is never changed: "
                        "give a new folder")
    detector = Detector.load(args.bundle, num_threads=args.threads, public_key=args.public_key)
    old = detector.threshold_
    x, _ = read_inputs(detector, args.files, "calibrate")
    files = ", ".join(args.files) if len(args.files) <= 3 else f"{args.files[0]} and {len(args.files) - 1} more files"
    result = detector.calibrate(x, method=args.method, percentile=args.percentile, k=args.k, prepared=True,
                                source=f"{len(x)} normal inputs from {files} (aezoo calibrate)")
    detector.save(args.out, overwrite=args.overwrite, sign_key=args.sign_key)
    if result.warning:
        print(f"{PROG} calibrate: warning: {result.warning}", file=sys.stderr)
    if args.json:
        json.dump({"bundle": args.out, "from": args.bundle, **result.to_dict()}, sys.stdout, indent=2)
        print()
    else:
        t, c = result.threshold, result.comparison
        how = f"{t['percentile']:g}th percentile" if t["method"] == "percentile" else f"mean + {t['k']:g} std"
        print(f"threshold {old:.6g} -> {t['value']:.6g} ({how} of {c['inputs']} inputs' {detector.score_kind} scores; "
              f"{100 * c['fraction_above_previous_threshold']:.1f}% of them were above the old threshold)")
        print(f"wrote {args.out} (the model unchanged; {args.bundle} untouched)")
    return 0


def agreement(args: argparse.Namespace) -> int:
    """``aezoo agreement``: the same inputs on LiteRT's default and reference kernels; verdicts and scores compared."""
    from edge import agreement as _agreement
    from edge.bundle import read_bundle
    from edge.detector import Detector

    model, spec = read_bundle(args.bundle)
    x, _ = read_inputs(Detector(model, spec), args.files, "agreement")
    report = _agreement.measure(model, spec, x, inputs=f"{len(args.files)} input file(s)", prepared=True)
    recorded = spec["provenance"].get("agreement")
    if args.json:
        json.dump({"bundle": args.bundle, **report, "recorded": recorded}, sys.stdout, indent=2)
        print()
    else:
        print(_agreement.summary(report))
        if recorded:
            print("recorded at export:\n" + "\n".join("  " + line for line in _agreement.summary(recorded).splitlines()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The runtime-only ``aezoo``: ``detect``, ``calibrate`` and ``agreement``."""
    parser = argparse.ArgumentParser(prog=PROG, description="Autoencoder zoo runtime: score inputs with a detector bundle.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of a runtime-only install."""
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
