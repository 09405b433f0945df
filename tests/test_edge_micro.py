"""C-array export for TFLite Micro: the C compiles; the default (nap) detector runs under TFLite Micro and its verdicts agree."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # trains, compresses or converts models: the full suite runs it

from edge.c_array import to_c_array
from edge.micro import check_micro
from zoo.errors import UserError


@pytest.fixture(scope="module")
def c_bundle(tiny_run, small_split, tmp_path_factory):
    """The c-array export of the tiny conv_ae run: the default detector, nap score."""
    pytest.importorskip("tflite_micro")
    from training import runs
    from training.convert import export_detector

    run, result = tiny_run
    prov = runs.provenance(result.config.to_dict(), run=run.name, class_names=list(small_split.class_names))
    return export_detector(result.detector, tmp_path_factory.mktemp("c") / "micro", x_train=small_split.x_train,
                           x_val=small_split.x_val, class_names=list(small_split.class_names), provenance=prov,
                           preprocessing=small_split.preprocessing, fmt="c-array", n_representative=100)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_c_array_compiles(c_bundle, tmp_path):
    src, hdr = c_bundle / "aezoo_model.c", c_bundle / "aezoo_model.h"
    data = (c_bundle / "model.tflite").read_bytes()
    assert f"const unsigned int aezoo_model_len = {len(data)}u;" in src.read_text()
    assert "aligned(16)" in src.read_text() and "AEZOO_MODEL_THRESHOLD" in hdr.read_text()
    assert "AEZOO_MODEL_WHITENED_OUTPUT_INDEX" in hdr.read_text() and "Score 'nap'" in hdr.read_text()
    for std in ("c99", "c11"):
        proc = subprocess.run(["gcc", f"-std={std}", "-c", "-Wall", "-Wextra", "-Werror", str(src), "-o", str(tmp_path / "m.o")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    # The array holds exactly the model's bytes.
    main = tmp_path / "main.c"
    main.write_text('#include <stdio.h>\n#include "aezoo_model.h"\nint main(void) {\n'
                    '  unsigned long s = 0; for (unsigned i = 0; i < aezoo_model_len; ++i) s = s * 31u + aezoo_model[i];\n'
                    '  printf("%u %lu %d\\n", aezoo_model_len, s, (int)((unsigned long)aezoo_model % 16u)); return 0; }\n')
    exe = tmp_path / "main"
    proc = subprocess.run(["gcc", "-Wall", "-Werror", f"-I{c_bundle}", str(main), str(src), "-o", str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    n, digest, misalign = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    expect = 0
    for b in data:
        expect = (expect * 31 + b) % (1 << 64)
    assert (int(n), int(digest), int(misalign)) == (len(data), expect, 0)


def test_runs_under_tflite_micro_with_the_bundles_verdicts(c_bundle, small_split):
    from edge import Detector

    # The default detector (conv_ae of the default size, nap) fits a microcontroller's 64 KiB of flash.
    assert (c_bundle / "model.tflite").stat().st_size <= 64 * 1024
    report = json.loads((c_bundle / "micro.json").read_text())
    assert report["ok"] and report["unsupported_ops"] == []
    assert report["arena_bytes"] > 0 and report["arena_verified"]
    assert report["max_abs_diff_vs_litert"] is not None and report["images_compared"] == 64
    spec = json.loads((c_bundle / "detector.json").read_text())
    # Kernels may differ by rounding steps; the scores stay close and every decision agrees.
    assert report["verdicts_agree"] == 64 and report["max_score_diff_vs_litert"] < 0.05 * spec["threshold"]["value"]
    micro_vs_ref = report["agreement"]["pairs"]["tflite_micro vs litert_reference"]
    assert micro_vs_ref["verdicts_agree"] == 1.0 and report["agreement"]["inputs"] == 64
    assert micro_vs_ref["score_diff_max"] == pytest.approx(report["max_score_diff_vs_litert"] / spec["threshold"]["value"])
    assert spec["model"]["batch"] == 1 and spec["model"]["kernels"] == "reference"
    assert spec["micro"]["arena_bytes"] == report["arena_bytes"] and spec["score"]["kind"] == "nap"
    # The bundle's own Detector runs the reference kernels its threshold was calibrated on.
    det = Detector.load(c_bundle)
    assert det.threshold_ == pytest.approx(np.percentile(det.score(small_split.x_val), 99.0), rel=1e-9)


def test_a_recalibrated_microcontroller_bundle_carries_its_new_threshold_into_the_header(c_bundle, small_split, tmp_path):
    from edge import Detector

    det = Detector.load(c_bundle)
    det.calibrate(small_split.x_val[:100], percentile=98.0)
    det.save(tmp_path / "new")
    header = (tmp_path / "new" / "aezoo_model.h").read_text()
    assert f"#define AEZOO_MODEL_THRESHOLD {det.threshold_:.9g}\n" in header
    assert (tmp_path / "new" / "aezoo_model.c").read_bytes() == (c_bundle / "aezoo_model.c").read_bytes()
    assert Detector.load(tmp_path / "new").threshold_ == det.threshold_


def test_micro_failures_are_reports_not_crashes(c_bundle, monkeypatch):
    import edge.micro
    from edge.bundle import read_bundle

    data, spec = read_bundle(c_bundle)
    x = np.zeros((1, 28, 28, 1), np.float32)
    with pytest.raises(UserError, match="expected images shaped"):
        check_micro(data, spec, np.zeros((1, 32, 32, 1), np.float32))
    # What TFLite Micro prints when its op resolver lacks a kernel, then dies.
    monkeypatch.setattr(edge.micro, "_CHILD", "import sys; print(\"Didn't find op for builtin opcode 'RFFT2D'\"); sys.exit(1)")
    report = check_micro(data, spec, x)
    assert not report.ok and report.unsupported_ops == ["RFFT2D"] and report.arena_bytes is None


def test_c_array_rejects_bad_names():
    with pytest.raises(UserError, match="C identifier"):
        to_c_array(b"\x00", name="1bad-name")
