"""The pretrained zoo (issue 6): a tiny real build, loading with sha256 checks, resume, the README table,
and the manifest's metrics re-evaluated through the code path of `aezoo evaluate`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # trains, compresses or converts models: the full suite runs it

from zoo import catalog, pretrained
from training.cli import main
from zoo.errors import UserError
from zoo.files import sha256_file

REPO = Path(__file__).resolve().parent.parent
# The tiny build runs on BasicMotions (real sensor series): seconds where a Fashion-MNIST entry takes a minute; the
# image entries are checked on the repository's zoo below (and the demo builds one).
DATASET, MODEL = "basic_motions", "conv1d_ae"
KEY = f"{MODEL}/{DATASET}/class_0"


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory) -> Path:
    """A real one-entry zoo: conv1d_ae on BasicMotions, class 0, 1 training epoch, built through the CLI (nap: int16x8)."""
    base = tmp_path_factory.mktemp("zoo")
    root = base / "saved_models"
    code = main(["zoo", "build", "--dataset", DATASET, "--models", MODEL, "--classes", "0", "--epochs", "1",
                 "--min-steps", "0", "--patience", "1", "--qat-epochs", "1", "--runs", str(base / "runs"), "--saved-models", str(root)])
    assert code == 0
    return root


@pytest.fixture
def damaged(tiny_zoo, tmp_path) -> Path:
    """A private copy of the tiny zoo that a test may damage."""
    copy = tmp_path / "saved_models"
    shutil.copytree(tiny_zoo, copy)
    return copy


def test_zoo_agreement_measures_again_what_the_build_recorded(damaged, capsys):
    """`aezoo zoo agreement` reassembles the float detector from the entry's files and measures the runtimes on the
    test split: the same bundle and data give the build's figures exactly, and the card and manifest stay in step."""
    recorded = json.loads((damaged / "manifest.json").read_text())["entries"][KEY]["agreement"]
    assert set(recorded["pairs"]) == {"litert_default vs litert_reference", "litert_default vs keras_float",
                                      "litert_reference vs keras_float"} and recorded["on"] == "the test split"
    assert main(["zoo", "agreement", "--saved-models", str(damaged)]) == 0
    assert "kernels agree on" in capsys.readouterr().out
    again = json.loads((damaged / "manifest.json").read_text())["entries"][KEY]
    assert again["agreement"] == recorded
    assert json.loads((damaged / KEY / "card.json").read_text())["agreement"] == recorded
    assert not catalog.entry_problems(again, damaged)


def test_build_writes_entry_and_manifest(tiny_zoo):
    manifest = json.loads((tiny_zoo / "manifest.json").read_text())
    assert list(manifest["entries"]) == [KEY]
    e = manifest["entries"][KEY]
    entry_dir = tiny_zoo / KEY
    assert sorted(e["files"]) == sorted(catalog.ENTRY_FILES)  # conv1d_ae scores with nap: score.npz is there
    for name, want in e["files"].items():
        assert (entry_dir / name).stat().st_size == want["bytes"]
    assert not catalog.entry_problems(e, tiny_zoo)
    assert sorted(e["metrics"]) == ["float", "iforest", "int16x8", "knn", "pca"]  # nap: int16x8, no QAT model
    for kind in e["metrics"]:
        assert 0.5 < e["metrics"][kind]["auroc"] <= 1 and 0 < e["metrics"][kind]["auprc"] <= 1
        assert 0 <= e["metrics"][kind]["recall_at_fpr"]["0.05"]["recall"] <= 1
    assert e["score"] == "nap" and e["quant"] == "int16x8" and e["threshold"]["int16x8"]["value"] > 0
    # 16-bit activations: XNNPACK and the reference kernels give the same scores, so the same verdicts.
    kernels = e["agreement"]["pairs"]["litert_default vs litert_reference"]
    assert kernels["verdicts_agree"] == 1.0 and kernels["score_diff_max_absolute"] == 0.0
    assert e["latency"]["detector"]["median"] > e["latency"]["invoke"]["median"] > 0 and e["latency"]["iterations"] >= 1000
    assert e["size"]["bundle_bytes"] <= 64 * 1024
    assert e["timing"]["entry_seconds"] > e["timing"]["train_session_seconds"] > 0
    assert e["seed"] == 0 and e["hyperparameters"]["train"]["epochs"] == 1 and e["hyperparameters"]["qat"] is None
    assert e["hyperparameters"]["model"]["latent_dim"] > 0
    assert "test labels chose nothing" in e["hyperparameter_selection"]
    for dist in ("tensorflow", "tf-keras", "tensorflow-model-optimization", "tensorflow-datasets"):
        assert e["versions"][dist]
    assert manifest["sessions"][-1]["built"] == 1 and manifest["total_entry_seconds"] > 0
    card = json.loads((entry_dir / "card.json").read_text())
    assert card["metrics"] == e["metrics"] and "post-training quantization" in card["description"]
    # Only the entry's files: no checkpoints, logs, plots or backups in saved_models.
    assert sorted(str(p.relative_to(tiny_zoo)) for p in tiny_zoo.rglob("*") if p.is_file()) == sorted(
        ["manifest.json"] + [f"{KEY}/{n}" for n in catalog.ENTRY_FILES])
    assert catalog.total_bytes(tiny_zoo) < catalog.MAX_TOTAL_BYTES


def test_load_and_from_zoo(tiny_zoo, monkeypatch):
    import zoo
    from edge import Detector

    monkeypatch.setenv(catalog.ENV, str(tiny_zoo))
    model = zoo.load(MODEL, dataset=DATASET, normal_class=0)
    assert model.name == MODEL and model.input_shape == (None, 64, 6)
    det = Detector.from_zoo(MODEL, dataset=DATASET, normal_class=0)
    e = zoo.list_pretrained()[0]
    assert det.threshold_ == e["threshold"]["int16x8"]["value"]
    with pytest.raises(UserError, match=rf"no pretrained entry {MODEL}/{DATASET}/class_3.*{MODEL}/{DATASET} classes \[0\]"):
        zoo.load(MODEL, dataset=DATASET, normal_class=3)
    with pytest.raises(UserError, match=f"Did you mean '{MODEL}'"):
        Detector.from_zoo(MODEL + "e", dataset=DATASET)


def test_from_zoo_runs_without_tensorflow(tiny_zoo):
    from conftest import run_without_tensorflow

    code = ("import numpy as np\n"
            "from edge import Detector\n"
            f"d = Detector.from_zoo({MODEL!r}, dataset={DATASET!r}, normal_class=0)\n"
            "print(d.score(np.zeros((3, 64, 6), np.float32)).shape)\n")
    assert run_without_tensorflow(code, env={**os.environ, catalog.ENV: str(tiny_zoo)}).strip() == "(3,)"


def _expect(exc, path: str, what: str, e: dict) -> None:
    msg = str(exc.value)
    assert path in msg and what in msg, msg
    assert e["files"][path.split(f"{KEY}/")[1]]["sha256"] in msg
    assert f"aezoo zoo build --dataset {DATASET} --models {MODEL} --classes 0" in msg and "git checkout" in msg


def test_altered_truncated_missing_files_are_refused(damaged):
    import zoo
    from edge import Detector

    e = catalog.get_entry(MODEL, DATASET, root=damaged)
    tfl = damaged / KEY / "detector" / "model.tflite"
    data = bytearray(tfl.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tfl.write_bytes(bytes(data))
    with pytest.raises(UserError) as exc:
        Detector.from_zoo(MODEL, DATASET, root=damaged)
    _expect(exc, f"{KEY}/detector/model.tflite", "altered", e)
    assert sha256_file(tfl) in str(exc.value)  # the actual hash

    keras_file = damaged / KEY / "model.keras"
    keras_file.write_bytes(keras_file.read_bytes()[:1000])
    with pytest.raises(UserError) as exc:
        zoo.load(MODEL, dataset=DATASET, root=damaged)
    _expect(exc, f"{KEY}/model.keras", "truncated", e)

    (damaged / KEY / "detector" / "detector.json").unlink()
    with pytest.raises(UserError) as exc:
        Detector.from_zoo(MODEL, DATASET, root=damaged)
    _expect(exc, f"{KEY}/detector/detector.json", "missing", e)

    assert len(catalog.check_entry(KEY, damaged)) == 3  # so `zoo build` would rebuild it
    assert main(["zoo", "verify", "--saved-models", str(damaged)]) == 2


def test_a_forced_int8_build_reuses_the_entrys_float_model(damaged, tmp_path, capsys):
    """`--force --quant int8` without a run folder: the entry's own float model is QAT fine-tuned into an int8
    detector; nothing is trained again (the float figures and model.keras stay as they were)."""
    before = json.loads((damaged / "manifest.json").read_text())["entries"][KEY]
    code = main(["zoo", "build", "--dataset", DATASET, "--models", MODEL, "--classes", "0", "--epochs", "1",
                 "--min-steps", "0", "--patience", "1", "--qat-epochs", "1", "--quant", "int8", "--force",
                 "--runs", str(tmp_path / "no_runs"), "--saved-models", str(damaged)])
    assert code == 0, capsys.readouterr().err
    e = json.loads((damaged / "manifest.json").read_text())["entries"][KEY]
    assert e["quant"] == "int8" and sorted(e["metrics"]) == ["float", "iforest", "int8", "knn", "pca", "qat"]
    assert e["training"]["how"] == "reused the entry's float model" and not (tmp_path / "no_runs").exists()
    assert e["metrics"]["float"] == before["metrics"]["float"] and e["files"]["model.keras"] == before["files"]["model.keras"]
    assert e["hyperparameters"]["qat"]["method"] == "qat" and e["threshold"]["int8"]["value"] > 0
    assert not catalog.entry_problems(e, damaged)


def test_a_second_build_skips_the_complete_entry(tiny_zoo, capsys):
    before = json.loads((tiny_zoo / "manifest.json").read_text())["entries"]
    code = main(["zoo", "build", "--dataset", DATASET, "--models", MODEL, "--classes", "0", "--epochs", "1", "--min-steps", "0",
                 "--patience", "1", "--qat-epochs", "1",
                 "--runs", str(tiny_zoo.parent / "runs"), "--saved-models", str(tiny_zoo)])
    assert code == 0
    assert "built 0 entries, skipped 1" in capsys.readouterr().out
    after = json.loads((tiny_zoo / "manifest.json").read_text())
    assert after["entries"] == before and after["sessions"][-1]["skipped"] == 1
    assert main(["zoo", "verify", "--saved-models", str(tiny_zoo)]) == 0


def test_list_and_table(tiny_zoo, tmp_path, capsys):
    assert main(["zoo", "list", "--saved-models", str(tiny_zoo)]) == 0
    out = capsys.readouterr().out
    e = catalog.get_entry(MODEL, DATASET, root=tiny_zoo)
    assert KEY in out and f"{e['metrics']['int16x8']['auroc']:.4f}" in out
    table = pretrained.zoo_table(root=tiny_zoo)
    assert f"| {MODEL} | nap (int16x8) | {e['metrics']['int16x8']['auroc']:.3f} |" in table
    assert f"| PCA (90% variance) | reconstruction error | {e['metrics']['pca']['auroc']:.3f} |" in table
    assert f"| kNN (k=5) | distance | {e['metrics']['knn']['auroc']:.3f} |" in table
    assert f"| IsolationForest (200 trees) | path length | {e['metrics']['iforest']['auroc']:.3f} |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Pretrained zoo\n\n{pretrained.TABLE_START}\nold\n{pretrained.TABLE_END}\n\nrest\n")
    assert main(["zoo", "table", "--saved-models", str(tiny_zoo), "--write", str(readme)]) == 0
    assert pretrained.readme_table(readme) == table.strip()
    assert readme.read_text().endswith("\n\nrest\n")
    assert not pretrained.write_readme_table(readme, table)  # already up to date


def test_readme_table_matches_the_manifest():
    readme = REPO / "README.md"
    section = pretrained.readme_table(readme)  # the markers exist in any case
    root = REPO / "saved_models"
    manifest = catalog.read_manifest(root)
    if not manifest["entries"]:
        pytest.skip("saved_models/manifest.json has no entries yet")
    assert section == pretrained.zoo_table(manifest).strip(), "README zoo table is stale: run `aezoo zoo table --write README.md`"


@pytest.mark.slow
@pytest.mark.parametrize("which", ["tiny", "repo"])
def test_manifest_metrics_reproduce_with_aezoo_evaluate_code(which, tiny_zoo, fashion_mnist_ready):
    """Re-evaluate one entry's device detector (seeded pick) on the real test split: it gives the manifest's numbers."""
    from edge import Detector
    from training.data import one_class_split
    from training.evaluate import OnDevice, evaluate_split

    root = tiny_zoo if which == "tiny" else REPO / "saved_models"
    records = catalog.list_pretrained(root=root)
    if not records:
        pytest.skip(f"{root} has no entries yet")
    sample = [records[i] for i in sorted(set(np.random.default_rng(0).choice(len(records), 1, replace=False)))]
    for e in sample:
        det = Detector.from_zoo(e["model"], dataset=e["dataset"], normal_class=e["normal_class"], root=root)
        split = one_class_split(e["dataset"], e["normal_class"])
        report = evaluate_split(OnDevice(det), split, plots=False)  # raw inputs, as a device passes them
        for key in ("auroc", "auprc", "f1", "fpr"):
            assert report["model"][key] == pytest.approx(e["metrics"][catalog.device_key(e)][key], abs=1e-9), (e["path"], key)
        for baseline in ("pca", "knn"):
            assert report[baseline]["auroc"] == pytest.approx(e["metrics"][baseline]["auroc"], abs=1e-9)


@pytest.mark.parametrize("edit, match", [
    (lambda m: m["entries"][KEY].pop("files"), "lacks 'files'"),
    (lambda m: m["entries"][KEY]["metrics"].__setitem__("int16x8", 0.9), "metrics\\['int16x8'\\]"),
    (lambda m: m["entries"][KEY]["metrics"].pop("int16x8"), "no metrics and threshold of its device detector"),
    (lambda m: m["entries"][KEY].__setitem__("path", "../../etc"), "has path"),
    (lambda m: m["entries"][KEY]["files"].__setitem__("/etc/hostname", {"sha256": "0" * 64, "bytes": 1}), "not an entry's own"),
    (lambda m: m["entries"][KEY]["files"].__setitem__("../../x", {"sha256": "0" * 64, "bytes": 1}), "not an entry's own"),
])
def test_a_malformed_manifest_is_refused(damaged, edit, match, capsys):
    manifest = json.loads((damaged / "manifest.json").read_text())
    edit(manifest)
    (damaged / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=match):
        catalog.list_pretrained(root=damaged)
    for argv in (["zoo", "verify"], ["zoo", "list"], ["zoo", "table"]):
        assert main([*argv, "--saved-models", str(damaged)]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "restore the manifest" in err


def test_checks_that_would_pass_on_nothing_fail(tmp_path, capsys):
    assert main(["zoo", "verify", "--saved-models", str(tmp_path / "typo")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["zoo", "verify", "--saved-models", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert main(["zoo", "list", "--saved-models", str(tmp_path / "afile")]) == 2
    assert "is a file" in capsys.readouterr().err
    with pytest.raises(UserError, match="normal_class must be an integer"):
        catalog.get_entry("conv_ae", normal_class=1.7)


def test_the_build_refuses_a_finished_run_of_other_settings(tiny_zoo, capsys):
    """The runs folder holds a finished run made with 1 epoch: asking for 2 epochs must not silently reuse it."""
    code = main(["zoo", "build", "--dataset", DATASET, "--models", MODEL, "--classes", "0", "--epochs", "2", "--min-steps", "0",
                 "--qat-epochs", "1", "--force",
                 "--runs", str(tiny_zoo.parent / "runs"), "--saved-models", str(tiny_zoo.parent / "other")])
    assert code == 2 and "trained with other settings" in capsys.readouterr().err
