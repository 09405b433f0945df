"""Series as an input kind: .ts sets and recordings, windows, the series split, units on both sides, metrics, CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edge.inputs import SeriesInput, aggregate, point_scores, read_recording, sliding_windows
from training import cli, data
from training.inputs.ts_format import read_ts
from training.metrics import events, recording_metrics
from zoo.errors import UserError


# ---------------------------------------------------------------- small generated data


def _recording(n: int, *, seed: int = 0, channels: int = 2, anomaly: tuple[int, int] | None = None) -> np.ndarray:
    """A periodic two-channel signal (period 40) with noise; ``anomaly`` replaces a range by a burst."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = np.stack([np.sin(2 * np.pi * t / 40 + c) * (1 + c) for c in range(channels)], axis=1)
    x += 0.05 * rng.standard_normal(x.shape)
    if anomaly:
        a, b = anomaly
        x[a:b] = 3.0 * rng.standard_normal((b - a, channels))
    return x.astype(np.float32)


def _write_csv(path: Path, x: np.ndarray, labels: np.ndarray | None = None, *, timestamp_first: bool = True) -> Path:
    cols = [f"sensor_{c}" for c in range(x.shape[1])]
    header = (["timestamp"] + cols) if timestamp_first else (cols + ["timestamp"])
    header += ["is_anomaly"] if labels is not None else []
    lines = [",".join(header)]
    for i, row in enumerate(x):
        values = [f"{v:.6f}" for v in row]
        cells = ([f"2026-01-01 00:00:{i:05d}"] + values) if timestamp_first else (values + [str(i)])
        lines.append(",".join(cells + ([str(int(labels[i]))] if labels is not None else [])))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def recording_files(tmp_path):
    train = _write_csv(tmp_path / "rec_TRAIN.csv", _recording(1200))
    labels = np.zeros(1500, np.int64)
    labels[900:960] = 1
    test = _write_csv(tmp_path / "rec_TEST.csv", _recording(1500, seed=1, anomaly=(900, 960)), labels, timestamp_first=False)
    return train, test


def _ts(path: Path, series: list[list[list[float]]], labels: list[str], classes: str = "a b", extra: str = "") -> Path:
    lines = ["# a comment", "@problemName Toy", "@timeStamps false", f"@univariate {'true' if len(series[0]) == 1 else 'false'}",
             f"@classLabel true {classes}", extra, "@data"]
    for s, label in zip(series, labels):
        lines.append(":".join(",".join("?" if v is None else str(v) for v in ch) for ch in s) + f":{label}")
    path.write_text("\n".join(line for line in lines if line) + "\n")
    return path


def _toy_set(tmp_path: Path, n_per_class: int = 12, length: int = 64) -> tuple[Path, Path]:
    """A two-class univariate set: class a = slow sine, class b = fast sine (varying phase)."""
    rng = np.random.default_rng(3)
    t = np.arange(length)

    def series(freq: float) -> list[list[float]]:
        return [list(np.round(np.sin(2 * np.pi * t / freq + rng.uniform(0, 6)) + 0.05 * rng.standard_normal(length), 4))]

    paths = []
    for split in ("TRAIN", "TEST"):
        items = [(series(32), "a") for _ in range(n_per_class)] + [(series(8), "b") for _ in range(n_per_class)]
        paths.append(_ts(tmp_path / f"Toy_{split}.ts", [s for s, _ in items], [c for _, c in items]))
    return paths[0], paths[1]


# ---------------------------------------------------------------- .ts parsing


def test_ts_univariate_multivariate_unequal_and_missing(tmp_path):
    uni = read_ts(_ts(tmp_path / "u.ts", [[[1, 2, 3, 4]], [[5, 6, 7]]], ["b", "a"]))
    assert [s.shape for s in uni.series] == [(4, 1), (3, 1)] and uni.labels.tolist() == [1, 0] and uni.class_names == ["a", "b"]
    multi = read_ts(_ts(tmp_path / "m.ts", [[[1, 2, 3], [4, None, 6]], [[1, 1], [2, 2]]], ["a", "b"]))
    assert multi.series[0].shape == (3, 2) and np.isnan(multi.series[0][1, 1]) and multi.series[1].shape == (2, 2)
    # Missing values are filled by linear interpolation within the series when a split is made.
    from training.inputs.series import _filled

    assert _filled(multi.series[0])[1, 1] == pytest.approx(5.0)


@pytest.mark.parametrize("body, match", [
    ("@problemName X\n@classLabel true a b\n", "no @data"),
    ("@problemName X\n@classLabel true a b\n1,2,3:a\n", "line 3: expected a header line"),
    ("@problemName X\n@classLabel true a b\n@data\n1,2,x:a\n", "line 4, channel 1: expected numbers"),
    ("@problemName X\n@classLabel true a b\n@data\n1,2,3:c\n", "line 4: class label 'c' is not one of"),
    ("@problemName X\n@classLabel maybe\n@data\n1,2,3\n", "line 2: expected '@classLabel true"),
    ("@problemName X\nnot a header\n@data\n1,2\n", "line 2: expected a header line"),
    ("@problemName X\n@timeStamps true\n@classLabel true a\n@data\n(1,2):a\n", "time-stamped"),
    ("@problemName X\n@classLabel true a\n@data\n1,2:3,4:a\n5,6:a\n", "different numbers of channels"),
])
def test_malformed_ts_is_refused_naming_the_line(tmp_path, body, match):
    path = tmp_path / "bad.ts"
    path.write_text(body)
    with pytest.raises(UserError, match=match):
        read_ts(path)


# ---------------------------------------------------------------- recordings


def test_recording_csv_finds_channels_timestamp_and_labels(recording_files):
    train, test = recording_files
    rec = read_recording(train)
    assert rec.values.shape == (1200, 2) and rec.labels is None and rec.channels == ["sensor_0", "sensor_1"] and rec.named
    rec = read_recording(test)  # timestamp last, labels present
    assert rec.values.shape == (1500, 2) and rec.labels.sum() == 60 and rec.channels == ["sensor_0", "sensor_1"]


@pytest.mark.parametrize("row, match", [
    ("t,1.0,,0", "line 3, column 'b': expected a number. Received: an empty cell"),
    ("t,1.0,abc,0", "line 3, column 'b': expected a number. Received: 'abc'"),
    ("t,1.0,nan,0", "line 3, column 'b': expected a finite number"),
    ("t,1.0,1e39,0", "line 3, column 'b': expected a finite number"),
    ("t,1.0,2.0,2", "line 3: is_anomaly must be 0 or 1"),
    ("t,1.0", "line 3: expected 4 columns"),
])
def test_bad_recording_cells_name_the_line(tmp_path, row, match):
    path = tmp_path / "r.csv"
    path.write_text(f"timestamp,a,b,is_anomaly\nt,1.0,2.0,0\n{row}\n")
    with pytest.raises(UserError, match=match):
        read_recording(path)


def test_npy_recording_and_its_checks(tmp_path):
    np.save(tmp_path / "r.npy", _recording(300))
    assert read_recording(tmp_path / "r.npy").values.shape == (300, 2)
    np.save(tmp_path / "one.npy", np.arange(50.0))
    assert read_recording(tmp_path / "one.npy").values.shape == (50, 1)
    bad = _recording(300)
    bad[7, 1] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(UserError, match="sample 7 holds NaN"):
        read_recording(tmp_path / "bad.npy")


# ---------------------------------------------------------------- windows and units


def test_windows_honour_length_and_hop_and_points_take_the_covering_maximum():
    x = np.arange(20, dtype=np.float32)[:, None]
    w, starts = sliding_windows(x, 6, 4)
    assert starts.tolist() == [0, 4, 8, 12] and w.shape == (4, 6, 1) and w[2, :, 0].tolist() == list(range(8, 14))
    p = point_scores(np.array([1.0, 5.0, 2.0, 3.0]), starts, 6, 20)
    assert p[:4].tolist() == [1, 1, 1, 1] and p[4:6].tolist() == [5, 5] and p[8:10].tolist() == [5, 5]
    assert p[10:12].tolist() == [2, 2] and p[12:18].tolist() == [3] * 6 and p[18:].tolist() == [3, 3]  # the tail: last window
    assert aggregate(np.array([1.0, 3.0, 10.0]), np.array([0, 0, 1]), "mean").tolist() == [2.0, 10.0]
    assert aggregate(np.array([1.0, 3.0, 10.0]), np.array([0, 0, 1]), "max").tolist() == [3.0, 10.0]
    with pytest.raises(UserError, match="fewer than one window"):
        sliding_windows(x[:5], 6, 1)


def test_recording_split_keeps_validation_apart_and_standardizes_on_training(recording_files):
    train, test = recording_files
    split = data.one_class_split(data.Source(str(train), test_data=str(test), window=40, hop=10), 0)
    pre = split.preprocessing
    assert pre["kind"] == "series" and pre["form"] == "recording" and (pre["window"], pre["hop"]) == (40, 10)
    assert split.x_train.shape[1:] == (40, 2) and split.x_val.shape[1:] == (40, 2)
    # The validation block is the last contiguous part: no validation window overlaps a training window.
    n_val = split.units.val_length
    train_part = 1200 - n_val
    assert n_val >= 40 + 4 * 10 and train_part - 40 + 1 == len(split.x_train)  # training windows every sample
    raw = read_recording(train).values
    mean, scale = np.asarray(pre["mean"]), np.asarray(pre["scale"])
    assert np.allclose(mean, raw[:train_part].mean(axis=0), atol=1e-4) and np.allclose(scale, raw[:train_part].std(axis=0), atol=1e-4)
    assert np.allclose(split.x_val[0], (raw[train_part : train_part + 40] - mean) / scale, atol=1e-5)
    assert split.y_test.shape == (1500,) and split.y_test.sum() == 60 and split.has_test
    assert split.units.test.tolist() == list(range(0, 1500 - 40 + 1, 10))


def test_training_side_preprocessing_equals_the_device_unit(recording_files):
    train, test = recording_files
    split = data.one_class_split(data.Source(str(train), test_data=str(test), window=40, hop=10), 0)
    from training.convert import _preprocessing_spec

    spec = {"input": {"shape": [40, 2]}, "preprocessing": _preprocessing_spec(split.preprocessing, [40, 2])}
    SeriesInput.check_spec(spec, "spec")
    unit = SeriesInput(spec)
    windows, starts = unit.windows(read_recording(test).values)
    assert np.array_equal(starts, split.units.test)
    assert np.allclose(unit.prepare(windows), split.x_test, atol=1e-5)
    assert np.allclose(unit.to_device(split.x_test), windows, atol=1e-4)


def test_default_window_comes_from_the_training_period(recording_files):
    train, test = recording_files
    split = data.one_class_split(data.Source(str(train), test_data=str(test)), 0)
    assert split.preprocessing["window"] == 40 and split.preprocessing["hop"] == 10  # the period is 40 samples
    assert "dominant period 40" in split.preprocessing["window_rule"]


def test_series_set_split_is_the_one_class_protocol(tmp_path):
    train, test = _toy_set(tmp_path)
    split = data.one_class_split(data.Source(str(train), test_data=str(test)), 0)
    pre = split.preprocessing
    assert pre["form"] == "set" and pre["window"] == 32 and pre["hop"] == 4 and pre["aggregate"] == "mean"
    assert data.class_names(str(train)) == ["a", "b"]
    assert split.y_test.tolist() == [0] * 12 + [1] * 12  # one label per test series
    assert len(split.x_train) == 11 * (64 - 32 + 1) and set(split.units.val) == {0}  # one held-out series
    assert split.unit_scores(np.ones(len(split.x_test)), "test").shape == (24,)


def test_a_recording_has_one_normal_class_a_set_has_every_class(tmp_path, recording_files):
    train, _ = recording_files
    assert data.normal_classes(str(train)) == [0] and data.normal_classes("kdd_tsad_135") == [0]
    assert data.normal_classes("basic_motions") == [0, 1, 2, 3]
    with pytest.raises(UserError, match=r"must be 0 \(a recording has one normal class\)"):
        data.check_source("kdd_tsad_135", 1)


@pytest.mark.parametrize("make, match", [
    (lambda d, tr, te: data.Source(str(tr), test_data=str(te), window=2000), "longer than the shortest series"),
    (lambda d, tr, te: data.Source(str(tr), test_data=str(te), window=40, hop=50), "hop must not exceed the window"),
    (lambda d, tr, te: data.Source(str(tr), test_data=str(_write_csv(d / "three.csv", _recording(500, channels=3)))),
     "expected 2 channel"),
    (lambda d, tr, te: data.Source(str(_write_csv(d / "short.csv", _recording(60)))), "19 training windows; at least 20"),
    (lambda d, tr, te: data.Source(str(_write_csv(d / "tiny.csv", _recording(50))), window=30), "too short for a training part"),
    (lambda d, tr, te: data.Source(str(te)), "must be normal only"),
])
def test_series_data_errors_are_clear(tmp_path, recording_files, make, match):
    with pytest.raises(UserError, match=match):
        data.one_class_split(make(tmp_path, *recording_files), 0)


# ---------------------------------------------------------------- metrics


def test_event_metrics_and_the_ucr_rule():
    labels = np.zeros(1000, int)
    labels[500:510] = 1
    scores = np.zeros(1000)
    scores[505] = 5.0
    scores[100:103] = 2.0  # one false alarm
    assert events(labels) == [(500, 509)]
    m = recording_metrics(labels, scores, threshold=1.0, location=505)
    assert m["events_found"] == 1 and m["event_recall"] == 1.0 and m["false_alarms"] == 1
    assert m["false_alarms_per_10k"] == pytest.approx(10.0) and m["ucr_hit"] and m["ucr_range"] == [500, 509]
    assert not recording_metrics(labels, scores, 1.0, location=620)["ucr_hit"]
    assert recording_metrics(labels, scores, 1.0, location=609)["ucr_hit"]  # within the 100-sample margin


# ---------------------------------------------------------------- CLI


def _cli(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("extra, match", [
    (["--window", "5000"], "longer than the shortest series"),
    (["--image-size", "28,28"], "apply to images"),
    (["--normal-class", "1"], "must be 0 (a recording has one normal class)"),
])
def test_cli_refuses_bad_series_runs_and_writes_nothing(tmp_path, recording_files, capsys, extra, match):
    train, test = recording_files
    out = tmp_path / "run"
    code, _, err = _cli(["train", "--model", "conv1d_ae", "--dataset", str(train), "--test-data", str(test), "--out", str(out),
                         *extra], capsys)
    assert code == 2 and match in err and "Traceback" not in err and not out.exists()


# ---------------------------------------------------------------- the sensor sets of the aeon wheel


def test_aeon_sets_are_tfds_datasets_prepared_offline(tmp_path):
    import tensorflow_datasets as tfds

    from training.inputs import aeon_sets

    builder = aeon_sets.prepare("basic_motions", tmp_path)
    assert {s: builder.info.splits[s].num_examples for s in ("train", "test")} == {"train": 40, "test": 40}
    example = next(iter(tfds.as_numpy(tfds.load("basic_motions", split="train", data_dir=tmp_path))))
    assert example["series"].shape == (100, 6) and example["series"].dtype == np.float32 and 0 <= example["label"] < 4
    s = data.one_class_split(data.Source("kdd_tsad_135", data_dir=os.fspath(tmp_path)), 0)
    assert s.preprocessing["form"] == "recording" and s.y_test.shape == (7501,) and s.y_test.sum() == 12


def test_an_altered_aeon_file_is_refused(tmp_path, monkeypatch):
    from training.inputs import aeon_sets

    table = tmp_path / "checksums.tsv"
    rows = aeon_sets.CHECKSUMS.read_text().splitlines()
    table.write_text("\n".join(r.replace(r.split("\t")[-1], "0" * 64) if "ACSF1_TRAIN" in r else r for r in rows))
    monkeypatch.setattr(aeon_sets, "CHECKSUMS", table)
    with pytest.raises(UserError, match="not the file this project was checked against"):
        aeon_sets.verified_file("ACSF1", "ACSF1_TRAIN.ts")


# ---------------------------------------------------------------- the 1-D variants, end to end

# The temporal family; the dense variants on series windows are converted in test_zoo (series64x3).
SERIES_VARIANTS = [n for n in __import__("zoo").list_models() if __import__("zoo").model_info(n).input_kinds == ("series",)]


def _bundles_match_keras(run: Path, detector, source, bundle: Path, tmp_path: Path) -> None:
    """The run's int8 ``bundle`` (exported here if absent) is under 64 KiB and ranks like Keras; its float32 bundle
    scores exactly like Keras."""
    from sklearn.metrics import roc_auc_score

    from edge import Detector
    from training.convert import export_run

    if not bundle.exists():
        export_run(run, bundle, quant="int8")
    export_run(run, tmp_path / "float", quant="float32")
    int8, exact = Detector.load(bundle), Detector.load(tmp_path / "float")
    assert (bundle / "model.tflite").stat().st_size <= 64 * 1024
    split = data.one_class_split(source, 0)
    recording = read_recording(source.test_data).values
    starts, float_scores = exact.score_recording(recording)
    assert np.array_equal(starts, split.units.test)
    keras_scores = detector.decision_function(split.x_test)
    # The float bundle is the Keras detector on the device: same windows, standardization, graph and score.
    np.testing.assert_allclose(float_scores, keras_scores, rtol=1e-3)
    # The int8 bundle (its nap head refitted on int8 features) ranks the test samples like Keras: AUROC within 0.03.
    auroc = {who: roc_auc_score(split.y_test, split.unit_scores(s, "test"))
             for who, s in (("keras", keras_scores), ("int8", int8.score_recording(recording)[1]))}
    assert abs(auroc["int8"] - auroc["keras"]) <= 0.03, auroc


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in SERIES_VARIANTS if n != "conv1d_ae"])  # conv1d_ae: the CLI test below
def test_every_series_variant_trains_exports_int8_under_64_kib_and_scores_like_keras(name, recording_files, tmp_path):
    import training

    train, test = recording_files
    result = training.train(model=name, dataset=str(train), test_data=str(test), window=64, hop=16, epochs=2, min_steps=40,
                            out=tmp_path / "run", plots=False, verbose=0)
    assert result.metrics["series"]["window"] == 64 and "iforest" in result.metrics and "matrix_profile" in result.metrics
    _bundles_match_keras(tmp_path / "run", result.detector, data.Source(str(train), test_data=str(test), window=64, hop=16),
                         tmp_path / "int8", tmp_path)


@pytest.mark.slow
def test_cli_trains_exports_and_detects_a_recording(recording_files, tmp_path, capsys):
    train, test = recording_files
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    code, out, err = _cli(["train", "--model", "conv1d_ae", "--dataset", str(train), "--test-data", str(test), "--out", str(run),
                           "--epochs", "2", "--min-steps", "60", "--quiet", "--no-plots"], capsys)
    assert code == 0, err
    assert "windows of 40 samples every 10" in out and "events found" in out and "matrix-profile" in out
    assert json.loads((run / "metrics.json").read_text())["series"]["window_rule"].startswith("dominant period 40")
    assert _cli(["export", str(run), "--out", str(bundle)], capsys)[0] == 0
    from training.detector import load_run

    _bundles_match_keras(run, load_run(run)[0], data.Source(str(train), test_data=str(test)), bundle, tmp_path)
    # The bundle evaluates on the recording the run names (window and hop from its record), its own preprocessing applied.
    code, out, err = _cli(["evaluate", str(bundle), "--no-plots", "--out", str(tmp_path / "eval")], capsys)
    assert code == 0, err
    float_auroc = json.loads((run / "metrics.json").read_text())["model"]["auroc"]
    assert abs(json.loads((tmp_path / "eval" / "metrics.json").read_text())["model"]["auroc"] - float_auroc) < 0.05
    code, out, err = _cli(["detect", str(bundle), str(test), "--json"], capsys)
    assert code == 0, err
    results = json.loads(out)["results"]
    assert len(results) == (1500 - 40) // 10 + 1 and results[0]["input"].endswith("[0:40]")
    # A test recording with another channel count is refused with exit 2.
    three = _write_csv(tmp_path / "three.csv", _recording(200, channels=3))
    code, _, err = _cli(["detect", str(bundle), str(three)], capsys)
    assert code == 2 and "expected 2 channel(s)" in err


@pytest.mark.slow  # stumpy's import and JIT compilation take 15 s
def test_matrix_profile_distances_are_stumpys():
    import stumpy

    from training.baselines import znorm_distances

    rng = np.random.default_rng(5)
    reference = np.sin(np.arange(600) / 7.0) + 0.1 * rng.standard_normal(600)
    reference[300:340] = 0.25  # a constant stretch
    queries = np.stack([reference[50:90] + 0.05 * rng.standard_normal(40), rng.standard_normal(40), np.full(40, 2.0)])
    expected = [float(np.min(stumpy.mass(q, reference))) for q in queries]
    np.testing.assert_allclose(znorm_distances(queries, reference, chunk=2), expected, rtol=1e-6, atol=1e-6)


def test_an_unequal_length_multivariate_set_from_the_aeon_wheel(tmp_path):
    from training.inputs.aeon_sets import aeon_data_dir

    root = aeon_data_dir() / "JapaneseVowels"
    split = data.one_class_split(data.Source(str(root / "JapaneseVowels_TRAIN.ts"), test_data=str(root / "JapaneseVowels_TEST.ts")), 0)
    # Its shortest series (a test one) has 7 samples: the window fits every series, train and test.
    assert split.preprocessing["window"] == 7 and split.x_train.shape[1:] == (7, 12)
    assert split.unit_scores(np.zeros(len(split.x_test)), "test").shape == (370,) and split.has_test
