"""Series benchmarks: how the series defaults were chosen (on the training data only), and the figures of the issue.

- :func:`development_study`: for each class of a series set, a development split made
  of the *train* split only (70% of the class's training series to train on, the other
  30% as development normals, the other classes' training series as development
  anomalies) scores window lengths, score kinds and aggregations. The test split is
  never read; the defaults of ``training.inputs.series`` and of the 1-D variants come
  from this table (BENCHMARKS.md).
- :func:`series_benchmark`: the default series detector on every class of the named
  series sets and on the recording, float and int8, beside PCA, kNN, IsolationForest
  (and the matrix profile on the recording), with training time per model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from training import data, runs
from training.inputs.base import HOLDOUT_SEED
from training.inputs.series import load_series
from training.inputs.ts_format import write_ts
from zoo.files import write_json

DEV_FRACTION = 0.3
SCORE_CONFIGS = {"mse": ("mse", {}), "nap": ("nap", {}), "nap3": ("nap", {"layers": 3}), "nap5": ("nap", {"layers": 5})}


def development_files(dataset: str, normal_class: int, out: Path) -> tuple[Path, Path]:
    """(dev_TRAIN.ts, dev_TEST.ts) of one class, from the train split of ``dataset`` only (a fixed, seeded draw)."""
    s = load_series(data.Source(dataset))
    normal = np.flatnonzero(s.train_labels == normal_class)
    order = np.random.default_rng(HOLDOUT_SEED + normal_class).permutation(normal)
    n_dev = max(1, int(round(DEV_FRACTION * len(normal))))
    dev_normal, fit = np.sort(order[:n_dev]), np.sort(order[n_dev:])
    other = np.flatnonzero(s.train_labels != normal_class)
    test = np.concatenate([dev_normal, other])
    train_ts = write_ts(out / f"{dataset}_dev{normal_class}_TRAIN.ts", [s.train[i] for i in fit], s.train_labels[fit], s.class_names)
    test_ts = write_ts(out / f"{dataset}_dev{normal_class}_TEST.ts", [s.train[i] for i in test], s.train_labels[test], s.class_names)
    return train_ts, test_ts


def _aurocs(model: Any, split: Any) -> dict:
    """Development AUROC of every score configuration and aggregation for one trained network."""
    from sklearn.metrics import roc_auc_score

    from training.detector import AutoencoderDetector

    out = {}
    for label, (kind, options) in SCORE_CONFIGS.items():
        det = AutoencoderDetector(network=model, score=kind, score_options=options).calibrate(split.x_train, split.x_val)
        windows = det.decision_function(split.x_test)
        for how in ("mean", "max"):
            units = dataclasses.replace(split.units, aggregate=how)
            out[f"{label}/{how}"] = float(roc_auc_score(split.y_test, units.scores(windows, "test")))
    return out


def _development_row(model: str, train_ts: Path, test_ts: Path, k: int, name: str, window: int, run_dir: Path,
                     train_args: dict) -> dict:
    """Train (or reuse the finished run in ``run_dir``) on one class's development files; score every configuration."""
    import training
    from training.detector import load_run

    split = data.one_class_split(data.Source(str(train_ts), test_data=str(test_ts), window=window), k)
    if runs.Run(run_dir).is_finished():
        network, metrics = load_run(run_dir)[0].model_, runs.read_json(runs.Run(run_dir).file(runs.METRICS), "metrics")
    else:
        result = training.train(model=model, dataset=str(train_ts), test_data=str(test_ts), normal_class=k, window=window,
                                split=split, out=run_dir, resume=runs.Run(run_dir).exists(), plots=False, verbose=0,
                                **train_args)
        network, metrics = result.model, result.metrics
    return {"class": k, "name": name, "window": window, "hop": split.preprocessing["hop"],
            "train_seconds": metrics["training"]["train_seconds"], **_aurocs(network, split),
            **{who: metrics[who]["auroc"] for who in ("pca", "knn", "iforest")}}


def development_study(dataset: str, windows: Sequence[int], *, model: str = "conv1d_ae", classes: Sequence[int] | None = None,
                      out: str | Path = "runs/series_dev", **train_args: Any) -> dict:
    """Development AUROC of window lengths x score kinds x aggregations, every class of a series set (train split only)."""
    out = Path(out)
    names = data.class_names(dataset)
    classes = list(range(len(names))) if classes is None else list(classes)
    rows = []
    (out / "files").mkdir(parents=True, exist_ok=True)
    for k in classes:
        train_ts, test_ts = development_files(dataset, k, out / "files")
        for w in windows:
            rows.append(_development_row(model, train_ts, test_ts, k, names[k], w, out / dataset / f"run{k}-{w}", train_args))
            print(f"  {dataset} class {k} window {w}: " + "  ".join(f"{c} {v:.3f}" for c, v in rows[-1].items()
                                                                      if isinstance(v, float) and c != "train_seconds"),
                  flush=True)
    configs = [c for c in rows[0] if "/" in c or c in ("pca", "knn", "iforest")]
    means = {f"{w}:{c}": float(np.mean([r[c] for r in rows if r["window"] == w])) for w in windows for c in configs}
    result = {"dataset": dataset, "model": model, "windows": list(windows), "classes": classes, "rows": rows, "mean": means,
              "best": max((k for k in means if "/" in k), key=means.get), "machine": runs.machine_info(),
              "protocol": f"train split only: {1 - DEV_FRACTION:.0%} of each class's training series to train on, "
                          f"{DEV_FRACTION:.0%} as development normals, the other classes' training series as anomalies"}
    write_json(out / f"dev_{dataset}.json", result)
    return result


SERIES_SETS = ("basic_motions", "acsf1", "kdd_tsad_135")
WHO = ("model", "int8", "pca", "knn", "iforest", "matrix_profile")
RECORDING_KEYS = ("auroc", "auprc", "event_recall", "false_alarms_per_10k", "ucr_hit", "location")


def _entry(dataset: str, k: int, run_dir: Path, model: str | None, train_args: dict) -> dict:
    """One class of one set: train (or reuse a finished run), export int8, score the int8 bundle on the same split."""
    import edge
    import training
    from training.convert import export_run
    from training.evaluate import OnDevice, metrics_of

    split = data.one_class_split(dataset, k)
    run = runs.Run(run_dir)
    if run.is_finished():
        metrics = runs.read_json(run.file(runs.METRICS), "the run's evaluation")
    else:
        result = training.train(model=model or "conv1d_ae", dataset=dataset, normal_class=k, split=split, out=run_dir,
                                resume=run.exists(), plots=k == 0, verbose=0, **train_args)
        metrics = result.metrics
    bundle = run_dir.with_name(run_dir.name + "-int8")
    if not (bundle / "detector.json").is_file():
        export_run(run_dir, bundle, quant="int8")  # the benchmark's int8 column (the zoo's nap entries are int16x8)
    metrics["int8"] = metrics_of(OnDevice(edge.Detector.load(bundle)), split)
    sizes = {f: (bundle / f).stat().st_size for f in ("model.tflite", "detector.json")}
    return {"class": k, "name": data.class_names(dataset)[k], "metrics": {w: metrics[w] for w in WHO if w in metrics},
            "train_seconds": metrics["training"]["train_seconds"], "epochs_run": metrics["training"]["epochs_run"],
            "model_bytes": sizes["model.tflite"], "bundle_bytes": sum(sizes.values()), "series": metrics.get("series")}


def series_benchmark(out: str | Path = "runs/bench_series", *, sets: Sequence[str] = SERIES_SETS, model: str | None = None,
                     **train_args: Any) -> dict:
    """The default series detector (float and int8) beside the baselines on every class of each set; resumable."""
    out = Path(out)
    result = {"model": model or "conv1d_ae", "sets": {}, "machine": runs.machine_info()}
    for dataset in sets:
        names = data.class_names(dataset)
        rows = []
        for k in data.normal_classes(dataset):
            rows.append(_entry(dataset, k, out / dataset / f"class_{k}", model, train_args))
            m = rows[-1]["metrics"]
            print(f"  {dataset} class {k} ({names[k]}): " + "  ".join(f"{w} {m[w]['auroc']:.3f}" for w in WHO if w in m),
                  flush=True)
        means = {w: float(np.mean([r["metrics"][w]["auroc"] for r in rows])) for w in WHO if w in rows[0]["metrics"]}
        mins = {w: float(np.min([r["metrics"][w]["auroc"] for r in rows])) for w in means}
        result["sets"][dataset] = {"rows": rows, "mean_auroc": means, "min_auroc": mins,
                                   "train_seconds": float(sum(r["train_seconds"] for r in rows)),
                                   "beats_every_baseline": all(means["model"] > v for w, v in means.items() if w not in ("model", "int8")),
                                   "int8_beats_every_baseline": all(means["int8"] > v for w, v in means.items()
                                                                    if w not in ("model", "int8"))}
        write_json(out / "series.json", result)
    return result


def series_markdown(result: dict) -> str:
    """The benchmark as Markdown tables: per set, mean and min AUROC of each detector; the recording's event metrics."""
    titles = {"model": "float", "int8": "int8", "pca": "PCA", "knn": "kNN", "iforest": "IsolationForest",
              "matrix_profile": "matrix profile"}
    lines = []
    for dataset, s in result["sets"].items():
        who = list(s["mean_auroc"])
        first = s["rows"][0]
        sr = first["series"]
        lines += [f"**{dataset}** ({len(s['rows'])} normal class(es); windows of {sr['window']} samples every {sr['hop']}, "
                  f"scored per {sr['unit']}; bundle {first['bundle_bytes'] / 1024:.1f} KiB, model {first['model_bytes']:,} bytes; "
                  f"training {s['train_seconds']:.0f} s in all)", "",
                  "| class | " + " | ".join(titles[w] for w in who) + " |", "|---|" + "---:|" * len(who)]
        for r in s["rows"]:
            lines.append(f"| {r['class']} {r['name']} | " + " | ".join(f"{r['metrics'][w]['auroc']:.3f}" for w in who) + " |")
        if len(s["rows"]) > 1:
            lines.append("| **mean** | " + " | ".join(f"**{s['mean_auroc'][w]:.3f}**" for w in who) + " |")
            lines.append("| min | " + " | ".join(f"{s['min_auroc'][w]:.3f}" for w in who) + " |")
        else:
            for key in RECORDING_KEYS[1:]:
                cells = []
                for w in who:
                    v = first["metrics"][w].get(key)
                    cells.append("–" if v is None else ("hit" if v is True else "miss" if v is False else
                                                        f"{v:.3f}" if isinstance(v, float) else str(v)))
                lines.append(f"| {key} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _test_stream(dataset: str) -> np.ndarray:
    """The raw test samples of a series dataset as one stream: the test recording, or a set's test series end to end."""
    s = load_series(data.Source(dataset))
    return np.concatenate(s.test).astype(np.float32)


def stream_benchmark(root: str | Path | None = None, *, c_array_from: str | Path | None = None,
                     out: str | Path = "runs/bench_stream") -> dict:
    """Per-hop latency of ``edge.StreamDetector`` on every series zoo entry (in a TensorFlow-free child process, on the
    entry's test stream), and, with ``c_array_from`` (a series run folder), the C stream detector exported from it
    and checked under TFLite Micro on that run's test recording."""
    import json
    import subprocess
    import sys

    from training.inputs.named import DATASETS
    from zoo import catalog

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    root = catalog.saved_models_dir(root, must_exist=True)
    rows, written = [], set()
    for record in catalog.list_pretrained(root=root):
        if DATASETS.get(record["dataset"]) != "series":
            continue
        path = out / f"{record['dataset']}.npy"
        if record["dataset"] not in written:  # once per dataset, then reused
            np.save(path, _test_stream(record["dataset"]))
            written.add(record["dataset"])
        proc = subprocess.run([sys.executable, "-m", "edge.latency", "--stream", str(root / record["path"] / "detector"),
                               str(path)], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"stream latency of {record['path']} failed: {proc.stderr[-500:]}")
        rows.append({"entry": record["path"], **json.loads(proc.stdout)})
        r = rows[-1]
        print(f"  {r['entry']}: per hop median {r['per_hop']['median']:.0f} us, p99 {r['per_hop']['p99']:.0f} us "
              f"(invoke {r['invoke']['median']:.0f} us, Python {r['python_us']:.0f} us), {r['samples_per_second']:,.0f} "
              "samples/s one sample per push", flush=True)
    result = {"entries": rows, "machine": runs.machine_info()}
    if c_array_from is not None:
        result["c_array"] = _c_array_check(Path(c_array_from), out / "c_array")
    write_json(out / "stream.json", result)
    return result


def _c_array_check(run_dir: Path, bundle: Path) -> dict:
    """Export a series run as a c-array bundle (once) and check its C stream detector on the run's test recording."""
    from edge.micro import check_stream_c
    from training.convert import export_run
    from training.detector import load_run

    config = load_run(run_dir)[1]
    if not (bundle / "aezoo_detect.c").is_file():
        export_run(run_dir, bundle, fmt="c-array", overwrite=bundle.exists())
    report = {"run": str(run_dir), "dataset": config.dataset,
              **check_stream_c(bundle, _test_stream(config.dataset) if config.test_data is None else
                               load_series(config.data_source()).test[0])}
    print(f"  C stream detector of {run_dir}: {report['agree']} of {report['verdicts']} verdicts agree with LiteRT; "
          f"model {report['model_bytes']:,} bytes, arena {report['arena_bytes']:,} bytes, ring buffer "
          f"{report['state_bytes']:,} bytes", flush=True)
    return report
