"""Training runs, resume, the step budget, the training checks, evaluation and their CLI, on the real Fashion-MNIST."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from training.cli import main

RUN_FILES = ("model.keras", "config.json", "history.json", "threshold.json", "metrics.json")
PLOTS = ("reconstructions.png", "score_histogram.png", "roc.png", "training_curves.png", "latent_space.png")


@pytest.fixture(scope="module")
def trouser_split(fashion_mnist_ready):
    from training.data import one_class_split

    return one_class_split("fashion_mnist", 1)


@pytest.fixture(scope="module")
def small_trouser(trouser_split):
    """1,280 training images and 3,000 test images of the class-1 split: cheap runs."""
    s = trouser_split
    return dataclasses.replace(s, x_train=s.x_train[:1280], x_test=s.x_test[:3000], y_test=s.y_test[:3000],
                               test_labels=s.test_labels[:3000])


@pytest.fixture(scope="module")
def trouser_run(fashion_mnist_ready, tmp_path_factory):
    """A short real run through the CLI: conv_ae, class 1 (trouser), 3 epochs."""
    out = tmp_path_factory.mktemp("runs") / "trouser"
    code = main(["train", "--model", "conv_ae", "--dataset", "fashion_mnist", "--normal-class", "1",
                 "--epochs", "3", "--min-steps", "0", "--patience", "2", "--seed", "0", "--quiet", "--out", str(out)])
    assert code == 0
    return out


@pytest.mark.slow
def test_short_run_beats_0_9_and_writes_every_file(trouser_run):
    for name in RUN_FILES:
        assert (trouser_run / name).is_file(), name
    for name in PLOTS:
        assert (trouser_run / "plots" / name).stat().st_size > 10_000, name
    assert list((trouser_run / "checkpoints").glob("epoch_*.h5"))
    assert list((trouser_run / "logs" / "train").glob("events.out.tfevents.*"))
    assert list((trouser_run / "logs" / "validation").glob("events.out.tfevents.*"))
    assert not (trouser_run / "backup").exists()  # removed once the run is finished
    assert (trouser_run / "score.npz").is_file()  # conv_ae scores with nap by default: its fitted whitening
    metrics = json.loads((trouser_run / "metrics.json").read_text())
    assert metrics["model"]["auroc"] > 0.9 and metrics["score"] == "nap"
    assert metrics["pca"]["auroc"] > 0.9 and metrics["pca"]["n_components"] > 1 and metrics["knn"]["auroc"] > 0.9
    assert 0 <= metrics["model"]["recall_at_fpr"]["0.05"]["recall"] <= 1
    assert {r["name"] for r in metrics["model"]["per_class"]} >= {"Trouser", "Shirt"}
    assert set(metrics["checks"]) >= {"val_mse", "pca_val_mse", "better_than_pca", "warnings"}
    thr = json.loads((trouser_run / "threshold.json").read_text())
    assert thr["score"]["kind"] == "nap" and thr["method"] == "percentile" and thr["value"] > 0
    # The threshold is calibrated on normal data only: about 1% of normal test images exceed it.
    assert metrics["model"]["fpr"] < 0.05
    hist = json.loads((trouser_run / "history.json").read_text())
    # 43 steps per epoch: patience 2 is raised so that early stopping waits at least 100 steps.
    assert hist["budget"]["max_epochs"] == 3 and hist["budget"]["patience_epochs"] == 3
    assert "patience raised" in hist["budget"]["reason"]
    assert len(hist["val_loss"]) == hist["epochs_run"] and hist["images_per_second"] > 0


@pytest.mark.slow
def test_config_round_trip_and_load_run(trouser_run):
    from training import TrainConfig, load_run

    detector, config = load_run(trouser_run)
    assert config == TrainConfig.from_json(config.to_json())
    assert (config.model, config.normal_class, config.epochs, config.seed, config.score) == ("conv_ae", 1, 3, 0, "nap")
    assert detector.model_.name == "conv_ae"
    saved = json.loads((trouser_run / "threshold.json").read_text())
    assert detector.threshold_ == saved["value"]
    # The whole threshold record comes back (its own score_mean / score_std too), not only the value.
    assert detector.threshold_record_ == {k: v for k, v in saved.items() if k != "score"}
    assert {"score_mean", "score_std", "method", "percentile"} <= set(detector.threshold_record_)
    # One score record: threshold.json's is the bundle's and Score.to_dict's.
    assert saved["score"] == detector.score_.to_dict() and set(saved["score"]) == {"kind", "options", "params"}


def test_a_threshold_record_in_the_flat_shape_of_earlier_runs_still_loads(tiny_mse_run, tmp_path):
    import shutil

    from training import load_run

    old = tmp_path / "old"
    shutil.copytree(tiny_mse_run, old)
    record = json.loads((old / "threshold.json").read_text())
    score = record.pop("score")
    (old / "threshold.json").write_text(json.dumps({"score": score["kind"], "score_options": score["options"],
                                                    "score_params": score["params"], **record}))
    detector, _ = load_run(old)
    assert detector.score_.to_dict() == score and detector.threshold_record_ == record


def test_a_run_folder_is_refused_when_its_model_is_another_variant(trouser_run, tmp_path):
    """config.json and model.keras of two variants (a folder mixed by hand) would export under the wrong name."""
    import shutil

    from training import load_run
    from zoo.errors import UserError

    mixed = tmp_path / "mixed"
    shutil.copytree(trouser_run, mixed)
    config = json.loads((mixed / "config.json").read_text())
    (mixed / "config.json").write_text(json.dumps({**config, "model": "conv_vae"}))
    with pytest.raises(UserError, match="its config names the variant 'conv_vae', its model.keras holds 'conv_ae'"):
        load_run(mixed)


def test_a_relative_dataset_path_is_recorded_absolute(tmp_path, monkeypatch):
    """A run trained with --dataset data.csv from one folder is evaluated and exported from any other."""
    from training import TrainConfig

    (tmp_path / "data.csv").write_text("a,b\n1,2\n3,4\n")
    monkeypatch.chdir(tmp_path)
    config = TrainConfig(dataset="data.csv", test_data="data.csv").resolved()
    assert config.dataset == config.test_data == str(tmp_path / "data.csv")
    assert TrainConfig(dataset="fashion_mnist").resolved().dataset == "fashion_mnist"


@pytest.mark.slow
def test_evaluate_reproduces_the_run(trouser_run, tmp_path, capsys):
    assert main(["evaluate", str(trouser_run), "--out", str(tmp_path), "--no-plots"]) == 0
    assert "AUROC" in capsys.readouterr().out
    trained = json.loads((trouser_run / "metrics.json").read_text())
    evaluated = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("auroc", "auprc", "precision", "recall", "f1", "fpr", "threshold"):
        assert evaluated["model"][key] == pytest.approx(trained["model"][key], abs=1e-6), key
    for baseline in ("pca", "knn"):
        assert evaluated[baseline]["auroc"] == pytest.approx(trained[baseline]["auroc"], abs=1e-6)


@pytest.mark.slow
def test_evaluate_a_keras_file_fits_its_score_on_normal_data(trouser_run, trouser_split, tmp_path):
    from training import evaluate_path

    with pytest.warns(UserWarning, match="no stored score"):
        report = evaluate_path(trouser_run / "model.keras", normal_class=1, score_kind="mse", out=tmp_path,
                               split=trouser_split, plots=False, verbose=False)
    assert report["score"] == "mse" and report["model"]["auroc"] > 0.9


@pytest.mark.slow
def test_every_score_kind_through_the_detector(trouser_run, trouser_split):
    from training import AutoencoderDetector, load_run
    from zoo.errors import UserError

    detector, _ = load_run(trouser_run)
    x = trouser_split.x_test[:16]
    from training.scores import score_kinds

    for kind in score_kinds():  # every registered kind: a new one is tested without editing this list
        if kind == "elbo":  # needs a variational model: refused for the conv_ae, tested on a VAE below
            with pytest.raises(UserError, match="variational"):
                AutoencoderDetector(network=detector.model_, score="elbo").calibrate(trouser_split.x_train[:100],
                                                                                     trouser_split.x_val)
            continue
        det = AutoencoderDetector(network=detector.model_, score=kind).calibrate(trouser_split.x_train[:500], trouser_split.x_val)
        s = det.decision_function(x)
        assert s.shape == (16,) and np.all(np.isfinite(s)) and np.all(s >= 0) and det.threshold_ > 0


def test_elbo_score_of_a_vae_matches_zoo_negative_elbo():
    import zoo
    from training import AutoencoderDetector

    model = zoo.build("conv_vae")
    x = np.random.default_rng(0).random((8, 28, 28, 1)).astype(np.float32)
    det = AutoencoderDetector(network=model, score="elbo").calibrate(x, x)
    np.testing.assert_allclose(det.decision_function(x), zoo.negative_elbo(model, x), rtol=1e-5)


class _Interrupt(Exception):
    pass


@pytest.mark.slow
def test_resume_continues_from_the_checkpoint(small_trouser, tmp_path, monkeypatch):
    from zoo.errors import UserError

    from zoo.keras import keras
    from training import fit, trainer
    from training.config import TrainConfig

    monkeypatch.setattr(fit, "BACKUP_EVERY_BATCHES", 4)  # 10 batches per epoch: backups after batches 4 and 8

    class Crash(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 8:  # mid-epoch, just after the second backup of epoch 2
                raise _Interrupt

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    class Seen(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs, self.first_batch = [], None

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append(epoch)

        def on_train_batch_begin(self, batch, logs=None):
            if self.first_batch is None:
                self.first_batch = batch

    cfg = TrainConfig(model="conv_ae", score="mse", normal_class=1, epochs=4, min_steps=0, batch_size=128, seed=0)
    out = tmp_path / "run"
    with pytest.raises(_Interrupt):
        trainer.train(cfg, out=out, split=small_trouser, callbacks=[Crash()], verbose=0, plots=False)
    assert (out / "backup").is_dir() and not (out / "model.keras").exists() and not (out / ".lock").exists()
    with pytest.raises(UserError, match="only epochs may change"):
        trainer.train(out=out, resume=True, lr=0.5, split=small_trouser, verbose=0)
    seen = Seen()
    resumed = trainer.train(out=out, resume=True, split=small_trouser, callbacks=[seen], verbose=0, plots=False)
    assert seen.epochs == [1, 2, 3]  # the epoch counter continues
    assert seen.first_batch == 8  # inside epoch 2, after the last backed-up batch
    assert resumed.history["epoch"] == [0, 1, 2, 3]
    assert resumed.history["val_loss"][-1] < resumed.history["val_loss"][0]

    plain = trainer.train(cfg, out=tmp_path / "plain", split=small_trouser, verbose=0, plots=False)
    assert resumed.metrics["model"]["auroc"] == pytest.approx(plain.metrics["model"]["auroc"], abs=0.03)
    assert resumed.history["val_loss"][-1] == pytest.approx(plain.history["val_loss"][-1], rel=0.15)

    again = trainer.train(cfg, out=tmp_path / "again", split=small_trouser, verbose=0, plots=False)
    # The same config and data train the same model: seeded, deterministic ops.
    assert again.history["val_loss"] == plain.history["val_loss"]
    assert again.metrics["model"]["auroc"] == plain.metrics["model"]["auroc"]

    with pytest.raises(UserError, match="already finished"):
        trainer.train(out=out, resume=True, split=small_trouser, verbose=0)
    with pytest.raises(UserError, match="already holds a run"):
        trainer.train(cfg, out=out, split=small_trouser, verbose=0)


@pytest.mark.slow
def test_train_all_writes_the_summary(fashion_mnist_ready, tmp_path, monkeypatch):
    from training import data, train_all

    full = data.one_class_split
    # Each class's own split, cut to a tenth: train_all's loop and summary are what this tests, not the figures.
    monkeypatch.setattr(data, "one_class_split", lambda source, k, *a, **kw: dataclasses.replace(
        s := full(source, k, *a, **kw), x_train=s.x_train[:1024], x_val=s.x_val[:128], x_test=s.x_test[:2000],
        y_test=s.y_test[:2000], test_labels=s.test_labels[:2000]))
    summary = train_all(model="dense_ae", epochs=1, min_steps=0, out=tmp_path, classes=[1, 8], plots=False)
    assert [r["class"] for r in summary["classes"]] == [1, 8]
    assert 0.5 < summary["model_mean_auroc"] <= 1 and summary["model_min_auroc"] <= summary["model_mean_auroc"]
    # The baselines are deterministic: on these cut splits PCA and kNN reach 0.986 / 0.989 (trouser) and 0.848 / 0.873
    # (bag), as on the full protocol; a broken baseline falls far below.
    low = {1: 0.95, 8: 0.8}
    assert all(r["images_per_second"] > 0 and r["pca_auroc"] > low[r["class"]] and r["knn_auroc"] > low[r["class"]]
               for r in summary["classes"])
    md = (tmp_path / "summary.md").read_text()
    assert "| 8 | Bag |" in md and "**mean**" in md and "kNN AUROC" in md
    assert json.loads((tmp_path / "summary.json").read_text())["classes"][1]["name"] == "Bag"
    assert (tmp_path / "class_1" / "model.keras").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--model", "conv_aee", "--out", "{tmp}/a"], "Unknown model"),
        (["train", "--normal-class", "12", "--out", "{tmp}/a"], "0..9"),
        (["train", "--normal-class", "shirt", "--out", "{tmp}/a"], "a comma-separated list"),
        (["train", "--dataset", "imagenet42", "--out", "{tmp}/a"], "imagenet42"),
        (["train", "--epochs", "ten", "--out", "{tmp}/a"], "--epochs"),
        (["train", "--lr", "fast"], "--lr"),
        (["train", "--param", "latent_dim"], "key=value"),
        (["train", "--resume", "--out", "{tmp}/nothing"], "config.json"),
        (["evaluate", "{tmp}/nothing"], "expected an existing run folder"),
        (["evaluate", "{tmp}/broken"], "missing model.keras"),
        (["train", "--model", "dense_ae", "--score", "elbo", "--epochs", "1", "--out", "{tmp}/elbo"], "variational"),
        (["train", "--score-option", "pool=huge", "--out", "{tmp}/a"], "pool must be one of"),
        (["train", "--score-option", "colour=1", "--out", "{tmp}/a"], "has no option"),
        (["train", "--param", "latnt_dim=3", "--out", "{tmp}/a"], "Did you mean 'latent_dim'"),
        (["train", "--out", "{tmp}/afile"], "is a file"),
        (["evaluate", "{tmp}/broken", "--normal-class", "x"], "--normal-class"),
    ],
)
@pytest.mark.slow
def test_bad_input_exits_2_without_traceback(argv, message, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model": "conv_ae"}))
    (tmp_path / "afile").write_text("mine")
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse rejects malformed flags itself, also with exit code 2
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "a refused command left something behind"


@pytest.mark.slow
def test_evaluate_a_tflite_bundle(trouser_run, trouser_split, tmp_path):
    from training import evaluate_path
    from training.convert import export_run

    export_run(trouser_run, tmp_path / "bundle", quant="float32")
    report = evaluate_path(tmp_path / "bundle", out=tmp_path / "eval", split=trouser_split, plots=False, verbose=False)
    trained = json.loads((trouser_run / "metrics.json").read_text())
    assert report["model"]["auroc"] == pytest.approx(trained["model"]["auroc"], abs=0.002)


def test_evaluate_refuses_an_all_classes_run(tmp_path, capsys):
    import zoo
    from training.config import TrainConfig

    run = tmp_path / "allclasses"
    run.mkdir()
    (run / "config.json").write_text(TrainConfig(model="dense_ae", all_classes=True).to_json())
    (run / "threshold.json").write_text(json.dumps({"score": "mse", "method": "percentile", "value": 0.1}))
    zoo.build("dense_ae").save(str(run / "model.keras"))
    assert main(["evaluate", str(run), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "trained on all classes" in err and "Traceback" not in err


def test_budget_adapts_to_the_data():
    from training.config import DetectorConfig
    from training.fit import budget

    small = budget(DetectorConfig(epochs=30, batch_size=128, min_steps=1000, patience=5), 100)
    # One step per pass: an epoch passes 32 times over the data, 32 epochs reach the 1,000-step floor, and the
    # patience is still at least 100 steps (4 epochs of 32).
    assert (small.batch_size, small.passes_per_epoch, small.steps_per_epoch) == (100, 32, 32)
    assert (small.epochs, small.patience) == (32, 4)
    assert "batch 128 > 100" in small.reason and "min_steps" in small.reason and "32 times" in small.reason
    odd = budget(DetectorConfig(epochs=30, batch_size=128, min_steps=1000, patience=5), 150)  # 2 steps per pass
    assert (odd.passes_per_epoch, odd.steps_per_epoch, odd.epochs) == (16, 19, 53)  # 53 x 19 >= 1,000 steps
    quick = budget(DetectorConfig(epochs=1, batch_size=128, min_steps=0, patience=5), 100)  # what was asked: one pass
    assert (quick.passes_per_epoch, quick.steps_per_epoch, quick.epochs) == (1, 1, 1)
    big = budget(DetectorConfig(epochs=30, batch_size=128, min_steps=1000, patience=5), 5400)
    assert (big.batch_size, big.steps_per_epoch, big.epochs, big.patience) == (128, 43, 30, 5)


@pytest.mark.slow
def test_training_checks_say_when_pca_reconstructs_better(small_trouser):
    from training.baselines import PCABaseline
    from training.detector import AutoencoderDetector
    from training.evaluate import training_checks

    untrained = AutoencoderDetector(model="dense_ae", score="mse", epochs=1, min_steps=0, batch_size=1024)
    untrained.fit(small_trouser.x_train[:1024], small_trouser.x_val)
    pca = PCABaseline().fit(small_trouser.x_train, small_trouser.x_val)
    checks = training_checks(untrained, pca, small_trouser, {"still_improving": True, "epochs_run": 1, "steps_run": 1})
    assert checks["better_than_pca"] is False and checks["val_mse"] > checks["pca_val_mse"]
    assert checks["code_size"] == 16 and checks["pca_components"] == min(16, pca.n_components_)
    assert any("worse than a PCA with as many components as its code" in w for w in checks["warnings"]) and any("still falling" in w for w in checks["warnings"])
    trained = AutoencoderDetector(model="dense_ae", score="mse", epochs=15, min_steps=600)
    trained.fit(small_trouser.x_train, small_trouser.x_val)
    weak_pca = PCABaseline(variance=0.3).fit(small_trouser.x_train, small_trouser.x_val)
    quiet = training_checks(trained, weak_pca, small_trouser, trained.history_)
    assert quiet["better_than_pca"] is True and not any("PCA" in w for w in quiet["warnings"])


def test_a_locked_run_folder_refuses_a_second_writer(tmp_path):
    import os

    from training.runs import Run
    from zoo.errors import UserError

    run = Run(tmp_path / "r")
    with run.lock():
        with pytest.raises(UserError, match=f"PID {os.getpid()}"):
            with Run(tmp_path / "r").lock():
                pass
    (tmp_path / "r" / ".lock").write_text("999999999")  # a lock whose process is gone: stale, taken over
    with run.lock():
        assert (tmp_path / "r" / ".lock").read_text() == str(os.getpid())
    assert not (tmp_path / "r" / ".lock").exists()


@pytest.mark.slow
def test_two_trainings_into_one_folder_the_second_refuses(fashion_mnist_ready, tmp_path, capsys):
    import subprocess
    import sys
    import time

    out = tmp_path / "r"
    first = subprocess.Popen([sys.executable, "-m", "training.cli", "train", "--model", "dense_ae", "--normal-class", "1",
                              "--epochs", "40", "--min-steps", "0", "--no-plots", "--quiet", "--out", str(out)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if (out / ".lock").exists() or first.poll() is not None:
                break
            time.sleep(0.1)
        assert (out / ".lock").exists(), first.stderr.read() if first.poll() is not None else "no lock taken"
        for extra in ([], ["--resume"]):
            code = main(["train", "--model", "dense_ae", "--normal-class", "1", "--epochs", "1", "--out", str(out), *extra])
            assert code == 2
            assert "being written by another aezoo process" in capsys.readouterr().err
    finally:
        first.kill()
        first.wait()


def test_cli_exit_codes_for_ctrl_c_and_a_missing_package(monkeypatch, capsys):
    from training.cli import main as cli_main
    from training.cli import data as data_cli

    def interrupted(args):
        raise KeyboardInterrupt

    def missing(args):
        raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")

    def bug(args):
        raise TypeError("unexpected")

    for fn, code, text in ((interrupted, 130, "interrupted"), (missing, 2, "needs the package 'tensorflow'"),
                           (bug, 1, "internal error (a bug")):
        monkeypatch.setattr(data_cli, "_info", fn)
        assert cli_main(["data", "info", "fashion_mnist"]) == code
        err = capsys.readouterr().err
        assert text in err and "Traceback" not in err
    monkeypatch.setenv("AEZOO_DEBUG", "1")
    assert cli_main(["data", "info", "fashion_mnist"]) == 1
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.slow
def test_a_small_folder_trains_in_a_few_long_epochs_with_its_step_budget_recorded(tmp_path):
    """About 100 images per class: a 320-step floor runs as 10 Keras epochs of 32 steps (each a validation
    pass), not 320 one-step epochs, and history.json says why."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "parts"
    for split, n in (("train", 100), ("test", 20)):
        for label, level in (("good", 60), ("bad", 190)):
            (root / split / label).mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(rng.normal(level, 25, (12, 12)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels, "L").save(root / split / label / f"{i}.png")
    out = tmp_path / "run"
    assert main(["train", "--model", "dense_ae", "--dataset", str(root), "--normal-class", "1", "--score", "mse",  # 1: good (sorted)
                 "--epochs", "5", "--min-steps", "320", "--quiet", "--no-plots", "--out", str(out)]) == 0
    hist = json.loads((out / "history.json").read_text())
    b = hist["budget"]
    assert b["batch_size"] == 90 and b["passes_per_epoch"] == 32 and b["steps_per_epoch"] == 32
    assert b["max_epochs"] == 10 and b["max_steps"] == 320 and "32 times" in b["reason"]
    assert 4 <= hist["epochs_run"] <= 10 and hist["steps_run"] == 32 * hist["epochs_run"]
    assert json.loads((out / "metrics.json").read_text())["model"]["auroc"] > 0.9


def test_progress_is_one_line_per_epoch_in_a_log_and_a_bar_on_a_terminal(monkeypatch):
    """Keras's bar rewrites itself with carriage returns hundreds of times an epoch: in a file or CI log "auto"
    is Keras's one-line-per-epoch mode (2); on a terminal the bar (1); an explicit verbosity is kept."""
    import sys

    from training.fit import keras_verbosity

    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    assert keras_verbosity("auto") == 2
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert keras_verbosity("auto") == 1
    assert keras_verbosity(0) == 0 and keras_verbosity(1) == 1


def test_a_logged_train_and_train_all_write_plain_lines_counted(tmp_path, capfd):
    """`aezoo train` into a file (no terminal): no carriage return, at most 2 lines per epoch (Keras's epoch line
    and "Epoch N/M"); a loop over classes prints one plain progress line per class instead of a redrawn bar."""
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((300, 2)) @ rng.standard_normal((2, 6))
    csv = tmp_path / "v.csv"
    np.savetxt(csv, rows, delimiter=",", header=",".join(f"f{j}" for j in range(6)), comments="", fmt="%.5f")
    capfd.readouterr()
    assert main(["train", "--model", "dense_ae", "--dataset", str(csv), "--score", "mse", "--epochs", "3",
                 "--min-steps", "0", "--patience", "5", "--no-plots", "--out", str(tmp_path / "run")]) == 0
    out, err = capfd.readouterr()
    assert "\r" not in out + err
    epochs = json.loads((tmp_path / "run" / "history.json").read_text())["epochs_run"]
    epoch_lines = [line for line in (out + err).splitlines() if "loss" in line and "val_loss" in line or line.startswith("Epoch ")]
    assert epochs == 3 and 3 <= len(epoch_lines) <= 2 * epochs, epoch_lines

    from training.progress import progress

    for k in progress(range(3), desc="classes", unit="class"):
        pass
    assert capfd.readouterr().err.splitlines() == [f"classes: class {n} of 3 (0 s)" for n in (1, 2, 3)]
