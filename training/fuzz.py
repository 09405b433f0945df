"""A seeded sweep over what a user can hand the tool: input files, edited bundles and manifests, arguments.

Each generated case runs ``aezoo`` in this process inside a sandbox that also holds the
user's own files, and must end in one of two ways: exit 0 with a correct answer (where the
case knows it, the very scores of the same input given in its plain form; else finite
scores), or exit 2 with a one-line message. Never exit 1 ("internal error"), never a
traceback, never a NaN judged, never a changed file of the user's. ``aezoo bench fuzz``
runs many cases and records the counts; the test suite runs a few hundred.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import io
import json
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

IMAGE_BUNDLE = ("dense_ae", "fashion_mnist", 0)
SERIES_BUNDLE = ("conv1d_ae", "kdd_tsad_135", 0)
ODD_VALUES = (None, -1, 0, 0.5, 1e308, 1e-300, "x", [], {}, True, [1, 2], "", -1e308)


@dataclasses.dataclass
class Case:
    """One generated case: files to write, the argv (``{s}`` is the sandbox), and the answer a correct run gives."""

    surface: str
    name: str
    argv: list[str]
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)
    # "refuse" (exit 2), "same" (exit 0 and scores == want), "same or refuse", "either" (0 with finite scores, or 2)
    expect: str = "either"
    want: list[float] | None = None
    says: str | None = None  # what stderr must say on exit 0 (how a CSV's first row was read)


@dataclasses.dataclass
class Outcome:
    """What a case did, and what was wrong with it ("" when nothing)."""

    case: Case
    code: int
    problem: str


def _png(a: np.ndarray, mode: str | None = None) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a, mode).save(buf, format="PNG")
    return buf.getvalue()


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=a.dtype.hasobject)
    return buf.getvalue()


def _declaring(width: int, height: int) -> bytes:
    """A valid PNG whose header declares another size (a decompression bomb when large)."""
    b = bytearray(_png(np.zeros((4, 4), np.uint8)))
    b[16:24] = struct.pack(">II", width, height)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
    return bytes(b)


class Fuzzer:
    """Generates and runs cases against the repository zoo's image and series bundles."""

    def __init__(self, seed: int = 0, workdir: Path | None = None):
        """``workdir``: where the vector bundle is trained once (none: no vector cases)."""
        from edge import Detector
        from zoo import catalog

        self.rng = np.random.default_rng(seed)
        self.image_bundle = catalog.detector_dir(*IMAGE_BUNDLE)
        self.series_bundle = catalog.detector_dir(*SERIES_BUNDLE)
        self.image = Detector.load(self.image_bundle)
        self.series = Detector.load(self.series_bundle)
        self.entry_key = catalog.entry_key(*IMAGE_BUNDLE)
        self.entry_record = catalog.read_manifest()["entries"][self.entry_key]
        self.entry = catalog.saved_models_dir() / self.entry_record["path"]
        self.entry_files = {str(p.relative_to(self.entry)): p.read_bytes() for p in self.entry.rglob("*") if p.is_file()}
        self.makers: list[Callable[[], Case]] = [self.image_file, self.image_array, self.recording, self.edited_spec,
                                                  self.manifest, self.arguments]
        if workdir is not None:
            self.vector_bundle = _vector_bundle(workdir)
            self.vector = Detector.load(self.vector_bundle)
            self.makers.append(self.vector_file)

    # -- the generators: each returns one case -------------------------------------------------------------------

    def image_file(self) -> Case:
        rng = self.rng
        pixels = rng.integers(0, 256, (28, 28), dtype=np.uint8)
        want = self.image.score(pixels[None, :, :, None]).tolist()
        kind = rng.integers(9)
        detect = ["detect", str(self.image_bundle), "{s}/in.png", "--json"]
        if kind == 0:
            return Case("image file", "8-bit gray PNG", detect, {"in.png": _png(pixels)}, "same", want)
        if kind == 1:
            return Case("image file", "16-bit gray PNG", detect, {"in.png": _png(pixels.astype(np.uint16) * 257)},
                        "same", want)
        if kind == 2:
            rgb = np.repeat(pixels[..., None], 3, axis=2)
            return Case("image file", "gray picture saved as RGB", detect, {"in.png": _png(rgb)}, "same", want)
        if kind == 3:
            size = int(rng.choice([1, 27, 28, 29, 64]))
            other = rng.integers(0, 256, (size, size), dtype=np.uint8)
            return Case("image file", f"{size}x{size} PNG", detect, {"in.png": _png(other)}, "same" if size == 28 else
                        "refuse", self.image.score(other[None, :, :, None]).tolist() if size == 28 else None)
        if kind == 4:
            data = _png(pixels)
            # Cut after the pixel data (only the end marker lost) Pillow still reads it all: then the same scores.
            return Case("image file", "truncated PNG", detect, {"in.png": data[: int(rng.integers(0, len(data) - 1))]},
                        "same or refuse", want)
        if kind == 5:
            return Case("image file", "random bytes", detect, {"in.png": rng.bytes(int(rng.integers(0, 2000)))}, "refuse")
        if kind == 6:
            side = int(rng.choice([7000, 30000]))
            return Case("image file", f"PNG declaring {side}x{side}", detect, {"in.png": _declaring(side, side)}, "refuse")
        if kind == 7:
            rgba = np.dstack([np.repeat(pixels[..., None], 3, axis=2), np.full((28, 28), 255, np.uint8)])
            return Case("image file", "RGBA PNG of a gray picture", detect, {"in.png": _png(rgba, "RGBA")}, "same", want)
        return Case("image file", "text named .png", detect, {"in.png": b"not an image\n"}, "refuse")

    def image_array(self) -> Case:
        rng = self.rng
        n = int(rng.integers(1, 4))
        pixels = rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
        want = self.image.score(pixels).tolist()
        detect = ["detect", str(self.image_bundle), "{s}/in.npy", "--json"]
        kind = rng.integers(10)
        if kind == 0:
            return Case("array", "uint8 batch", detect, {"in.npy": _npy(pixels)}, "same", want)
        if kind == 1:
            dtype = rng.choice([np.float32, np.float64])
            return Case("array", f"{np.dtype(dtype).name} in [0, 1]", detect,
                        {"in.npy": _npy((pixels / 255.0).astype(dtype))}, "same", want)
        if kind == 2:
            bad = (pixels / 255.0).astype(np.float64)
            bad.flat[int(rng.integers(bad.size))] = rng.choice([np.nan, np.inf, -np.inf, 1e308, -1.0, 2.0, 255.0])
            return Case("array", "a value outside [0, 1] or not finite", detect, {"in.npy": _npy(bad)}, "refuse")
        if kind == 3:
            shape = [(28, 28), (28, 28, 3), (n, 28, 28, 3), (0, 28, 28, 1), (1,), (), (n, 27, 28, 1)][int(rng.integers(7))]
            return Case("array", f"shape {shape}", detect, {"in.npy": _npy(np.zeros(shape, np.uint8))},
                        "same" if shape == (28, 28) else "refuse",
                        self.image.score(np.zeros((1, 28, 28, 1), np.uint8)).tolist() if shape == (28, 28) else None)
        if kind == 4:
            return Case("array", "a pickled object array", detect, {"in.npy": _npy(np.array([{"a": 1}], dtype=object))},
                        "refuse")
        if kind == 5:
            dtype = rng.choice([np.int16, np.int64, np.uint16, np.float16, np.bool_, np.complex64])
            return Case("array", f"dtype {np.dtype(dtype).name}", detect, {"in.npy": _npy(pixels.astype(dtype))}, "either")
        if kind == 6:
            data = _npy(pixels)
            return Case("array", "truncated .npy", detect, {"in.npy": data[: int(rng.integers(0, len(data) - 1))]},
                        "refuse")
        if kind == 7:
            buf = io.BytesIO()
            np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)})
            return Case("array", "header claiming 10^12 elements", detect, {"in.npy": buf.getvalue() + b"\0" * 64},
                        "refuse")
        if kind == 8:
            return Case("array", "Fortran order", detect, {"in.npy": _npy(np.asfortranarray(pixels))}, "same", want)
        return Case("array", "image named .npy", detect, {"in.npy": _png(pixels[0, :, :, 0])}, "refuse")

    def recording(self) -> Case:
        rng = self.rng
        window = self.series.input.window
        t = int(rng.integers(window, 3 * window))
        values = np.round(rng.standard_normal(t) * 0.5, 4)
        want = self.series.score_recording(values[:, None])[1].tolist()
        rows = [f"{i},{v:.4f},0" for i, v in enumerate(values)]
        header = "timestamp,value,is_anomaly"
        detect = ["detect", str(self.series_bundle), "{s}/rec.csv", "--json"]
        kind = rng.integers(10)

        def csv(lines: list[str]) -> dict[str, bytes]:
            return {"rec.csv": ("\n".join(lines) + "\n").encode()}

        if kind == 0:
            return Case("recording", "TimeEval CSV", detect, csv([header, *rows]), "same", want)
        if kind == 1:
            return Case("recording", "with a UTF-8 BOM", detect, {"rec.csv": b"\xef\xbb\xbf" + csv([header, *rows])["rec.csv"]},
                        "same", want)
        if kind == 2:
            i = int(rng.integers(len(rows)))
            cell = str(rng.choice(["", "x", "nan", "inf", "1e39", "1_0", "--1", "0x10"]))
            bad = rows.copy()
            bad[i] = f"{i},{cell},0"
            return Case("recording", f"cell {cell!r}", detect, csv([header, *bad]), "refuse")
        if kind == 3:
            return Case("recording", "fewer samples than a window", detect,
                        csv([header, *rows[: int(rng.integers(0, window))]]), "refuse")
        if kind == 4:
            return Case("recording", "another channel name", detect, csv(["timestamp,temp,is_anomaly", *rows]), "either")
        if kind == 5:
            i = int(rng.integers(len(rows)))
            bad = rows.copy()
            bad[i] = bad[i] + ",9"
            return Case("recording", "a row with an extra column", detect, csv([header, *bad]), "refuse")
        if kind == 6:
            bad = [f"{i},{v:.4f},{rng.choice(['2', 'yes', '-1'])}" for i, v in enumerate(values)]
            return Case("recording", "labels that are not 0/1", detect, csv([header, *bad]), "refuse")
        if kind == 7:
            return Case("recording", "header only", detect, csv([header]), "refuse")
        if kind == 8:
            return Case("recording", "random bytes", detect, {"rec.csv": rng.bytes(int(rng.integers(1, 500)))}, "refuse")
        npy = _npy(values[:, None].astype(np.float32))
        return Case("recording", ".npy [T, 1]", ["detect", str(self.series_bundle), "{s}/rec.npy", "--json"],
                    {"rec.npy": npy}, "either")

    def vector_file(self) -> Case:
        """A CSV or .npy of feature vectors for the vector bundle; what the first row was taken as must be said."""
        rng = self.rng
        rows = np.round(rng.standard_normal((int(rng.integers(1, 6)), VECTOR_FEATURES)), 4)
        want = self.vector.score(rows).tolist()
        names = [f"f{j}" for j in range(VECTOR_FEATURES)]
        lines = [",".join(f"{v:.4f}" for v in r) for r in rows]
        detect = ["detect", str(self.vector_bundle), "{s}/v.csv", "--json"]
        kind = rng.integers(10)

        def csv(text_lines: list[str], bom: bool = False) -> dict[str, bytes]:
            return {"v.csv": (b"\xef\xbb\xbf" if bom else b"") + ("\n".join(text_lines) + "\n").encode()}

        if kind == 0:
            return Case("vector file", "CSV with a header", detect, csv([",".join(names), *lines]), "same", want,
                        says="is the header")
        if kind == 1:
            return Case("vector file", "CSV without a header, with a BOM", detect, csv(lines, bom=True), "same", want,
                        says="no header")
        if kind == 2:
            labelled = [",".join([*names[:2], "label", *names[2:]])] + [
                ",".join([*line.split(",")[:2], "0", *line.split(",")[2:]]) for line in lines]
            return Case("vector file", "a label column among the features", detect, csv(labelled), "same", want,
                        says="is the header")
        if kind == 3:
            bad = lines.copy()
            i = int(rng.integers(len(bad)))
            cell = str(rng.choice(["", "x", "nan", "inf", "1e39", "1_0", "0x10"]))
            bad[i] = ",".join([cell, *bad[i].split(",")[1:]])
            return Case("vector file", f"cell {cell!r}", detect, csv([",".join(names), *bad]), "refuse")
        if kind == 4:
            bad = lines.copy()
            bad[-1] += ",1"
            return Case("vector file", "a row with an extra column", detect, csv([",".join(names), *bad]), "refuse")
        if kind == 5:
            fewer = [",".join(line.split(",")[:-1]) for line in lines]
            return Case("vector file", "one feature fewer", detect, csv(fewer), "refuse")
        if kind == 6:
            return Case("vector file", "header only", detect, csv([",".join(names)]), "refuse")
        if kind == 7:
            return Case("vector file", "random bytes", detect, {"v.csv": rng.bytes(int(rng.integers(1, 300)))}, "refuse")
        if kind == 8:
            return Case("vector file", "float64 .npy", ["detect", str(self.vector_bundle), "{s}/v.npy", "--json"],
                        {"v.npy": _npy(rows)}, "same", want)
        return Case("vector file", "a header of numbers", detect, csv(["1,2,3,4", *lines]), "either", says="no header")

    def manifest(self) -> Case:
        """A one-entry zoo folder whose manifest or entry files are edited; ``zoo verify`` / ``zoo list`` read it."""
        from zoo import catalog

        rng = self.rng
        key = self.entry_key
        doc = copy.deepcopy({**catalog.read_manifest(), "entries": {key: self.entry_record}})
        files = {f"zoo/{self.entry_record['path']}/{name}": data for name, data in self.entry_files.items()}
        command = [["zoo", "verify"], ["zoo", "list"]][int(rng.integers(2))] + ["--saved-models", "{s}/zoo"]
        kind = rng.integers(5)
        expect, name = "either", "unedited"
        if kind == 0:
            expect = "same"
        elif kind == 1:
            leaves = _leaf_paths(doc["entries"][key])
            path = ("entries", key, *leaves[int(rng.integers(len(leaves)))])
            value = ODD_VALUES[int(rng.integers(len(ODD_VALUES)))]
            _set(doc, path, value)
            name = f"{'.'.join(map(str, path[2:]))} = {value!r}"
        elif kind == 2:
            victim = f"zoo/{self.entry_record['path']}/{sorted(self.entry_files)[int(rng.integers(len(self.entry_files)))]}"
            data = bytearray(files[victim])
            data[int(rng.integers(len(data)))] ^= 0xFF
            files[victim] = bytes(data)
            expect, name = ("refuse", "an entry file flipped") if command[1] == "verify" else ("either", "an entry file flipped")
        elif kind == 3:
            doc["entries"][key]["files"] = {str(rng.choice(["../../x", "/etc/hostname", "card.json/../../y"])): {
                "sha256": "0" * 64, "bytes": 1}}
            expect, name = "refuse", "a file key outside the entry"
        text = json.dumps(doc).encode()
        if kind == 4:
            text, name = text[: int(rng.integers(0, len(text)))], "a truncated manifest"
            expect = "refuse"
        files["zoo/manifest.json"] = text
        return Case("manifest", f"{' '.join(command[:2])}: {name}", command, files, expect)

    def edited_spec(self) -> Case:
        """A detector.json with one field changed, its hash recomputed (as anyone who edits it can), or not."""
        from edge.bundle import spec_digest

        rng = self.rng
        spec = json.loads((self.image_bundle / "detector.json").read_text())
        paths = _leaf_paths({k: v for k, v in spec.items() if k != "integrity"})
        path = paths[int(rng.integers(len(paths)))]
        value = ODD_VALUES[int(rng.integers(len(ODD_VALUES)))]
        edited = copy.deepcopy(spec)
        _set(edited, path, value)
        if edited == spec:
            value = "changed"
            _set(edited, path, value)
        reseal = bool(rng.integers(2))
        if reseal:
            edited["integrity"]["spec_sha256"] = spec_digest(edited)
        files = {"b/detector.json": json.dumps(edited).encode(), "b/model.tflite": (self.image_bundle / "model.tflite").read_bytes(),
                 "in.npy": _npy(self.rng.integers(0, 256, (2, 28, 28, 1), dtype=np.uint8))}
        return Case("bundle", f"{'.'.join(map(str, path))} = {value!r}{' (resealed)' if reseal else ''}",
                    ["detect", "{s}/b", "{s}/in.npy", "--json"], files, "either" if reseal else "refuse")

    def arguments(self) -> Case:
        rng = self.rng
        tokens = ["--threads", "--json", "--stream", "--on-bad-line", "--header", "--public-key", "--out", "--method",
                  "--percentile", "--k", "--overwrite", "-x", "--", "0", "-1", "99999", "nan", "1e309", "", "x,y",
                  "{s}/none", "{s}", "{s}/mine/notes.txt"]
        command = [["detect", str(self.image_bundle)], ["calibrate", str(self.image_bundle), "{s}/in.npy"],
                   ["agreement", str(self.series_bundle)], ["zoo", "list"], ["models"]][int(rng.integers(5))]
        argv = command + [str(rng.choice(tokens)) for _ in range(int(rng.integers(0, 5)))]
        files = {"in.npy": _npy(self.rng.integers(0, 256, (2, 28, 28, 1), dtype=np.uint8))}
        return Case("arguments", " ".join(argv[:1] + argv[2:]), argv, files, "either")

    # -- running --------------------------------------------------------------------------------------------------

    def case(self) -> Case:
        """The next generated case."""
        return self.makers[int(self.rng.integers(len(self.makers)))]()

    def run(self, case: Case, sandbox: Path, cli: Callable[[list[str]], int]) -> Outcome:
        """Run ``case`` through ``cli`` (``aezoo``'s main) in a fresh ``sandbox`` beside the user's files; judge it."""
        if sandbox.exists():
            shutil.rmtree(sandbox)
        (sandbox / "mine").mkdir(parents=True)
        (sandbox / "mine" / "notes.txt").write_text("the user's own file\n")
        for name, data in case.files.items():
            (sandbox / name).parent.mkdir(parents=True, exist_ok=True)
            (sandbox / name).write_bytes(data)
        before = _tree(sandbox)
        argv = [a.replace("{s}", str(sandbox)) for a in case.argv]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli(argv)
            except SystemExit as exc:  # argparse's refusals
                code = exc.code if isinstance(exc.code, int) else 2
        after = _tree(sandbox)
        changed = [p for p in before if after.get(p) != before[p]]
        return Outcome(case, code, _judge(case, code, out.getvalue(), err.getvalue(), changed))


def _judge(case: Case, code: int, out: str, err: str, changed: list[str]) -> str:
    if changed:
        return f"changed {changed}"
    if "Traceback" in err or code not in (0, 2):
        return f"exit {code}: {err.strip()[-300:]}"
    if code == 2:
        if case.expect == "same":
            return f"refused a valid input: {err.strip()[-200:]}"
        return "" if err.strip() else "exit 2 without a message"
    if case.expect == "refuse":
        return "accepted what it must refuse"
    if case.says is not None and case.says not in err:
        return f"did not say {case.says!r} on stderr: {err.strip()[-200:]}"
    scores = _scores(out)
    if scores is None:
        return ""  # a command without scores (models, zoo list, calibrate...)
    if not all(np.isfinite(scores)):
        return f"judged a non-finite score: {scores}"
    if case.expect.startswith("same") and not np.allclose(scores, case.want, rtol=1e-6, atol=1e-9):
        return f"scores {scores[:3]} differ from the plain input's {case.want[:3]}"
    return ""


def _scores(out: str) -> list[float] | None:
    try:
        doc = json.loads(out)
    except ValueError:
        return None
    if not isinstance(doc, dict) or "results" not in doc:
        return None
    results = doc["results"]
    return [r["score"] for r in results] if isinstance(results, list) else [r["score"] for r in results.get("windows", [])]


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


VECTOR_FEATURES = 4


def _vector_bundle(root: Path) -> Path:
    """A small dense_ae detector of generated feature vectors (one epoch; its answers are what the fuzz compares)."""
    import training
    from training.convert import export_run

    bundle = root / "bundle"
    if (bundle / "detector.json").is_file():
        return bundle
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 2)) @ rng.standard_normal((2, VECTOR_FEATURES))
    root.mkdir(parents=True, exist_ok=True)
    np.savetxt(root / "train.csv", x, delimiter=",", header=",".join(f"f{j}" for j in range(VECTOR_FEATURES)),
               comments="", fmt="%.5f")
    training.train(model="dense_ae", dataset=str(root / "train.csv"), score="mse", normal_class=0, epochs=1, min_steps=0,
                   out=root / "run", plots=False, verbose=0)
    return export_run(root / "run", bundle)


def _leaf_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(node, dict) and node:
        return [p for k, v in node.items() for p in _leaf_paths(v, (*prefix, k))]
    if isinstance(node, list) and node and len(node) <= 8:
        return [p for i, v in enumerate(node) for p in _leaf_paths(v, (*prefix, i))]
    return [prefix]


def _set(node: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def sweep(cases: int, workdir: Path, cli: Callable[[list[str]], int], *, seed: int = 0,
          progress: Callable[[int], None] | None = None) -> dict:
    """Run ``cases`` generated cases through ``cli`` (``training.cli.main``: the sweep is run by the CLI it tests,
    so it is handed in); return the counts per surface and outcome, and every problem found.

    The cases run in a scratch folder made for them inside ``workdir`` and removed afterwards: nothing
    else in ``workdir`` is touched.
    """
    import tempfile

    workdir.mkdir(parents=True, exist_ok=True)
    sandbox = Path(tempfile.mkdtemp(prefix=".aezoo-fuzz-", dir=workdir))
    try:
        return _sweep(cases, sandbox, cli, seed, progress)
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)


def _sweep(cases: int, sandbox: Path, cli: Callable[[list[str]], int], seed: int,
           progress: Callable[[int], None] | None) -> dict:
    fuzzer = Fuzzer(seed, sandbox / "vector")
    counts: dict[str, dict[str, int]] = {}
    problems = []
    for i in range(cases):
        outcome = fuzzer.run(fuzzer.case(), sandbox / "case", cli)
        c = counts.setdefault(outcome.case.surface, {"cases": 0, "exit 0": 0, "exit 2": 0, "problems": 0})
        c["cases"] += 1
        c[f"exit {outcome.code}"] = c.get(f"exit {outcome.code}", 0) + 1
        if outcome.problem:
            c["problems"] += 1
            problems.append({"surface": outcome.case.surface, "case": outcome.case.name, "argv": outcome.case.argv,
                             "exit": outcome.code, "problem": outcome.problem})
        if progress is not None:
            progress(i)
    return {"cases": cases, "seed": seed, "per_surface": counts, "problems": problems}
