"""The runtime-only install: one wheel that gives edge.Detector and `aezoo detect`, never TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "saved_models" / "conv_ae" / "fashion_mnist" / "class_0" / "detector"
SERIES = REPO / "saved_models" / "conv1d_ae" / "kdd_tsad_135" / "class_0" / "detector"


@pytest.mark.slow
def test_runtime_wheel_installs_and_detects_without_tensorflow(tmp_path):
    if not BUNDLE.is_dir() or not SERIES.is_dir():
        pytest.skip("no pretrained conv_ae and conv1d_ae bundles in saved_models/")
    build = subprocess.run(["bash", str(REPO / "scripts" / "build_runtime.sh"), str(tmp_path / "dist")], capture_output=True,
                           text=True, timeout=600, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "HOME": str(Path.home())})
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("autoencoder_zoo_runtime-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], capture_output=True,
                         text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-2000:]
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"], capture_output=True,
                            text=True, check=True).stdout
    names = {p["name"].lower() for p in json.loads(listed)}
    assert {"ai-edge-litert", "numpy", "pillow", "autoencoder-zoo-runtime"} <= names
    assert not names & {"tensorflow", "tf-keras", "keras", "tensorflow-cpu"}, names
    np.save(tmp_path / "x.npy", np.zeros((3, 28, 28, 1), np.uint8))
    detect = subprocess.run([str(venv / "bin" / "aezoo"), "detect", str(BUNDLE), str(tmp_path / "x.npy"), "--json"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert detect.returncode == 0, detect.stderr
    assert len(json.loads(detect.stdout)["results"]) == 3 and detect.stderr == ""
    other = subprocess.run([str(venv / "bin" / "aezoo"), "train"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert other.returncode == 2 and "invalid choice: 'train'" in other.stderr
    _streams_a_recording(venv, tmp_path)
    np.save(tmp_path / "normal.npy", np.full((120, 28, 28, 1), 20, np.uint8))
    cal = subprocess.run([str(venv / "bin" / "aezoo"), "calibrate", str(BUNDLE), str(tmp_path / "normal.npy"), "--out",
                          str(tmp_path / "recalibrated"), "--json"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert cal.returncode == 0, cal.stderr
    assert json.loads(cal.stdout)["threshold"]["n_images"] == 120 and (tmp_path / "recalibrated" / "model.tflite").is_file()


def _streams_a_recording(venv: Path, tmp_path: Path) -> None:
    """`aezoo detect --stream` of the runtime wheel: one JSON line per hop of a recording's CSV, exit 0."""
    pre = json.loads((SERIES / "detector.json").read_text())["preprocessing"]
    t = np.arange(3 * pre["window"])
    x = np.stack([np.sin(2 * np.pi * t / 50 + c) for c in range(pre["channels"])], axis=1) * pre["scale"] + pre["mean"]
    lines = [",".join(["timestamp"] + pre["channel_names"])] + [",".join([str(i)] + [f"{v:.6f}" for v in row])
                                                                 for i, row in enumerate(x)]
    (tmp_path / "rec.csv").write_text("\n".join(lines) + "\n")
    stream = subprocess.run([str(venv / "bin" / "aezoo"), "detect", str(SERIES), "--stream", "-", "--json"],
                            input=(tmp_path / "rec.csv").read_text(), capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert stream.returncode == 0, stream.stderr
    rows = [json.loads(line) for line in stream.stdout.splitlines()]
    assert len(rows) == (len(x) - pre["window"]) // pre["hop"] + 1 and rows[0]["sample"] == pre["window"] - 1
    assert "Traceback" not in stream.stderr
