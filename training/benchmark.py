"""The beyond-detection benchmark (``aezoo represent``): every variant trained on all classes, beside PCA.

For each variant and code size: a run folder trained on every class
(``training.train(all_classes=True)``), then ``training.representation.evaluate_codec``
(reconstruction, linear probe, int8 code compression); PCA with as many components
gets the same evaluation and the raw pixels a linear probe. Variational models also
get a prior sample grid and an interpolation grid.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import zoo
from training import runs
from training.representation import PROBE_MAX_ITER, ModelCodec, PCACodec, evaluate_codec, raw_pixel_probe
from zoo.errors import UserError
from zoo.files import write_json, write_text

# Test-image pairs walked in the benchmark's interpolation grid: (class of A, class of B),
# each the first test image of its class.
WALK_CLASSES = ((0, 3), (9, 7), (2, 8), (1, 5))


def _raw_probe(split: Any, out: Path, dataset: str, max_iter: int) -> dict:
    """The raw-pixel probe, cached in ``out/raw_probe.json`` (it takes minutes)."""
    cache = out / "raw_probe.json"
    raw = json.loads(cache.read_text()) if cache.is_file() else None
    key = {"max_iter": max_iter, "dataset": dataset, "n_train": int(len(split.x_train) + len(split.x_val))}
    if raw is None or any(raw.get(k) != v for k, v in key.items()):
        raw = {**raw_pixel_probe(split, max_iter=max_iter), **key}
        write_json(cache, raw)
    return raw


def _trained(variant: str, d: int, out: Path, split: Any, settings: dict) -> tuple[Any, Path]:
    """The all-classes model of ``variant`` at code size ``d``: reused when finished, else trained or resumed."""
    from training.trainer import train

    run = runs.Run(out / f"{variant}-{d}")
    if run.is_finished():
        return zoo.load_model(run.file(runs.MODEL)), run.path
    result = train(model=variant, params={"latent_dim": d}, all_classes=True, out=run.path, split=split,
                   resume=run.exists(), **settings)
    return result.model, run.path


def _generation_images(model: Any, name: str, out: Path, split: Any, seed: int) -> dict:
    """A VAE's prior samples and latent walks between fixed test images, as PNGs."""
    from training import generate

    pairs = [(int(np.flatnonzero(split.test_labels == a)[0]), int(np.flatnonzero(split.test_labels == b)[0]))
             for a, b in WALK_CLASSES if a < len(split.class_names) and b < len(split.class_names)]
    return {
        "samples": str(generate.sample_grid(model, out / f"samples_{name}.png", n=64, seed=seed,
                                            title=f"{name}: 64 draws from the prior N(0, I)")),
        "interpolation": str(generate.interpolation_grid(
            model, out / f"walk_{name}.png", split.x_test, pairs, steps=10, labels=split.test_labels,
            class_names=split.class_names, title=f"{name}: walks between the z_means of two test images")),
    }


def _row(variant: str | None, d: int, out: Path, split: Any, settings: dict, probe_max_iter: int, images: dict) -> dict:
    if variant is None:
        t0 = time.perf_counter()
        row = evaluate_codec(PCACodec(d, seed=settings["seed"]).fit(split.x_train), split, probe_max_iter=probe_max_iter)
        return {**row, "variant": "PCA", "fit_seconds": time.perf_counter() - t0}
    model, run_dir = _trained(variant, d, out, split, settings)
    row = evaluate_codec(ModelCodec(model, name=f"{variant}-{d}"), split, probe_max_iter=probe_max_iter)
    row.update(variant=variant, run=str(run_dir),
               training=runs.read_json(run_dir / runs.METRICS, "the run's evaluation")["training"])
    if zoo.is_variational(model):
        # Read from the saved model: the variant's default beta may have changed since it was trained.
        row["beta"] = float(model.get_layer("z").get_config()["beta"])
        images[f"{variant}-{d}"] = _generation_images(model, f"{variant}-{d}", out, split, settings["seed"])
    return row


def represent(variants: Sequence[str] | None = None, dims: Sequence[int] = (8, 32), *, epochs: int = 10,
              out: str | os.PathLike = "runs/represent", dataset: str = "fashion_mnist", data_dir: str | None = None,
              seed: int = 0, batch_size: int = 128, probe_max_iter: int = PROBE_MAX_ITER, raw_probe_max_iter: int = 300,
              raw_probe: bool = True, split: Any = None, verbose: int = 0, min_steps: int = 1000) -> dict:
    """Train each variant on all classes at each code size, compare with PCA; write represent.json and represent.md.

    ``split`` replaces the dataset's ``training.data.all_classes_split`` (e.g. a subset for a quick check).
    """
    from training.progress import progress

    from training import data

    variants = list(variants) if variants else zoo.list_models()
    for v in variants:
        zoo.model_info(v)  # an unknown name fails now, not after an hour of training
    dims = [int(d) for d in dims]
    out = Path(out)
    t_start = time.perf_counter()
    split = split if split is not None else data.all_classes_split(dataset, data_dir=data_dir)
    raw = _raw_probe(split, out, dataset, raw_probe_max_iter) if raw_probe else None
    settings = {"epochs": epochs, "min_steps": min_steps, "seed": seed, "batch_size": batch_size, "dataset": dataset,
                "data_dir": data_dir, "verbose": verbose}
    rows: list[dict] = []
    images: dict = {}
    bar = progress([(v, d) for d in dims for v in [None, *variants]], desc="beyond detection", unit="model")
    for variant, d in bar:  # variant None = PCA
        bar.set_postfix_str(f"{variant or 'PCA'} dim {d}")
        rows.append(_row(variant, d, out, split, settings, probe_max_iter, images))
    result = {"dataset": dataset, "dims": dims, "variants": variants, "epochs": epochs, "seed": seed,
              "batch_size": batch_size, "probe_max_iter": probe_max_iter, "rows": rows, "raw_pixels_probe": raw,
              "images": images, "n_train": int(len(split.x_train)), "n_probe_train": int(len(split.x_train) + len(split.x_val)),
              "n_test": int(len(split.x_test)), "total_seconds": time.perf_counter() - t_start, "machine": runs.machine_info()}
    write_json(out / "represent.json", result)
    write_text(out / "represent.md", represent_markdown(result))
    return result


def represent_markdown(result: dict) -> str:
    """The benchmark's table: per code (variant or PCA) and size, reconstruction, probe and compression."""
    lines = [
        "| code | dim | PSNR dB | SSIM | probe acc | int8 B/image | ratio | int8 PSNR dB | int8 SSIM | train s (epochs) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        c, q = r["compression"], r["reconstruction"]
        t = r.get("training")
        train_s = f"{t['train_seconds']:.0f} ({t['epochs_run']})" if t else f"{r.get('fit_seconds', 0):.0f} (fit)"
        acc = f"{r['probe']['accuracy']:.4f}" + ("" if r["probe"]["converged"] else "*")
        name = f"**{r['variant']}**" if r["variant"] == "PCA" else r["variant"] + (f" (beta {r['beta']:g})" if "beta" in r else "")
        lines.append(f"| {name} | {r['latent_dim']} | {q['psnr']:.2f} | {q['ssim']:.3f} | {acc} | {c['bytes_per_image']:.3f} | "
                     f"{c['ratio']:.1f} | {c['psnr']:.2f} | {c['ssim']:.3f} | {train_s} |")
    raw = result.get("raw_pixels_probe")
    if raw:
        acc = f"{raw['accuracy']:.4f}" + ("" if raw["converged"] else "*")
        lines.append(f"| raw pixels | {raw['dim']} | - | - | {acc} | {raw['dim']} | 1.0 | - | - | - |")
    m = result["machine"]
    lines += [
        "",
        f"{result['dataset']}: models trained on all classes ({result['n_train']:,} train images, a fixed 10% of each class held out "
        f"for validation), up to {result['epochs']} epochs, batch {result['batch_size']}, seed {result['seed']}. Measured on the "
        f"{result['n_test']:,} test images. Probe: logistic regression on standardized codes fitted on the whole train split "
        f"({result['n_probe_train']:,} images), max {result['probe_max_iter']} L-BFGS iterations"
        + (f" ({raw['max_iter']} for the 784 raw pixels)" if raw else "") + " (* = stopped before converging). "
        f"int8 B/image = latent_dim bytes + 8 * latent_dim bytes of float32 offset/scale amortized over the {result['n_test']:,} "
        f"test images; ratio = {result['rows'][0]['compression']['raw_bytes_per_image']} raw bytes / that. "
        f"Total {result['total_seconds'] / 60:.1f} min on {m['cpu']}, {m['cores']} cores.",
        "",
    ]
    return "\n".join(lines)


# -- choosing a variant's default score without the test split ------------------------------------------------

DEV_ANOMALIES = 2000


def development_split(dataset: str, normal_class: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normal training inputs, development inputs, their labels) from the train split only.

    Development normals are the class's held-out validation images; development anomalies
    are ``DEV_ANOMALIES`` train images of the other classes (a fixed, seeded draw). The
    test split is not read.
    """
    from training import data

    x, labels = data.load_split(dataset, "train")
    train_idx, val_idx = data.holdout_indices(labels, normal_class)
    other = np.flatnonzero(labels != normal_class)
    pick = np.sort(np.random.default_rng(normal_class).choice(other, min(DEV_ANOMALIES, len(other)), replace=False))
    x_dev = np.concatenate([x[val_idx], x[pick]])
    return x[train_idx], x_dev, np.r_[np.zeros(len(val_idx)), np.ones(len(pick))]


def compare_scores(models: Sequence[str], scores: Sequence[str], *, dataset: str = "fashion_mnist",
                   classes: Sequence[int] | None = None, root: Any = None) -> dict:
    """AUROC of each score kind on the zoo entries' float models, on the development split of each class.

    This is how each variant's default score was chosen: the test split is never read,
    and the score's parameters are fitted on the class's normal training images.
    """
    from sklearn.metrics import roc_auc_score

    from training.detector import AutoencoderDetector

    classes = list(range(10)) if classes is None else list(classes)
    rows = []
    for name in models:
        for k in classes:
            model = zoo.load(name, dataset=dataset, normal_class=k, root=root)
            x_train, x_dev, y_dev = development_split(dataset, k)
            row = {"model": name, "class": k}
            for kind in scores:
                # The threshold does not enter an AUROC: calibrated on a few training images, it costs nothing.
                det = AutoencoderDetector(network=model, score=kind).calibrate(x_train, x_train[:256])
                row[kind] = float(roc_auc_score(y_dev, det.decision_function(x_dev)))
            rows.append(row)
    means = {m: {s: float(np.mean([r[s] for r in rows if r["model"] == m])) for s in scores} for m in models}
    return {"dataset": dataset, "classes": classes, "scores": list(scores), "rows": rows, "mean": means,
            "best": {m: max(v, key=v.get) for m, v in means.items()}, "machine": runs.machine_info()}


# -- device fidelity: the int8 head's quantization-noise floor, chosen on development data ------------------------


def _dev_inputs(dataset: str, k: int, split: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Development inputs and labels from training data only: images by :func:`development_split`; series windows as
    the class's normal validation windows and (for sets) training windows of the other classes; a recording has
    normal validation windows only (no labels: agreement, no AUROC)."""
    from training import data

    if split.units is None:
        return development_split(dataset, k)[1:]
    if split.units.how == "points":
        return split.x_val, None
    others = [data.one_class_split(dataset, c).x_train for c in range(len(split.class_names)) if c != k]
    anomalies = np.concatenate(others)
    pick = np.random.default_rng(k).choice(len(anomalies), min(DEV_ANOMALIES, len(anomalies)), replace=False)
    return np.concatenate([split.x_val, anomalies[np.sort(pick)]]), np.r_[np.zeros(len(split.x_val)), np.ones(len(pick))]


def fidelity_study(entries: Sequence[str], steps: Sequence[float], out: str | Path, *, fmt: str = "bundle",
                   score: str | None = None, quant: str = "int8") -> dict:
    """For zoo entries ("model/dataset/class"): export the float model to int8 (post-training, a proxy for the zoo's
    QAT export) with each quantization-noise floor of ``steps`` (``training.convert.QUANT_NOISE_STEPS``) and measure,
    on development data only (:func:`_dev_inputs`), the verdict agreement of LiteRT's two kernel sets, their score
    differences, and the AUROC of both and of the float model; with ``fmt="c-array"`` the microcontroller build (batch
    1) and its TFLite Micro check (model bytes, arena); with ``score``, the entry's network scored by that kind instead
    (fitted on the normal training inputs, calibrated on the validation ones); ``quant``: "int8" or "int16x8". Also
    the batch-1 latency of each bundle (``edge.latency``, 300 alternating calls). The test split is never read."""
    from sklearn.metrics import roc_auc_score

    from edge import Detector, agreement
    from edge.bundle import read_bundle
    from edge.inputs import for_spec
    from edge.latency import batch1_latency
    from training import convert, data
    from training.detector import AutoencoderDetector
    from training.pipeline import entry_float_detector
    from zoo import catalog

    out = Path(out)
    rows, default = [], convert.QUANT_NOISE_STEPS
    for name in entries:
        model, dataset, k = name.split("/")
        record = catalog.get_entry(model, dataset, int(k))
        float_det = entry_float_detector(record, catalog.saved_models_dir() / record["path"])
        split = data.one_class_split(dataset, int(k))
        if score is not None:
            float_det = AutoencoderDetector(float_det.config, network=float_det.model_, score=score).calibrate(
                split.x_train, split.x_val)
        x_dev, y_dev = _dev_inputs(dataset, int(k), split)
        row = {"entry": name, "dev_inputs": int(len(x_dev)), "dev_anomalies": int(y_dev.sum()) if y_dev is not None else 0}
        if y_dev is not None:
            row["float_auroc"] = float(roc_auc_score(y_dev, float_det.decision_function(x_dev)))
        for step in steps:
            convert.QUANT_NOISE_STEPS = float(step)
            try:
                bundle = convert.export_detector(float_det, out / "bundles" / name.replace("/", "_") / f"steps_{step:g}",
                                                 x_train=split.x_train, x_val=split.x_val, class_names=list(split.class_names),
                                                 provenance={"seed": 0}, preprocessing=split.preprocessing, overwrite=True,
                                                 fmt=fmt, quant=quant)
            finally:
                convert.QUANT_NOISE_STEPS = default
            tflite, spec = read_bundle(bundle)
            scores = agreement.kernel_scores(tflite, spec, for_spec(spec).to_device(x_dev))
            t = spec["threshold"]["value"]
            pair = agreement.compare(scores, {n: t for n in scores})["pairs"]["litert_default vs litert_reference"]
            latency = batch1_latency(Detector(tflite, spec), for_spec(spec).to_device(split.x_val[:1]), iterations=300)
            cell = {**pair, "threshold": t, "model_bytes": len(tflite), "batch1_us": latency["detector"]["median"]}
            if "micro" in spec:
                cell["micro"] = {k: spec["micro"][k] for k in ("ok", "arena_bytes", "verdicts_agree", "images_compared",
                                                               "max_score_diff_vs_litert")}
            if y_dev is not None:
                cell.update({f"auroc_{n}": float(roc_auc_score(y_dev, s)) for n, s in scores.items()})
            row[f"steps_{step:g}"] = cell
            print(f"{name} {quant} steps {step:g}: {len(tflite):,} model bytes, batch-1 {cell['batch1_us']:.0f} us" + (f", arena {cell['micro']['arena_bytes']:,}"
                  if "micro" in cell else "") + f"; kernels agree {100 * pair['verdicts_agree']:.2f}% ({pair['disagree']} differ), "
                  f"score diff p99 {100 * pair['score_diff_p99']:.1f}% max {100 * pair['score_diff_max']:.1f}% of the "
                  f"threshold" + (f", AUROC {cell['auroc_litert_default']:.4f} (float {row['float_auroc']:.4f})"
                                  if y_dev is not None else ""), flush=True)
        rows.append(row)
    result = {"entries": list(entries), "steps": [float(v) for v in steps], "format": fmt, "score": score, "quant": quant,
              "rows": rows,
              "machine": runs.machine_info(),
              "note": "int8 by post-training quantization of each entry's float model (the zoo's bundles come from QAT); "
                      "development data from the training split only"}
    write_json(out / "fidelity.json", result)
    return result


# -- own data: a small image folder, and feature vectors ----------------------------------------------------


def write_small_folder(out: Path, per_class: int = 100, *, seed: int = 0) -> Path:
    """An ImageFolder made from real Fashion-MNIST: ``per_class`` train PNGs per class, the full test split as PNGs.

    A user's small folder, made reproducibly (a seeded draw of the train split); the
    test split is written whole so the numbers are comparable with the full protocol.
    Written beside ``out`` and renamed into place (:func:`zoo.files.atomic_dir`), so ``out`` exists only complete.
    """
    from PIL import Image

    from training import data
    from zoo.files import atomic_dir

    names = data.class_names("fashion_mnist")
    rng = np.random.default_rng(seed)
    with atomic_dir(out) as tmp:
        for split in ("train", "test"):
            x, labels = data.load_split("fashion_mnist", split)
            for k, name in enumerate(names):
                idx = np.flatnonzero(labels == k)
                if split == "train":
                    idx = np.sort(rng.choice(idx, per_class, replace=False))
                folder = tmp / split / name.replace("/", "-")
                folder.mkdir(parents=True, exist_ok=True)
                for i in idx:
                    Image.fromarray(np.round(x[i, ..., 0] * 255).astype(np.uint8), "L").save(folder / f"{i}.png")
    return out


def small_images(out: str | Path, *, models: Sequence[str], per_class: int = 100, epochs: int = 30, seed: int = 0) -> dict:
    """Train every model on every class of a small real image folder; mean AUROC beside PCA and kNN (same run)."""
    from training.trainer import train_all

    out = Path(out)
    folder = out / f"fashion_mnist_{per_class}_per_class"
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, not the image folder this benchmark writes there; move it or choose another --out")
    if not folder.is_dir():
        write_small_folder(folder, per_class, seed=seed)
    result = {"folder": str(folder), "per_class": per_class, "models": {}, "machine": runs.machine_info()}
    for name in models:
        summary = train_all(model=name, dataset=str(folder), epochs=epochs, seed=seed, out=out / name, resume=True,
                            plots=False, verbose=0)
        result["models"][name] = {k: summary[k] for k in summary if k.endswith("_auroc")}
        result["models"][name]["score"] = summary["score"]
        result["models"][name]["total_train_seconds"] = summary["total_train_seconds"]
    write_json(out / "small_images.json", result)
    return result


def _tabular(name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(features, labels, what the normal class is) of a dataset that scikit-learn ships."""
    from sklearn import datasets

    if name == "breast_cancer":
        d = datasets.load_breast_cancer()
        return d.data, d.target, "benign tumours (class 1) normal, malignant anomalous"
    if name == "wine":
        d = datasets.load_wine()
        return d.data, d.target, "class 0 normal, the other cultivars anomalous"
    raise UserError(f"unknown tabular dataset; expected breast_cancer or wine. Received: {name!r}")


def vectors(out: str | Path, *, dataset: str = "breast_cancer", normal_class: int = 1, models: Sequence[str] = (),
            epochs: int = 200, seed: int = 0) -> dict:
    """Feature vectors from a CSV, end to end: each dense model beside PCA, kNN and IsolationForest.

    The rows are split 70/30 (stratified, seeded) into train.csv and test.csv, as a user
    would bring them; models train on the normal class's train rows only.
    """
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from training import data
    from training.trainer import train

    out = Path(out)
    x, y, what = _tabular(dataset)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)
    for name, xs, ys in (("train.csv", x_tr, y_tr), ("test.csv", x_te, y_te)):
        header = ",".join([f"f{j}" for j in range(xs.shape[1])] + ["label"])
        lines = [header] + [",".join(f"{v:.6g}" for v in row) + f",{int(k)}" for row, k in zip(xs, ys)]
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("\n".join(lines) + "\n")
    source = data.Source(str(out / "train.csv"), test_data=str(out / "test.csv"))
    split = data.one_class_split(source, normal_class)
    iso = IsolationForest(n_estimators=200, random_state=seed).fit(split.x_train)
    result = {"dataset": dataset, "normal": what, "n_train_normal": int(len(split.x_train)), "n_test": int(len(split.y_test)),
              "isolation_forest_auroc": float(roc_auc_score(split.y_test, -iso.score_samples(split.x_test))), "models": {}}
    for name in models:
        run = runs.Run(out / name)
        report = runs.read_json(run.file(runs.METRICS), "metrics") if run.is_finished() else \
            train(model=name, dataset=str(out / "train.csv"), test_data=str(out / "test.csv"), normal_class=normal_class,
                  epochs=epochs, seed=seed, out=run.path, plots=False, verbose=0).metrics
        result["models"][name] = {w: report[w]["auroc"] for w in ("model", "pca", "knn")}
    result["machine"] = runs.machine_info()
    write_json(out / "vectors.json", result)
    return result


# -- reliability: random corruptions of a bundle -----------------------------------------------------------


def _field_edits(spec: dict, rng: np.random.Generator) -> tuple[str, Any]:
    """One random field of detector.json (a dotted path) and a value of another type or out of range."""
    paths = []

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else k)
        elif isinstance(node, list) and node and not isinstance(node[0], (int, float)):
            for i, v in enumerate(node):
                walk(v, f"{prefix}.{i}")
        else:
            paths.append(prefix)

    walk(spec, "")
    values = ["0.5", None, [], {}, -1, 0, 1e30, float("inf"), "", "x" * 300, True, 3.7, -128]
    return paths[int(rng.integers(len(paths)))], values[int(rng.integers(len(values)))]


def corruption_check(bundle: str | Path, out: str | Path, *, cases: int = 500, seed: int = 0) -> dict:
    """Random single-byte (model or spec) and single-field (spec) corruptions of a copy of ``bundle``, run through ``aezoo detect``.

    Each outcome is counted: exit 0 with the verdicts of the intact bundle, exit 2 with one
    line of error, or anything else (a wrong verdict, another exit code, a traceback).
    """
    import contextlib
    import io
    import shutil
    import tempfile

    from edge.cli import main as detect_main
    from training import data

    bundle, out = Path(bundle), Path(out)
    x = (np.asarray(data.load_split("fashion_mnist", "test")[0][:20]) * 255).round().astype(np.uint8)
    out.mkdir(parents=True, exist_ok=True)
    inputs = out / "inputs.npy"
    np.save(inputs, x)

    def run(path: Path) -> tuple[int, str, str]:
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = detect_main(["detect", str(path), str(inputs), "--json"])
        return code, stdout.getvalue(), stderr.getvalue()

    code, text, _ = run(bundle)
    truth = [r["anomaly"] for r in json.loads(text)["results"]]
    rng = np.random.default_rng(seed)
    counts = {"exit_0_same_verdicts": 0, "exit_2_clear_error": 0, "wrong_or_crash": 0, "by_kind": {}}
    failures = []
    scratch = Path(tempfile.mkdtemp(prefix=".aezoo-corruption-", dir=out))  # ours alone: nothing of the user's in it
    for i in range(cases):
        case = scratch / "case"
        shutil.rmtree(case, ignore_errors=True)
        shutil.copytree(bundle, case)
        kind = ("model_byte", "spec_byte", "spec_field")[i % 3]
        _corrupt(case, kind, rng)
        try:
            code, text, err = run(case)
        except BaseException as exc:  # noqa: BLE001 - counting what escapes is the point
            code, text, err = -1, "", f"{type(exc).__name__}: {exc}"
        if code == 0 and [r["anomaly"] for r in json.loads(text)["results"]] == truth:
            outcome = "exit_0_same_verdicts"
        elif code == 2 and "Traceback" not in err and err.count("\n") == 1:
            outcome = "exit_2_clear_error"
        else:
            outcome = "wrong_or_crash"
            failures.append({"case": i, "kind": kind, "code": code, "stderr": err[-300:]})
        counts[outcome] += 1
        counts["by_kind"].setdefault(kind, {}).setdefault(outcome, 0)
        counts["by_kind"][kind][outcome] += 1
    shutil.rmtree(scratch, ignore_errors=True)
    result = {"bundle": str(bundle), "cases": cases, "seed": seed, **counts, "failures": failures[:20]}
    write_json(out / "corruption.json", result)
    return result


def _corrupt(case: Path, kind: str, rng: np.random.Generator) -> None:
    from edge.bundle import MODEL_FILE, SPEC_FILE

    if kind == "spec_field":
        spec = json.loads((case / SPEC_FILE).read_text())
        path, value = _field_edits(spec, rng)
        node = spec
        *parents, last = path.split(".")
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[int(last) if isinstance(node, list) else last] = value
        (case / SPEC_FILE).write_text(json.dumps(spec, allow_nan=True))
        return
    target = case / (MODEL_FILE if kind == "model_byte" else SPEC_FILE)
    raw = bytearray(target.read_bytes())
    raw[int(rng.integers(len(raw)))] = int(rng.integers(256))
    target.write_bytes(bytes(raw))
