"""The streaming series detector: stream = batch, the ring buffer's reset, the --stream CLI on pipes, bad lines."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from zoo.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
WINDOW, HOP = 32, 8


def _signal(n: int, *, seed: int = 0, burst: tuple[int, int] | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = np.stack([np.sin(2 * np.pi * t / 16), 2 * np.cos(2 * np.pi * t / 16)], axis=1) + 0.05 * rng.standard_normal((n, 2))
    if burst:
        x[burst[0] : burst[1]] += 4.0 * rng.standard_normal((burst[1] - burst[0], 2))
    return (x * 10 + 3).astype(np.float32)  # raw units: the bundle's standardization matters


def _csv(path: Path, x: np.ndarray, *, header: str = "timestamp,a,b,is_anomaly") -> Path:
    cols = header.split(",")
    lines = [header] if header else []
    for i, row in enumerate(x):
        cells = {"timestamp": f"t{i}", "is_anomaly": "0", "a": f"{row[0]:.6f}", "b": f"{row[1]:.6f}"}
        lines.append(",".join(cells[c] for c in cols) if header else f"{row[0]:.6f},{row[1]:.6f}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def series_bundle(tmp_path_factory) -> Path:
    """An int8 conv1d_ae bundle (one short training) for recordings of two channels named a, b."""
    import training

    tmp = tmp_path_factory.mktemp("stream")
    train, test = _csv(tmp / "train.csv", _signal(1500)), _csv(tmp / "test.csv", _signal(600, seed=1, burst=(300, 340)))
    training.train(model="conv1d_ae", dataset=str(train), test_data=str(test), window=WINDOW, hop=HOP, epochs=1,
                   min_steps=30, out=tmp / "run", plots=False, verbose=0)
    from training.convert import export_run

    export_run(tmp / "run", tmp / "bundle")
    return tmp / "bundle"


@pytest.mark.parametrize("chunk", [1, 7, WINDOW, 10 * WINDOW])
def test_stream_scores_equal_the_batch_path_whatever_the_chunks(series_bundle, chunk):
    from edge import Detector, StreamDetector

    x = _signal(700, seed=2, burst=(400, 430))
    starts, scores = Detector.load(series_bundle).score_recording(x)
    stream = StreamDetector.load(series_bundle)
    out = [v for i in range(0, len(x), chunk) for v in stream.push(x[i : i + chunk])]
    assert [v.start for v in out] == starts.tolist()
    assert [v.end for v in out] == (starts + WINDOW - 1).tolist()
    np.testing.assert_array_equal([v.score for v in out], scores)
    assert [v.anomaly for v in out] == (scores > stream.threshold_).tolist()
    assert stream.samples_seen == len(x)


def test_first_verdict_after_one_window_and_reset_starts_over(series_bundle):
    from edge import StreamDetector

    x = _signal(200, seed=3)
    stream = StreamDetector.load(series_bundle)
    assert stream.first_verdict_after == WINDOW
    assert stream.push(x[: WINDOW - 1]) == []
    (first,) = stream.push(x[WINDOW - 1])  # one sample [channels] completes the first window
    assert (first.start, first.end) == (0, WINDOW - 1)
    assert stream.push(x[WINDOW : WINDOW + HOP - 1]) == [] and len(stream.push(x[WINDOW + HOP - 1])) == 1
    stream.push(x[100:])
    stream.reset()
    assert stream.samples_seen == 0 and stream.push(x[: WINDOW - 1]) == []
    again = stream.push(x[WINDOW - 1 : WINDOW])
    assert again[0] == first  # the same window, the same verdict: nothing of the earlier stream is left


@pytest.mark.parametrize("bad, match", [
    (np.zeros((5, 3)), r"one sample of 2 channel\(s\) \(a, b\) or a chunk shaped \(n, 2\)"),
    (np.array([1.0, np.nan]), "NaN or infinite"),
    (np.array(["1", "x"]), "numeric values"),
])
def test_bad_samples_are_refused_and_nothing_is_added(series_bundle, bad, match):
    from edge import StreamDetector

    stream = StreamDetector.load(series_bundle)
    with pytest.raises(UserError, match=match):
        stream.push(bad)
    assert stream.samples_seen == 0


def test_an_image_bundle_is_not_a_stream():
    from edge import StreamDetector

    image_bundle = ROOT / "saved_models" / "conv_ae" / "fashion_mnist" / "class_0" / "detector"
    if not image_bundle.is_dir():
        pytest.skip("no pretrained conv_ae bundle in saved_models/")
    with pytest.raises(UserError, match="needs a series bundle"):
        StreamDetector.load(image_bundle)


def _aezoo(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "edge.cli", "detect", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, **kw)


def test_stream_from_a_pipe_prints_verdicts_before_the_input_ends(series_bundle):
    x = _signal(WINDOW + 3 * HOP, seed=4)
    rows = _csv(Path(series_bundle) / ".." / "pipe.csv", x).read_text().splitlines()
    proc = _aezoo(str(series_bundle), "--stream", "-", "--json")
    proc.stdin.write("\n".join(rows[: WINDOW + 1]) + "\n")  # header + one window
    proc.stdin.flush()
    first = json.loads(proc.stdout.readline())  # arrives while the input is still open
    assert first["sample"] == WINDOW - 1 and first["window_start"] == 0 and first["timestamp"] == f"t{WINDOW - 1}"
    assert proc.poll() is None
    time.sleep(0.2)
    proc.stdin.write("\n".join(rows[WINDOW + 1 :]) + "\n")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert [json.loads(line)["sample"] for line in out.splitlines()] == [WINDOW - 1 + HOP * k for k in (1, 2, 3)]
    assert "Traceback" not in err and f"{len(x)} samples, 4 verdicts" in err


def test_ctrl_c_ends_a_stream_cleanly(series_bundle):
    proc = _aezoo(str(series_bundle), "--stream", "-")
    proc.stdin.write("a,b\n" + "1,2\n" * WINDOW)
    proc.stdin.flush()
    assert "sample" in proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err and f"{WINDOW} samples, 1 verdicts" in err


def test_bad_lines_stop_with_their_number_or_are_skipped(series_bundle, tmp_path, capsys):
    from edge.cli import main

    path = _csv(tmp_path / "bad.csv", _signal(WINDOW + 2))
    lines = path.read_text().splitlines()
    lines[5] = "t4,1.0,oops,0"
    lines[9] = "t8,nan,1.0,0"
    path.write_text("\n".join(lines) + "\n")
    assert main(["detect", str(series_bundle), "--stream", str(path)]) == 2
    err = capsys.readouterr().err
    assert "line 6, column 'b': expected a number. Received: 'oops'" in err and "Traceback" not in err
    assert main(["detect", str(series_bundle), "--stream", str(path), "--on-bad-line", "skip"]) == 0
    out, err = capsys.readouterr()
    assert "skipped line 6" in err and "skipped line 10, column 'a': expected a finite number" in err
    assert f"{WINDOW} samples, 1 verdicts" in err and len(out.splitlines()) == 1


@pytest.mark.parametrize("header, rows, match", [
    ("a,b,c", ["1,2,3"], r"header's channels are not the bundle's. Expected \['a', 'b'\]"),
    ("", ["1,2,3"], r"line 1: expected 2 value\(s\) \(a, b\). Received: 3; a timestamp or is_anomaly column needs a header"),
    ("", ["2026-01-01,1,2"], "expected 2 value"),
    ("a,timestamp,b", ["1,2"], r"line 2: expected 3 value\(s\) \(a, timestamp, b\). Received: 2"),
    ("a,b,timestamp", ["t0,1,2"], "line 2, column 'a': expected a number. Received: 't0'"),
])
def test_stream_columns_are_checked_against_the_bundle(series_bundle, tmp_path, capsys, header, rows, match):
    from edge.cli import main

    path = tmp_path / "s.csv"
    path.write_text("\n".join(([header] if header else []) + rows) + "\n")
    assert main(["detect", str(series_bundle), "--stream", str(path)]) == 2
    assert re.search(match, capsys.readouterr().err)


def test_header_option_names_the_columns_of_a_stream_that_starts_inside_a_file(series_bundle, tmp_path, capsys):
    from edge.cli import main

    lines = _csv(tmp_path / "full.csv", _signal(WINDOW + HOP, seed=7)).read_text().splitlines()
    (tmp_path / "tail.csv").write_text("\n".join(lines[5:]) + "\n")  # what `tail -f` shows: no header line
    argv = ["detect", str(series_bundle), "--stream", str(tmp_path / "tail.csv")]
    assert main(argv) == 2 and "needs a header line naming the columns" in capsys.readouterr().err
    assert main([*argv, "--header", "timestamp,a,b,is_anomaly"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].split()[:4] == ["sample", str(WINDOW - 1), "timestamp", f"t{WINDOW + 3}"]
    # The header line itself, when the stream does hold it, is not a bad line.
    (tmp_path / "with.csv").write_text("\n".join(lines) + "\n")
    assert main(["detect", str(series_bundle), "--stream", str(tmp_path / "with.csv"), "--header", "timestamp,a,b,is_anomaly"]) == 0
    assert main([*argv, "--header", "timestamp,x,b"]) == 2 and "--header: channels are not the bundle's" in capsys.readouterr().err


def test_stream_finds_named_columns_in_any_order(series_bundle, tmp_path, capsys):
    from edge import Detector
    from edge.cli import main

    x = _signal(WINDOW + HOP, seed=5)
    path = _csv(tmp_path / "reordered.csv", x, header="b,is_anomaly,a,timestamp")
    assert main(["detect", str(series_bundle), "--stream", str(path), "--json"]) == 0
    got = [json.loads(line)["score"] for line in capsys.readouterr().out.splitlines()]
    as_written = np.array([[float(f"{v:.6f}") for v in row] for row in x], np.float32)
    np.testing.assert_array_equal(got, Detector.load(series_bundle).score_recording(as_written)[1])
    assert main(["detect", str(series_bundle), "--stream", str(tmp_path / "missing.csv")]) == 2
    assert "stream file not found" in capsys.readouterr().err


@pytest.mark.slow
def test_the_c_stream_detector_compiles_runs_under_tflite_micro_and_agrees_with_litert(series_bundle, tmp_path):
    from edge.micro import check_stream_c
    from training.convert import export_run

    bundle = export_run(Path(series_bundle).parent / "run", tmp_path / "micro", fmt="c-array")
    assert {"aezoo_detect.c", "aezoo_detect.h", "aezoo_model.c", "aezoo_model.h"} <= {p.name for p in bundle.iterdir()}
    header = (bundle / "aezoo_detect.h").read_text()
    assert f"#define AEZOO_DETECT_WINDOW {WINDOW}" in header and f"#define AEZOO_DETECT_HOP {HOP}" in header
    report = check_stream_c(bundle, _signal(400, seed=6, burst=(250, 280)))
    assert report["verdicts"] == (400 - WINDOW) // HOP + 1
    assert report["inputs_equal"], report  # ring buffer, standardization and rounding are the host's, bit for bit
    assert report["agree"] == report["verdicts"], report  # the device's decisions are LiteRT's
    assert report["max_c_vs_numpy_on_micro_outputs"] < 1e-9, report  # the C score is edge.scoring's arithmetic
    assert report["arena_bytes"] + report["model_bytes"] < 64 * 1024 and report["state_bytes"] == 4 * WINDOW * 2
