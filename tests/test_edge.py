"""Conversion (training.convert), the detector bundle (edge.bundle), the LiteRT runtime (edge.Detector) and `aezoo detect`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import export_model

from edge import Detector
from edge.bundle import MODEL_FILE, SPEC_FILE, read_bundle, sha256_bytes, spec_digest
from zoo.errors import UserError

REPO = Path(__file__).resolve().parents[1]
NORMAL_CLASS = 1  # trouser: a class a 2-epoch model already separates well


@pytest.fixture(scope="module")
def data(fashion_mnist_ready):
    """(x_train, x_val, x_test, y_test, class_names) of the real class-1 split (a subset of the test images)."""
    from training.data import one_class_split

    s = one_class_split("fashion_mnist", NORMAL_CLASS)
    return s.x_train[:3000], s.x_val, s.x_test[:3000], s.y_test[:3000], list(s.class_names)


@pytest.fixture(scope="module")
def trained(data):
    """A conv_ae trained for 2 epochs on the normal class."""
    import zoo
    from zoo.keras import keras

    keras.utils.set_random_seed(0)
    model = zoo.build("conv_ae")
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    model.fit(data[0], data[0], epochs=2, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def bundle(trained, data, tmp_path_factory):
    return export_model(trained, tmp_path_factory.mktemp("b") / "int8", x_train=data[0], x_val=data[1], names=data[4])


@pytest.fixture(scope="module")
def detector(bundle):
    return Detector.load(bundle)


def _copy_bundle(bundle: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in bundle.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _edit_spec(bundle: Path, dst: Path, edit, *, reseal: bool = False) -> Path:
    """A copy of ``bundle`` whose detector.json was changed by ``edit(spec)`` (re-sealed when asked)."""
    _copy_bundle(bundle, dst)
    spec = json.loads((dst / SPEC_FILE).read_text())
    edit(spec)
    if reseal:
        spec["integrity"]["spec_sha256"] = spec_digest(spec)
    (dst / SPEC_FILE).write_text(json.dumps(spec))
    return dst


# -- conversion -----------------------------------------------------------------------------------------------


@pytest.mark.slow
# One per graph family (conv, dense, variational), the float-input modes; tests/test_zoo.py converts every variant
# to int8.
@pytest.mark.parametrize("name", ["conv_ae", "dense_ae", "conv_vae"])
def test_every_variant_converts_at_every_quantization(name):
    import zoo
    from training.convert import run_tflite, to_tflite

    model = zoo.build(name)
    x = np.random.default_rng(0).random((40, *model.input_shape[1:]), dtype=np.float32)
    expected = model(x[:3], training=False).numpy()
    for quant in ("float32", "float16", "dynamic"):  # int8: tests/test_zoo.py, every variant (not twice)
        out = run_tflite(to_tflite(model, quant), x[:3])[0]
        # Deterministic inference path (VAE: mean): float32 TFLite equals Keras with training=False.
        tol = {"float32": 1e-4, "float16": 0.02, "dynamic": 0.05}[quant]
        assert out.shape == expected.shape
        assert np.max(np.abs(out - expected)) < tol, f"{name} {quant}: max diff {np.max(np.abs(out - expected))}"


def test_to_tflite_rejects_bad_arguments():
    import zoo
    from training.convert import to_tflite

    model = zoo.build("dense_ae")
    with pytest.raises(UserError, match="quant must be one of"):
        to_tflite(model, "int4")
    with pytest.raises(UserError, match="representative"):
        to_tflite(model, "int8")
    with pytest.raises(UserError, match="representative must be"):
        to_tflite(model, "int8", np.zeros((4, 32, 32, 3), np.float32))


# -- the bundle and the detector ------------------------------------------------------------------------------


def test_bundle_records_what_a_device_needs(bundle, data):
    x_val, names = data[1], data[4]
    raw, spec = read_bundle(bundle)
    assert spec["format_version"] == 2 and spec["integrity"]["spec_sha256"] == spec_digest(spec)
    assert spec["model"]["sha256"] == sha256_bytes(raw) and spec["model"]["bytes"] == len(raw)
    assert spec["input"]["dtype"] == "int8" and [o["name"] for o in spec["outputs"]] == ["reconstruction"]
    assert spec["preprocessing"] == {"kind": "image", "layout": "NHWC", "height": 28, "width": 28, "channels": 1,
                                     "color_mode": "L", "pixel_range": [0.0, 1.0], "uint8_divisor": 255.0, "resize": "none"}
    assert spec["class_names"] == names and spec["score"]["kind"] == "mse"
    # The threshold is the 99th percentile of the EXPORTED model's scores of the normal validation images.
    assert spec["threshold"]["value"] == pytest.approx(np.percentile(Detector.load(bundle).score(x_val), 99.0), rel=1e-9)
    assert spec["threshold"]["n_images"] == len(x_val) and spec["threshold"]["method"] == "percentile"
    assert not any(p.name.startswith(".") for p in bundle.parent.iterdir()), "atomic_dir left a temporary"


def test_the_bundle_records_runtime_agreement_that_a_fresh_measurement_reproduces(bundle, data, capsys):
    from edge import agreement
    from edge.cli import main as runtime_main

    raw, spec = read_bundle(bundle)
    recorded = spec["provenance"]["agreement"]
    assert recorded["on"] == "the normal validation inputs" and recorded["inputs"] == len(data[1])
    assert set(recorded["pairs"]) == {"litert_default vs litert_reference", "litert_default vs keras",
                                      "litert_reference vs keras"}
    kernels = recorded["pairs"]["litert_default vs litert_reference"]
    assert 0.99 <= kernels["verdicts_agree"] <= 1.0 and 0 <= kernels["score_diff_p99"] <= kernels["score_diff_max"]
    scores = agreement.kernel_scores(raw, spec, data[1])
    t = spec["threshold"]["value"]
    fresh = agreement.compare(scores, {k: t for k in scores})["pairs"]["litert_default vs litert_reference"]
    assert fresh == kernels  # the same kernels, the same inputs: the same figures, exactly
    assert fresh["disagree"] == int(np.sum((scores["litert_default"] > t) != (scores["litert_reference"] > t)))
    np.save(data_file := Path(bundle).parent / "val.npy", data[1])
    assert runtime_main(["agreement", str(bundle), str(data_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pairs"]["litert_default vs litert_reference"] == kernels and report["recorded"] == recorded


@pytest.mark.slow
def test_a_16x8_export_gives_the_same_verdict_on_both_kernel_sets(trained, data, tmp_path):
    """16-bit activations: LiteRT runs them on its reference kernels whatever it is asked, so the board and the
    microcontroller-like kernels compute the same numbers; the detector still ranks like the float model."""
    from sklearn.metrics import roc_auc_score

    from edge import agreement
    from edge.scoring import score_reconstruction

    bundle = export_model(trained, tmp_path / "b16", quant="int16x8", x_train=data[0], x_val=data[1], names=data[4])
    raw, spec = read_bundle(bundle)
    assert spec["model"]["quant"] == "int16x8" and spec["input"]["dtype"] == "int16"
    assert all(o["dtype"] == "int16" for o in spec["outputs"])
    kernels = spec["provenance"]["agreement"]["pairs"]["litert_default vs litert_reference"]
    assert kernels["verdicts_agree"] == 1.0 and kernels["score_diff_max"] == 0.0
    x_test, y_test = data[2], data[3]
    scores = agreement.kernel_scores(raw, spec, x_test[:500])
    assert scores["litert_default"].tolist() == scores["litert_reference"].tolist()
    float_auroc = roc_auc_score(y_test[:500], score_reconstruction(x_test[:500], trained.predict(x_test[:500], verbose=0)))
    assert roc_auc_score(y_test[:500], scores["litert_default"]) == pytest.approx(float_auroc, abs=0.01)


def test_detector_interface(detector, data):
    from edge.scoring import score_reconstruction

    x_val, x = data[1], data[2][:20]
    s = detector.score(x)
    assert s.shape == (20,) and s.dtype == np.float64
    np.testing.assert_array_equal(detector.decision_function(x), s)
    np.testing.assert_array_equal(detector.predict(x), (s > detector.threshold_).astype(int))
    np.testing.assert_allclose(s, score_reconstruction(x, detector.reconstruct(x).astype(np.float64)), rtol=1e-6)
    # A batch gives exactly the per-image scores, whatever the order of batch sizes.
    singles = np.array([detector.score(x[i])[0] for i in range(5)])
    np.testing.assert_array_equal(detector.score(x[:5]), singles)
    # uint8 0..255 is scaled by 1/255; (N, H, W) is accepted for one channel.
    u8 = np.round(x[:3] * 255).astype(np.uint8)
    np.testing.assert_allclose(detector.score(u8), detector.score(u8.astype(np.float32) / 255), rtol=1e-6)
    np.testing.assert_array_equal(detector.score(x[:3, ..., 0]), detector.score(x[:3]))
    assert detector.score(np.empty((0, 28, 28, 1), np.float32)).shape == (0,)
    assert np.mean(detector.predict(x_val)) <= 0.02


def test_int8_ranks_like_the_float_model(detector, trained, data):
    from sklearn.metrics import roc_auc_score

    from edge.scoring import score_reconstruction

    x_test, y_test = data[2], data[3]
    auc_float = roc_auc_score(y_test, score_reconstruction(x_test, trained.predict(x_test, batch_size=500, verbose=0)))
    auc_int8 = roc_auc_score(y_test, detector.score(x_test))
    assert auc_float > 0.8
    assert abs(auc_int8 - auc_float) <= 0.005, (auc_float, auc_int8)


def test_latency_measurement_reports_both_timings(detector, data):
    from edge.latency import batch1_latency, throughput

    r = batch1_latency(detector, data[2][0], iterations=200, warmup=20)
    assert r["detector"]["n"] == 200 and r["invoke"]["n"] == 200 and r["batch"] == 1 and r["threads"] == 1
    # The bare invoke is part of a Detector.score call, so it cannot take longer.
    assert 0 < r["invoke"]["median"] < r["detector"]["median"]
    assert r["python_us"] == pytest.approx(r["detector"]["median"] - r["invoke"]["median"])
    assert throughput(detector.score, data[2][:256], repeats=3) > 0


@pytest.mark.slow
def test_fixed_batch_models_run_in_chunks(trained, data, tmp_path):
    """A batch-1 (TFLite Micro) model scores a batch of 7 one image at a time, as the dynamic model does."""
    pytest.importorskip("tflite_micro")
    fixed = Detector.load(export_model(trained, tmp_path / "c", x_train=data[0], x_val=data[1], names=data[4], fmt="c-array"))
    assert fixed._chunk == 1 and fixed.spec["model"]["batch"] == 1
    x = data[2][:7]
    np.testing.assert_array_equal(fixed.score(x), np.concatenate([fixed.score(x[i:i + 1]) for i in range(7)]))
    assert fixed.reconstruct(x).shape == (7, 28, 28, 1)


@pytest.mark.slow
def test_other_quantizations_load_and_score(trained, data, tmp_path):
    """Each float-input export scores like the Keras model it came from (its own mse, computed apart)."""
    from edge.scoring import score_reconstruction

    x = data[2][:50]
    keras_scores = score_reconstruction(x, trained.predict(x, verbose=0))
    for quant, close in (("float32", 1e-4), ("float16", 0.02), ("dynamic", 0.05)):
        det = Detector.load(export_model(trained, tmp_path / quant, quant=quant, x_train=data[0], x_val=data[1], names=data[4]))
        assert det.spec["input"]["dtype"] == "float32" and det.spec["input"]["scale"] is None
        s = det.score(x)
        assert np.corrcoef(keras_scores, s)[0, 1] > 0.99, quant
        assert np.median(np.abs(s - keras_scores) / keras_scores) < close, quant


# -- the spec: every field checked, edits refused -------------------------------------------------------------


@pytest.mark.parametrize("edit, match", [
    (lambda s: s["threshold"].__setitem__("value", "0.5"), "threshold.value must be a finite number"),
    (lambda s: s["threshold"].__setitem__("value", None), "threshold.value"),
    (lambda s: s["threshold"].__setitem__("value", [1]), "threshold.value"),
    (lambda s: s["preprocessing"].__setitem__("height", "abc"), "preprocessing.height"),
    (lambda s: s["preprocessing"].__setitem__("uint8_divisor", 0), "uint8_divisor"),
    (lambda s: s.__setitem__("preprocessing", None), "preprocessing"),
    (lambda s: s["model"].__setitem__("file", 5), "model.file"),
    (lambda s: s["model"].__setitem__("file", "../model.tflite"), "model.file"),
    (lambda s: s["outputs"][0].__setitem__("scale", -1), "outputs"),
    (lambda s: s["score"].__setitem__("kind", "psnr"), "score.kind"),
    (lambda s: s.__setitem__("format_version", 7), "format_version 7"),
])
def test_malformed_fields_are_refused(bundle, tmp_path, edit, match):
    bad = _edit_spec(bundle, tmp_path / "bad", edit, reseal=True)
    with pytest.raises(UserError, match=match):
        Detector.load(bad)


def test_edited_threshold_is_refused_by_the_integrity_check(bundle, tmp_path):
    """A valid-looking edit (threshold -1 flags everything) changes the content: refused unless re-exported."""
    edited = _edit_spec(bundle, tmp_path / "edited", lambda s: s["threshold"].__setitem__("value", -1.0))
    with pytest.raises(UserError, match="modified after export"):
        Detector.load(edited)
    nan = tmp_path / "nan"
    _copy_bundle(bundle, nan)
    (nan / SPEC_FILE).write_text((nan / SPEC_FILE).read_text().replace('"value": ', '"value": NaN, "x": ', 1))
    with pytest.raises(UserError, match="not valid JSON"):
        Detector.load(nan)


def test_a_version_1_bundle_still_loads(bundle, detector, data, tmp_path):
    """The format of the previous release (one 'output', no preprocessing kind, no integrity) loads and scores the same."""
    v1 = _copy_bundle(bundle, tmp_path / "v1")
    spec = json.loads((v1 / SPEC_FILE).read_text())
    spec["format_version"] = 1
    spec["output"] = {k: v for k, v in spec.pop("outputs")[0].items() if k != "name"}
    spec["preprocessing"].pop("kind")
    spec["score"].pop("params")
    spec.pop("integrity")
    (v1 / SPEC_FILE).write_text(json.dumps(spec))
    old = Detector.load(v1)
    np.testing.assert_array_equal(old.score(data[2][:10]), detector.score(data[2][:10]))
    assert old.threshold_ == detector.threshold_


def test_the_saved_v1_zoo_format_loads(tmp_path):
    """A detector.json exactly as the previous release wrote it (format 1) is accepted by the schema."""
    from edge.bundle import check_spec

    spec = {"format": "aezoo-detector", "format_version": 1,
            "model": {"file": "model.tflite", "sha256": "a" * 64, "bytes": 100, "quant": "int8"},
            "input": {"shape": [28, 28, 1], "batch": "dynamic", "dtype": "int8", "scale": 0.0039, "zero_point": -128},
            "output": {"shape": [28, 28, 1], "batch": "dynamic", "dtype": "int8", "scale": 0.0039, "zero_point": -128},
            "preprocessing": {"layout": "NHWC", "height": 28, "width": 28, "channels": 1, "color_mode": "L",
                              "pixel_range": [0.0, 1.0], "uint8_divisor": 255.0, "resize": "none"},
            "score": {"kind": "mse"}, "threshold": {"value": 0.01, "method": "percentile"},
            "class_names": ["a"], "provenance": {}}
    upgraded = check_spec(spec)
    assert upgraded["outputs"][0]["name"] == "reconstruction" and upgraded["preprocessing"]["kind"] == "image"


# -- bad input: a clear UserError (CLI: exit 2, no traceback) --------------------------------------------------


def test_bad_arrays(detector, bundle):
    for bad, match in [
        (np.zeros((2, 32, 32, 1), np.float32), r"expected images shaped \(N, 28, 28, 1\)"),
        (np.zeros((2, 28, 28, 3), np.float32), "expected images with 1 channel"),
        (np.full((1, 28, 28, 1), np.nan, np.float32), "NaN"),
        (np.full((1, 28, 28, 1), 255.0, np.float32), r"expected float pixels in \[0, 1\]"),
        (np.zeros((1, 28, 28, 1), np.int64), "uint8"),
        (np.zeros(5), "expected images shaped"),
    ]:
        with pytest.raises(UserError, match=match):
            detector.score(bad)
    with pytest.raises(UserError, match="num_threads must be an integer in 1..64"):
        Detector.load(bundle, num_threads=40000)
    with pytest.raises(UserError, match="path of a detector bundle"):
        Detector.load(None)


def test_bad_bundles(bundle, tmp_path):
    spec = json.loads((bundle / SPEC_FILE).read_text())
    raw = (bundle / MODEL_FILE).read_bytes()
    missing = _copy_bundle(bundle, tmp_path / "missing")
    (missing / SPEC_FILE).unlink()
    with pytest.raises(UserError, match="detector.json is missing"):
        Detector.load(missing)
    with pytest.raises(UserError, match="does not exist"):
        Detector.load(tmp_path / "nowhere")
    truncated = _copy_bundle(bundle, tmp_path / "truncated")
    (truncated / MODEL_FILE).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(UserError, match="sha256 file hash does not match"):
        Detector.load(truncated)
    # Corrupted bytes whose sha256 was (wrongly) updated and the spec re-sealed: LiteRT must refuse, not crash.
    for name, bad in [("head", b"\x00" * 64 + raw[64:]), ("third", raw[: len(raw) // 3]), ("junk", b"not a model")]:
        edited = {**spec, "model": {**spec["model"], "sha256": sha256_bytes(bad), "bytes": len(bad)}}
        edited["integrity"] = {**spec["integrity"], "spec_sha256": spec_digest(edited)}
        corrupted = _copy_bundle(bundle, tmp_path / name)
        (corrupted / MODEL_FILE).write_bytes(bad)
        (corrupted / SPEC_FILE).write_text(json.dumps(edited))
        with pytest.raises(UserError, match="not a valid TFLite"):
            Detector.load(corrupted)


def _aezoo(*args: str, device: bool = False) -> subprocess.CompletedProcess:
    entry = "edge.cli" if device else "training.cli"
    return subprocess.run([sys.executable, "-m", entry, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          timeout=180)


def test_detect_cli_images_and_arrays(bundle, data, tmp_path, detector):
    from PIL import Image

    u8 = np.round(data[2][:2, ..., 0] * 255).astype(np.uint8)
    Image.fromarray(u8[0], "L").save(tmp_path / "a.png")
    Image.fromarray(np.stack([u8[1]] * 3, -1), "RGB").save(tmp_path / "b.bmp")  # RGB -> luma
    np.save(tmp_path / "d.npy", u8[1])
    proc = _aezoo("detect", bundle, tmp_path / "a.png", tmp_path / "b.bmp", tmp_path / "d.npy", "--json", device=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    want = detector.score(u8[:2])
    np.testing.assert_allclose([r["score"] for r in out["results"]], [want[0], want[1], want[1]], rtol=1e-9)
    assert out["threshold"] == detector.threshold_
    assert [r["anomaly"] for r in out["results"]] == [bool(s > detector.threshold_) for s in (want[0], want[1], want[1])]
    text = _aezoo("detect", bundle, tmp_path / "a.png")
    verdict = "ANOMALY" if want[0] > detector.threshold_ else "normal"
    assert text.returncode == 0 and f"mse={want[0]:.6g}  {verdict}" in text.stdout


def test_detect_cli_bad_inputs(bundle, tmp_path):
    from PIL import Image

    (tmp_path / "text.png").write_text("hello")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "big.png")
    np.save(tmp_path / "rgb.npy", np.zeros((28, 28, 3), np.float32))
    np.save(tmp_path / "nan.npy", np.full((28, 28, 1), np.nan, np.float32))
    np.save(tmp_path / "empty.npy", np.zeros((0, 28, 28, 1), np.float32))
    (tmp_path / "obj.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "adir").mkdir()
    cases = [
        ((bundle, tmp_path / "text.png"), "not a readable image"),
        ((bundle, tmp_path / "big.png"), "expected a 28x28 image"),
        ((bundle, tmp_path / "rgb.npy"), "1 channel"),
        ((bundle, tmp_path / "nan.npy"), "NaN"),
        ((bundle, tmp_path / "empty.npy"), "holds no inputs"),
        ((bundle, tmp_path / "obj.npy"), ".npy"),
        ((bundle, tmp_path / "absent.png"), "input file not found"),
        ((bundle, tmp_path / "adir"), "is a directory"),
        ((bundle, tmp_path / "big.png", "--threads", "40000"), "1..64"),
        ((tmp_path / "adir", tmp_path / "big.png"), "detector.json is missing"),
    ]
    for args, match in cases:
        proc = _aezoo("detect", *args, device=True)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert match in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.slow
def test_detect_into_a_closed_pipe_is_quiet(bundle, data, tmp_path):
    np.save(tmp_path / "x.npy", np.round(data[2][:300] * 255).astype(np.uint8))
    proc = subprocess.run(f"{sys.executable} -m edge.cli detect {bundle} {tmp_path / 'x.npy'} | head -1", shell=True,
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_runtime_scores_without_tensorflow(bundle, data, tmp_path):
    """edge.Detector and `aezoo detect` in a process that never imports TensorFlow."""
    from conftest import run_without_tensorflow

    np.save(tmp_path / "x.npy", data[2][:4])
    code = ("import sys, json, numpy as np, edge\n"
            "d = edge.Detector.load(sys.argv[1]); print(json.dumps(d.score(np.load(sys.argv[2])).tolist()))")
    scores = json.loads(run_without_tensorflow(code, str(bundle), str(tmp_path / "x.npy")))
    np.testing.assert_allclose(scores, Detector.load(bundle).score(data[2][:4]), rtol=1e-12)


# -- aezoo export from a run folder --------------------------------------------------------------------------


@pytest.mark.slow
def test_export_from_a_run_transfers_the_threshold_method(tiny_run, fashion_mnist_split, tmp_path):
    from training.cli import main

    run, result = tiny_run
    assert main(["export", str(run), "--out", str(tmp_path / "det"), "--representative", "200"]) == 0
    det = Detector.load(tmp_path / "det")
    assert det.score_kind == result.config.score == "nap" and det.spec["threshold"]["method"] == "percentile"
    assert det.spec["model"]["quant"] == "int16x8"  # --quant auto: the nap score's device mode
    assert det.spec["provenance"]["normal_class"] == 0 and det.spec["provenance"]["run"] == run.name
    # Recalibrated on the exported model's scores of the run's normal validation images (the full hold-out).
    s = det.score(fashion_mnist_split.x_val)
    assert det.threshold_ == pytest.approx(np.percentile(s, 99.0), rel=1e-9)
    assert main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2


@pytest.mark.slow
def test_export_never_destroys_what_is_at_out(tiny_run, on_small_split, tmp_path):
    from training.cli import main

    run, _ = tiny_run
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    assert main(["export", str(run), "--out", str(user)]) == 2
    assert (user / "notes.txt").read_text() == "keep me" and len(list(user.iterdir())) == 1
    afile = tmp_path / "file.txt"
    afile.write_text("keep")
    assert main(["export", str(run), "--out", str(afile)]) == 2 and afile.read_text() == "keep"
    assert main(["export", str(run), "--out", str(run / "inside")]) == 2
    quick = ["--quant", "float32"]  # what is at --out matters here, not the conversion
    assert main(["export", str(run), "--out", str(tmp_path / "b"), *quick]) == 0
    before = (tmp_path / "b" / SPEC_FILE).read_text()
    assert main(["export", str(run), "--out", str(tmp_path / "b"), *quick]) == 2  # needs --overwrite
    assert (tmp_path / "b" / SPEC_FILE).read_text() == before
    assert main(["export", str(run), "--out", str(tmp_path / "b"), *quick, "--overwrite"]) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporaries left behind"
    # --overwrite replaces a bundle, never a file the user keeps in it.
    (tmp_path / "b" / "NOTES.txt").write_text("mine")
    assert main(["export", str(run), "--out", str(tmp_path / "b"), *quick, "--overwrite"]) == 2
    assert (tmp_path / "b" / "NOTES.txt").read_text() == "mine" and (tmp_path / "b" / SPEC_FILE).is_file()


def test_overwrite_never_takes_a_users_files_with_the_bundle(tmp_path):
    """A bundle folder that also holds the user's notes and a subfolder is refused whole: every file stays; a
    user's own ``.NAME.old`` beside it is not mistaken for the leftover of an interrupted swap."""
    from edge.bundle import MODEL_FILE, read_bundle, write_bundle
    from zoo import catalog

    model, spec = read_bundle(catalog.detector_dir("dense_ae", normal_class=0))  # any real bundle
    out = tmp_path / "b"
    mine = tmp_path / ".b.old"  # the user's, with a name the old swap used
    mine.mkdir()
    (mine / "keep.txt").write_text("keep")
    with pytest.raises(UserError, match="is a folder with other files"):
        (tmp_path / "b").mkdir()
        (out / "x.txt").write_text("x")
        write_bundle(out, model, spec)
    (out / "x.txt").unlink()
    out.rmdir()
    write_bundle(out, model, spec)
    assert (out / MODEL_FILE).read_bytes() == model and (mine / "keep.txt").read_text() == "keep"
    (out / "NOTES.txt").write_text("notes")
    (out / "calib").mkdir()
    (out / "calib" / "a.npy").write_bytes(b"a")
    with pytest.raises(UserError, match=r"also NOTES.txt, calib/, which no export wrote.*nothing deleted"):
        write_bundle(out, model[:-1] + b"\0", spec, overwrite=True)
    assert (out / MODEL_FILE).read_bytes() == model and (out / "NOTES.txt").read_text() == "notes"
    assert (out / "calib" / "a.npy").read_bytes() == b"a" and (mine / "keep.txt").read_text() == "keep"
    (out / "NOTES.txt").unlink()
    shutil.rmtree(out / "calib")
    write_bundle(out, model[:-1] + b"\0", spec, overwrite=True)
    assert (out / MODEL_FILE).read_bytes() == model[:-1] + b"\0" and (mine / "keep.txt").read_text() == "keep"


def test_an_interrupted_swap_is_recovered(tmp_path):
    """A crash between the two renames left only the old content beside NAME: the next write puts it back first."""
    from zoo.files import recover_dir

    out = tmp_path / "bundle"
    old = tmp_path / ".bundle.aezoo-swap-old"
    old.mkdir()
    (old / SPEC_FILE).write_text("{}")
    (tmp_path / ".bundle.tmp-999999999-x").mkdir()  # a temporary of a process that is gone
    recover_dir(out)
    assert (out / SPEC_FILE).is_file() and not old.exists()
    assert not list(tmp_path.glob(".bundle.tmp-*"))


@pytest.mark.slow
def test_litert_quantizer_export_ranks_like_the_float_model(trained, data, tmp_path):
    """The second int8 path: the LiteRT Quantizer on the float .tflite, calibrated on normal training images."""
    pytest.importorskip("litert_quantizer")
    from sklearn.metrics import roc_auc_score

    from edge.scoring import score_reconstruction
    from training.convert import export_detector
    from training.detector import AutoencoderDetector

    x_test, y_test = data[2], data[3]
    det = AutoencoderDetector(network=trained, score="mse").calibrate(data[0], data[1])
    bundle = export_detector(det, tmp_path / "litert", x_train=data[0], x_val=data[1], class_names=data[4],
                             provenance={"seed": 0}, quantizer="litert", n_representative=300)
    d = Detector.load(bundle)
    assert d.spec["model"]["quantizer"] == "litert" and d.spec["input"]["dtype"] == "int8"
    auc_float = roc_auc_score(y_test, score_reconstruction(x_test, trained.predict(x_test, batch_size=500, verbose=0)))
    assert abs(roc_auc_score(y_test, d.score(x_test)) - auc_float) <= 0.005


@pytest.mark.parametrize("entry", ["conv_ae/fashion_mnist/class_0", "dense_ae/fashion_mnist/class_0",
                                   "vae/fashion_mnist/class_0", "conv1d_ae/kdd_tsad_135/class_0"])
def test_one_input_at_a_time_scores_exactly_as_the_batch(entry):
    """The batch-1 path (tensors written and read in place) gives the batch path's scores bit for bit."""
    from edge import Detector

    bundle = REPO / "saved_models" / entry / "detector"
    if not bundle.is_dir():
        pytest.skip(f"no {entry} bundle in saved_models/")
    det = Detector.load(bundle)
    rng = np.random.default_rng(0)
    if det.input.name == "image":
        x = rng.random((40, *det.input_shape), dtype=np.float32)
        x[0] = 0.0
        x[1] = 1.0
    else:
        x = det.input.to_device(rng.standard_normal((40, *det.input_shape)).astype(np.float32) * 3)
    batch = det.score(x)
    single = np.array([det.score(x[i]) for i in range(len(x))]).ravel()
    assert single.tolist() == batch.tolist()
    assert det.quantize(x[:1]).tolist() == det.quantize(x)[:1].tolist()


def test_the_one_pass_pixel_check_refuses_what_the_full_check_refuses():
    from edge import Detector

    bundle = REPO / "saved_models" / "conv_ae" / "fashion_mnist" / "class_0" / "detector"
    if not bundle.is_dir():
        pytest.skip("no conv_ae bundle in saved_models/")
    det = Detector.load(bundle)
    x = np.zeros((2, 28, 28, 1), np.float32)
    x[1, 3, 3, 0] = -0.0  # in [0, 1], though its bits are not: the full check accepts it
    assert det.score(x)[1] == det.score(np.zeros((1, 28, 28, 1), np.float32))[0]
    for bad in (np.nextafter(np.float32(1), np.float32(2)), np.float32(-1e-30), np.float32("nan"), np.float32("inf")):
        x[1, 3, 3, 0] = bad
        with pytest.raises(UserError, match="float pixels in \\[0, 1\\]|NaN"):
            det.score(x)


@pytest.mark.parametrize("given, kind, where, want", [
    (("auto", "nap"), {}, "", "int16x8"), (("auto", "mse"), {}, "", "int8"), (("auto", "elbo"), {}, "", "int8"),
    (("auto", "nap"), {"fmt": "c-array"}, "TFLite Micro builds", "int8"),
    (("auto", "nap"), {"quantizer": "litert"}, "the LiteRT Quantizer", "int8"),
    (("auto", "nap"), {"compression": {"config": {"method": "qat"}}}, "a QAT run", "int8"),
    (("auto", "nap"), {"compression": {"method": "post-training", "quant": "int16x8"}}, "", "int16x8"),
    (("int8", "nap"), {}, "", "int8"), (("float32", "nap"), {}, "", "float32"),
])
def test_auto_quantization_follows_the_score_kind(given, kind, where, want):
    """`--quant auto` gives a nap detector 16-bit activations (its whitening magnifies int8 rounding), except where
    int8 is what the target or the fine-tuning asks for; an explicit mode is kept."""
    from training.convert import device_quant

    assert device_quant(*given, **kind) == want, where


@pytest.mark.slow
@pytest.mark.parametrize("keras_version", [3])  # tf_keras: the module's `trained` fixture, test_int8_ranks_like_...
def test_your_own_keras_fit_exports_to_a_bundle_that_scores_like_keras(keras_version, data, tmp_path):
    """The README's plain-Keras story with Keras 3 (what `pip install keras` gives): build from the zoo, compile and
    fit it yourself, wrap and calibrate on normal data, ``training.export_detector``; the device scores rank like the Keras detector's.
    The pixel-error (mse) int8 bundle's scores are within 5% of Keras's mean score per input; the nap bundle
    (int16x8, its head refitted on the device model's own features) ranks the same inputs alike (Spearman >= 0.97,
    as measured on a one-epoch model: 0.978-0.987 over three runs); both bundles' AUROC within 0.01 of Keras's."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    import training
    import zoo
    from training import AutoencoderDetector
    from zoo.keras import version_of

    x_train, x_val, x_test, y_test = data[0][:1024], data[1][:256], data[2][:300], data[3][:300]
    model = zoo.build("conv_ae", keras_version=keras_version)
    assert version_of(model) == keras_version
    model.compile(optimizer="adam", loss="mse")
    model.fit(x_train, x_train, epochs=1, batch_size=64, verbose=0)
    for score in ("mse", "nap"):
        det = AutoencoderDetector(network=model, score=score).calibrate(x_train, x_val)
        bundle = training.export_detector(det, tmp_path / score, x_train, x_val)
        device = Detector.load(bundle)
        assert device.spec["provenance"]["keras"] == keras_version
        keras_scores, device_scores = det.decision_function(x_test), device.score(x_test)
        if score == "mse":
            assert device.spec["model"]["quant"] == "int8"
            assert np.abs(device_scores - keras_scores).max() < 0.05 * keras_scores.mean()
        else:
            assert device.spec["model"]["quant"] == "int16x8"
            assert spearmanr(keras_scores, device_scores)[0] >= 0.97
        auroc = [roc_auc_score(y_test, s) for s in (keras_scores, device_scores)]
        assert abs(auroc[0] - auroc[1]) <= 0.01, (score, auroc)
    with pytest.raises(UserError, match="give preprocessing="):
        vectors = zoo.build("dense_ae", input_shape=(8,), keras_version=keras_version)
        det = AutoencoderDetector(network=vectors, score="mse").calibrate(np.full((8, 8), 0.5, np.float32),
                                                                          np.full((4, 8), 0.5, np.float32))
        training.export_detector(det, tmp_path / "v", np.zeros((8, 8), np.float32), np.zeros((4, 8), np.float32))
