"""C-array export for TFLite Micro: the C compiles, the model runs under the TFLite Micro interpreter."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from edge.micro import check_micro, to_c_array
from zoo.errors import UserError


@pytest.fixture(scope="module")
def c_bundle(tmp_path_factory):
    """An int8 c-array export of a small untrained conv_ae (ops and shapes are what matter here)."""
    import zoo
    from zoo.keras import keras

    from edge.convert import export_model

    keras.utils.set_random_seed(0)
    model = zoo.build("conv_ae")
    rng = np.random.default_rng(0)
    x = rng.random((120, 28, 28, 1), dtype=np.float32)
    return export_model(
        model, tmp_path_factory.mktemp("c") / "micro", quant="int8", x_train=x[:100], x_val=x[100:],
        threshold={"score": "mse", "method": "percentile", "value": 0.1}, class_names=[str(i) for i in range(10)],
        provenance={"model": "conv_ae", "seed": 0}, fmt="c-array", n_representative=100,
    )


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_c_array_compiles(c_bundle, tmp_path):
    src, hdr = c_bundle / "aezoo_model.c", c_bundle / "aezoo_model.h"
    data = (c_bundle / "model.tflite").read_bytes()
    assert f"const unsigned int aezoo_model_len = {len(data)}u;" in src.read_text()
    assert "aligned(16)" in src.read_text() and "AEZOO_MODEL_THRESHOLD" in hdr.read_text()
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


def test_runs_under_tflite_micro(c_bundle):
    pytest.importorskip("tflite_micro")
    report = json.loads((c_bundle / "micro.json").read_text())
    print(report)
    assert report["ok"] and report["unsupported_ops"] == []
    assert report["arena_bytes"] > 0 and report["arena_verified"]
    assert report["max_abs_diff_vs_litert"] <= 1 and report["images_compared"] > 0
    assert report["max_abs_diff_vs_litert_xnnpack"] is not None
    spec = json.loads((c_bundle / "detector.json").read_text())
    assert spec["input"]["batch"] == 1 and spec["micro"]["arena_bytes"] == report["arena_bytes"]


def test_micro_failures_are_reports_not_crashes(c_bundle, monkeypatch):
    pytest.importorskip("tflite_micro")
    import edge.micro

    data = (c_bundle / "model.tflite").read_bytes()
    x = np.zeros((1, 28, 28, 1), np.int8)
    with pytest.raises(UserError, match="full-integer int8 model"):
        check_micro(data, np.zeros((1, 32, 32, 1), np.int8))
    # What TFLite Micro prints when its op resolver lacks a kernel, then dies.
    monkeypatch.setattr(edge.micro, "_CHILD", "import sys; print(\"Didn't find op for builtin opcode 'RFFT2D'\"); sys.exit(1)")
    report = check_micro(data, x)
    assert not report.ok and report.unsupported_ops == ["RFFT2D"] and report.arena_bytes is None


def test_c_array_rejects_bad_names():
    with pytest.raises(UserError, match="C identifier"):
        to_c_array(b"\x00", name="1bad-name")
