"""Bad input, as a careless or hostile user gives it: exit 2 with a message naming what was expected,
no traceback, and nothing on disk changed except what the command owns."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from training.cli import main
from zoo.errors import UserError


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def sandbox(tmp_path):
    """A folder with a user's files, an empty folder, a text .npy and an image folder without a test split."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("a file")
    (tmp_path / "text.npy").write_text("just text")
    (tmp_path / "dir.png").mkdir()
    rows = "".join(f"{i % 7},{(i * 3) % 5},{i % 2}\n" for i in range(40))
    (tmp_path / "v.csv").write_text("a,b,label\n" + rows)
    (tmp_path / "wide.csv").write_text("a,b,c,label\n" + "".join(f"{i},1,2,{i % 2}\n" for i in range(10)))
    (tmp_path / "under.csv").write_text("a,b\n1,2\n1_000,4\n")
    (tmp_path / "huge.csv").write_text("a,b\n1,2\n1e39,4\n")
    return tmp_path


CASES = [
    (["train", "--normal-class", ",", "--out", "{t}/r"], "--normal-class expects"),
    (["train", "--out", "{t}/afile"], "is a file"),
    (["train", "--out", "{t}/mine"], "folder with other files"),
    (["train", "--dataset", "{t}/empty", "--out", "{t}/r"], "not an image folder"),
    (["train", "--dataset", "{t}/text.csv", "--out", "{t}/r"], "not found"),
    (["train", "--score", "elbo", "--model", "conv_ae", "--out", "{t}/r"], "variational"),
    (["train", "--image-size", "3,3", "--out", "{t}/r"], "8..1024"),
    (["train", "--dataset", "fashion_mnist", "--test-data", "{t}/afile", "--out", "{t}/r"], "--test-data goes with"),
    (["evaluate", "{t}/mine"], "expected a run folder"),
    (["sample", "{t}/mine", "--out", "{t}/mine"], "is a directory"),
    (["sample", "{t}/mine", "--out", "{t}/g.png", "--n", "100000"], "1..1024"),
    (["embed", "{t}/mine", "--out", "{t}/afile"], "already exists"),
    (["zoo", "verify", "--saved-models", "{t}/typo"], "does not exist"),
    (["zoo", "list", "--saved-models", "{t}/afile"], "is a file"),
    (["zoo", "table", "--write", "{t}/missing/README.md"], "is not a file"),
    (["data", "info", "fashion_mnist", "--data-dir", "{t}/typo"], "does not exist"),
    (["detect", "{t}/mine", "{t}/afile"], "detector.json is missing"),
    (["export", "{t}/mine", "--out", "{t}/b"], "incomplete"),
    (["optimize", "{t}/empty", "--method", "qat"], "incomplete"),
    (["models", "nothing*"], "no model matches"),
    # A label column name with a typo would train the labels as a feature, every row as the normal class.
    (["train", "--dataset", "{t}/v.csv", "--label-column", "lbl", "--out", "{t}/r"], "has no column 'lbl'"),
    (["train", "--dataset", "{t}/v.csv", "--test-data", "{t}/wide.csv", "--out", "{t}/r"], "expected the same columns"),
    (["train", "--dataset", "{t}/under.csv", "--out", "{t}/r"], "line 3, column 1: expected a number"),
    (["train", "--dataset", "{t}/huge.csv", "--out", "{t}/r"], "within float32's range"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a[:2]) + f" [{i}]" for i, (a, _) in enumerate(CASES)])
def test_bad_input_is_a_clear_exit_2_and_changes_nothing(sandbox, argv, message, capsys):
    before = _tree(sandbox)
    argv = [a.replace("{t}", str(sandbox)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals exit 2 too
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err, err
    assert _tree(sandbox) == before, "a refused command changed the file system"
    assert not [p for p in sandbox.rglob(".*") if p.name != ".lock"], "temporaries left behind"


def test_python_api_raises_user_errors(tmp_path):
    import zoo
    from edge import Detector
    from training.config import TrainConfig

    for call, match in [
        (lambda: Detector.load(None), "path of a detector bundle"),
        (lambda: Detector.from_zoo("conv_ae", normal_class="x"), "normal_class must be an integer"),
        (lambda: Detector.from_zoo("conv_ae", normal_class=1.7), "normal_class must be an integer"),
        (lambda: Detector.from_zoo("conv_ae", root=tmp_path / "missing"), "does not exist"),
        (lambda: TrainConfig(percentile="x"), "percentile must be a number"),
        (lambda: TrainConfig.from_json("{bad"), "not JSON"),
        (lambda: zoo.list_models(5), "glob string"),
        (lambda: zoo.load_model(_garbage(tmp_path)), "not a readable .keras model"),
    ]:
        with pytest.raises(UserError, match=match):
            call()


def _garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.keras"
    path.write_bytes(os.urandom(256))
    return path


def test_no_nan_in_metrics_json_without_anomalies(tmp_path):
    """A folder whose test split holds only the normal class: AUROC is null with a reason, valid JSON."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 8)):
        folder = tmp_path / "one" / split / "only"
        folder.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8), "L").save(folder / f"{i}.png")
    assert main(["train", "--model", "dense_ae", "--dataset", str(tmp_path / "one"), "--normal-class", "0", "--epochs", "1", "--min-steps", "0",
                 "--min-steps", "0", "--quiet", "--no-plots", "--out", str(tmp_path / "run")]) == 0
    text = (tmp_path / "run" / "metrics.json").read_text()
    assert "NaN" not in text
    metrics = json.loads(text)
    assert metrics["model"]["auroc"] is None and "no labelled test split" in metrics["model"]["undefined_because"]


def test_values_beyond_float32_and_nan_scores_are_never_judged_normal(monkeypatch, capsys, tmp_path):
    """float64 inputs that float32 would turn into inf are refused with their indices; a NaN score is an anomaly to
    ``predict`` and an error to ``aezoo detect`` (a NaN is never "not above the threshold", so never "normal")."""
    from edge import Detector
    from edge.inputs import for_spec
    from zoo import catalog

    vectors = for_spec({"preprocessing": {"kind": "vector", "features": 2, "mean": [0.0, 0.0], "scale": [1.0, 1.0]},
                        "input": {"shape": [2]}})
    with pytest.raises(UserError, match=r"beyond float32's range.*indices \[1\]"):
        vectors.prepare(np.array([[1.0, 2.0], [1e308, 0.0]]))
    assert vectors.prepare(np.array([[1.0, 2.0]])).dtype == np.float32
    bundle = catalog.detector_dir("dense_ae", normal_class=0)
    det = Detector.load(bundle)
    monkeypatch.setattr(Detector, "score_prepared", lambda self, x: np.full(len(x), np.nan))
    assert det.predict(np.zeros((2, 28, 28, 1), np.float32)).tolist() == [1, 1]
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28, 1), np.float32))
    assert main(["detect", str(bundle), str(tmp_path / "x.npy")]) == 2
    captured = capsys.readouterr()
    assert "no finite score" in captured.err and "normal" not in captured.out


def test_a_16_bit_png_reads_as_its_8_bit_twin(tmp_path):
    """Pillow opens a 16-bit grayscale PNG as I;16 and its own conversion clips at 255; the decoder scales it, so the
    same picture gives the same pixels (and so the same score) at either depth, for detection and training alike."""
    from PIL import Image

    from edge.inputs import decode_image

    a8 = (np.arange(28 * 28).reshape(28, 28) % 256).astype(np.uint8)
    Image.fromarray(a8, "L").save(tmp_path / "p8.png")
    Image.fromarray(a8.astype(np.uint16) * 257).save(tmp_path / "p16.png")
    assert Image.open(tmp_path / "p16.png").mode == "I;16"
    for mode in ("L", "RGB"):
        assert np.array_equal(decode_image(tmp_path / "p16.png", mode), decode_image(tmp_path / "p8.png", mode)), mode


def _resealed(bundle: Path, out: Path, edit) -> Path:
    """A copy of ``bundle`` with ``edit`` applied to detector.json and its integrity hash recomputed (what anyone
    who edits the file can do)."""
    import shutil

    from edge.bundle import spec_digest

    shutil.copytree(bundle, out)
    spec = json.loads((out / "detector.json").read_text())
    edit(spec)
    if "integrity" in spec:
        spec["integrity"]["spec_sha256"] = spec_digest(spec)
    (out / "detector.json").write_text(json.dumps(spec))
    return out


def _as_version_1(spec: dict) -> None:
    """The previous release's format (no integrity section), with a threshold that calls everything normal."""
    spec.update(format_version=1, output={k: v for k, v in spec.pop("outputs")[0].items() if k != "name"})
    spec["preprocessing"].pop("kind")
    spec["score"].pop("params")
    spec.pop("integrity")
    spec["threshold"]["value"] = 1e9


def test_a_device_with_a_public_key_loads_only_bundles_signed_with_it(tmp_path, monkeypatch, capsys):
    """Re-hashing an edited detector.json passes the corruption check; an Ed25519 signature does not follow, nor does
    a downgrade to format 1 (no integrity section), nor a bundle signed with another key."""
    from edge import Detector
    from zoo import catalog

    assert main(["keygen", str(tmp_path / "owner.key")]) == 0
    assert main(["keygen", str(tmp_path / "other.key")]) == 0
    assert main(["keygen", str(tmp_path / "owner.key")]) == 2  # a key is never replaced
    assert "already exists" in capsys.readouterr().err
    assert oct((tmp_path / "owner.key").stat().st_mode & 0o777) == "0o600"
    public = tmp_path / "owner.key.pub"
    plain = catalog.detector_dir("dense_ae", normal_class=0)
    Detector.load(plain).save(tmp_path / "signed", sign_key=tmp_path / "owner.key")
    Detector.load(plain).save(tmp_path / "theirs", sign_key=tmp_path / "other.key")
    assert Detector.load(tmp_path / "signed", public_key=public).threshold_ == Detector.load(plain).threshold_
    assert b"PRIVATE" not in (tmp_path / "signed" / "detector.json").read_bytes()
    lenient = _resealed(tmp_path / "signed", tmp_path / "lenient", lambda s: s["threshold"].update(value=1e9))
    v1 = _resealed(tmp_path / "signed", tmp_path / "v1", _as_version_1)
    for bundle, why in [(plain, "it is not signed"), (lenient, "changed after signing"), (v1, "it is not signed"),
                        (tmp_path / "theirs", "it was signed with key")]:
        with pytest.raises(UserError, match=why):
            Detector.load(bundle, public_key=public)
    assert Detector.load(lenient).threshold_ == 1e9  # without a key only corruption is detected, as documented
    monkeypatch.setenv("AEZOO_PUBLIC_KEY", str(public))  # the device's policy, for every load
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28, 1), np.float32))
    assert main(["detect", str(lenient), str(tmp_path / "x.npy")]) == 2
    assert "changed after signing" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "signed"), str(tmp_path / "x.npy")]) == 0
    with pytest.raises(UserError, match="not a PEM public key"):
        Detector.load(tmp_path / "signed", public_key=tmp_path / "x.npy")


@pytest.mark.parametrize("edit, match", [
    (lambda s: s["score"].update(higher_is_anomalous=False), "higher_is_anomalous"),
    (lambda s: s["model"].update(bytes=s["model"]["bytes"] + 1), "expected"),
    (lambda s: s["input"].update(scale=s["input"]["scale"] * 2), "do not belong together"),
    (lambda s: s["outputs"][0].update(zero_point=s["outputs"][0]["zero_point"] + 1), "do not belong together"),
])
def test_a_resealed_spec_that_contradicts_its_model_is_refused(tmp_path, edit, match):
    from edge import Detector
    from zoo import catalog

    with pytest.raises(UserError, match=match):
        Detector.load(_resealed(catalog.detector_dir("dense_ae", normal_class=0), tmp_path / "b", edit))


@pytest.mark.parametrize("exc, code, words", [
    (OSError(28, "No space left on device", "/data/run/model.keras"), 2, ["No space left", "/data/run/model.keras", "free some space"]),
    (OSError(27, "File too large", "/data/b/model.tflite"), 2, ["File too large", "ulimit -f"]),
    (OSError(30, "Read-only file system", "/ro/out"), 2, ["Read-only", "choose another folder"]),
    (OSError("Unable to synchronously create file (unable to open file: name = 'x.keras', errno = 28, error message = "
             "'No space left on device')"), 2, ["No space left", "free some space"]),  # h5py's form
    (OSError(104, "Connection reset by peer"), 1, ["internal error"]),  # not the user's doing: a bug report
])
def test_os_errors_a_user_causes_are_one_line_refusals(monkeypatch, capsys, exc, code, words):
    import argparse

    import edge.cli

    def fails(args):
        raise exc

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=fails, command="export")  # a command whose write the OS refused
    assert edge.cli.run(parser, []) == code
    err = capsys.readouterr().err
    assert all(w in err for w in words) and "Traceback" not in err, err


def test_images_and_arrays_that_claim_too_much_are_refused_before_decoding(tmp_path):
    """A PNG declaring 30000 x 30000 pixels (Pillow's bomb guard) or 7000 x 7000 (above the documented limit), and a
    .npy whose header claims 10^12 elements, are refused from their headers: nothing is allocated."""
    import struct
    import zlib

    from PIL import Image

    from edge.inputs import MAX_IMAGE_PIXELS, decode_image, load_input_file
    from zoo import catalog
    from edge.bundle import read_bundle

    def declaring(w: int, h: int) -> Path:
        Image.new("L", (10, 10)).save(tmp_path / "small.png")
        b = bytearray((tmp_path / "small.png").read_bytes())
        b[16:24] = struct.pack(">II", w, h)
        b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
        (tmp_path / f"{w}.png").write_bytes(bytes(b))
        return tmp_path / f"{w}.png"

    for w, words in [(30000, "decompression bomb"), (7000, f"more than the {MAX_IMAGE_PIXELS:,}")]:
        with pytest.raises(UserError, match=words):
            decode_image(declaring(w, w), "L")
    with open(tmp_path / "liar.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)})
        f.write(b"\0" * 16)
    spec = read_bundle(catalog.detector_dir("dense_ae", normal_class=0))[1]
    with pytest.raises(UserError, match="truncated or its header is wrong"):
        load_input_file(tmp_path / "liar.npy", spec)


def test_a_seeded_sweep_of_user_inputs_finds_no_crash_no_wrong_answer_and_no_changed_file(tmp_path):
    """training.fuzz: generated image files, arrays, vector CSVs, recordings, edited bundles (hash recomputed or not),
    edited zoo manifests and arguments, each in a sandbox beside the user's files: exit 0 with the right answer (and,
    for a CSV, a statement of how its first row was read) or exit 2 with a message.
    (`aezoo bench fuzz --cases 3000` is the long run, in BENCHMARKS.md.)"""
    from training.fuzz import sweep

    for name in ("case/mine.txt", "vector/mine.txt", "sandbox/case/mine.txt"):  # where earlier versions kept scratch
        (tmp_path / name).parent.mkdir(parents=True)
        (tmp_path / name).write_text("the user's")
    r = sweep(150, tmp_path, main, seed=20261201)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "case/mine.txt", "sandbox/case/mine.txt", "vector/mine.txt"]
    assert set(r["per_surface"]) == {"image file", "array", "vector file", "recording", "bundle", "manifest", "arguments"}
    assert all(c["exit 0"] > 0 and c["exit 2"] > 0 for c in r["per_surface"].values()), r["per_surface"]
    assert r["problems"] == []


def test_the_demo_never_deletes_a_users_file_in_its_previous_run(tmp_path):
    """`aezoo demo` replaces its own previous run folder, but not one the user has put a file into."""
    from training.cli.demo import _build_entry
    from training.pipeline import EntrySettings

    run = tmp_path / "run"
    (run / "plots").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "my_notes.md").write_text("mine")
    with pytest.raises(UserError, match="also my_notes.md, which the demo did not write: nothing was deleted"):
        _build_entry(None, tmp_path, EntrySettings())
    assert (run / "my_notes.md").read_text() == "mine" and (run / "config.json").is_file()


def test_a_version_2_spec_relabelled_as_version_1_is_refused(tmp_path, capsys):
    """Writing format_version 1 into a later spec would skip its integrity check: it is not the version-1 shape."""
    from edge import Detector
    from zoo import catalog

    bundle = _resealed(catalog.detector_dir("dense_ae", normal_class=0), tmp_path / "b",
                       lambda s: s.update(format_version=1, threshold={"value": 1e9, "method": "percentile"}))
    with pytest.raises(UserError, match="this is a later spec with format_version 1 written into it"):
        Detector.load(bundle)
    v1 = _resealed(catalog.detector_dir("dense_ae", normal_class=0), tmp_path / "v1", _as_version_1)
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28, 1), np.float32))
    assert main(["detect", str(v1), str(tmp_path / "x.npy")]) == 0
    err = capsys.readouterr().err
    assert "version-1 bundle" in err and "unverified" in err


def test_a_csvs_first_row_is_read_by_one_rule_and_the_commands_say_which(tmp_path, capsys):
    """The first row is a header when any cell is not a number (vectors and recordings alike); `aezoo data info` and
    `aezoo detect` state what they took, so a header made of numbers cannot silently become a data row."""
    from edge.inputs import describe_csv, read_csv, read_recording

    (tmp_path / "named.csv").write_text("\ufeffa,b,label\n1,2,0\n3,4,1\n")
    (tmp_path / "bare.csv").write_text("1,2\n3,4\n")
    (tmp_path / "numeric_header.csv").write_text("10,20\n1,2\n")
    assert read_csv(tmp_path / "named.csv", label_column="label")[0].tolist() == [[1, 2], [3, 4]]
    assert read_csv(tmp_path / "bare.csv")[0].shape == (2, 2)
    assert read_recording(tmp_path / "named.csv").channels == ["a", "b", "label"]
    assert describe_csv(tmp_path / "named.csv").endswith("line 1 is the header (a, b, label); 2 data rows")
    assert describe_csv(tmp_path / "numeric_header.csv").endswith("no header (every cell of line 1 is a number): all 2 rows are data")
    assert main(["data", "info", str(tmp_path / "named.csv")]) == 0
    assert "read as:   " + str(tmp_path / "named.csv") + ": line 1 is the header" in capsys.readouterr().out
