"""Training, resume, evaluation and the CLI of issue 4, on the real Fashion-MNIST."""

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
                 "--epochs", "3", "--seed", "0", "--quiet", "--out", str(out)])
    assert code == 0
    return out


def test_short_run_beats_0_9_and_writes_every_file(trouser_run):
    for name in RUN_FILES:
        assert (trouser_run / name).is_file(), name
    for name in PLOTS:
        assert (trouser_run / "plots" / name).stat().st_size > 10_000, name
    assert list((trouser_run / "checkpoints").glob("epoch_*.h5"))
    assert list((trouser_run / "logs" / "train").glob("events.out.tfevents.*"))
    assert list((trouser_run / "logs" / "validation").glob("events.out.tfevents.*"))
    assert not (trouser_run / "backup").exists()  # removed once the run is finished
    metrics = json.loads((trouser_run / "metrics.json").read_text())
    assert metrics["model"]["auroc"] > 0.9
    assert metrics["pca"]["auroc"] > 0.9 and metrics["pca"]["n_components"] > 1
    assert {r["name"] for r in metrics["model"]["per_class"]} >= {"Trouser", "Shirt"}
    thr = json.loads((trouser_run / "threshold.json").read_text())
    assert thr["score"] == "mse" and thr["method"] == "percentile" and thr["value"] > 0
    # The threshold is calibrated on normal data only: about 1% of normal test images exceed it.
    assert metrics["model"]["fpr"] < 0.05
    hist = json.loads((trouser_run / "history.json").read_text())
    assert hist["epoch"] == [0, 1, 2] and len(hist["val_loss"]) == 3 and hist["images_per_second"] > 0


def test_config_round_trip_and_load_run(trouser_run):
    from training import TrainConfig, load_run

    model, config, thr = load_run(trouser_run)
    assert config == TrainConfig.from_json(config.to_json())
    assert (config.model, config.normal_class, config.epochs, config.seed) == ("conv_ae", 1, 3, 0)
    assert model.name == "conv_ae"
    assert thr["value"] == json.loads((trouser_run / "threshold.json").read_text())["value"]


def test_evaluate_reproduces_the_run(trouser_run, tmp_path, capsys):
    assert main(["evaluate", str(trouser_run), "--dataset", "fashion_mnist", "--normal-class", "1",
                 "--out", str(tmp_path), "--no-plots"]) == 0
    assert "AUROC" in capsys.readouterr().out
    trained = json.loads((trouser_run / "metrics.json").read_text())
    evaluated = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("auroc", "auprc", "precision", "recall", "f1", "fpr", "threshold"):
        assert evaluated["model"][key] == pytest.approx(trained["model"][key], abs=1e-6), key
    assert evaluated["pca"]["auroc"] == pytest.approx(trained["pca"]["auroc"], abs=1e-6)


def test_evaluate_a_keras_file(trouser_run, trouser_split, tmp_path):
    from training import evaluate_path

    report = evaluate_path(trouser_run / "model.keras", normal_class=1, out=tmp_path, split=trouser_split,
                           plots=False, verbose=False)
    trained = json.loads((trouser_run / "metrics.json").read_text())
    assert report["model"]["auroc"] == pytest.approx(trained["model"]["auroc"], abs=1e-6)


def test_score_kinds_on_a_model(trouser_run, trouser_split):
    from training import load_run, score
    from zoo.errors import UserError

    model, _, _ = load_run(trouser_run)
    x = trouser_split.x_test[:16]
    for kind in ("mse", "mae", "ssim"):
        s = score(model, x, kind, batch_size=5)
        assert s.shape == (16,) and np.all(np.isfinite(s)) and np.all(s >= 0)
    with pytest.raises(UserError, match="variational"):
        score(model, x, "elbo")


def test_elbo_score_of_a_vae(fashion_mnist_ready):
    import zoo
    from training import score

    if "conv_vae" not in zoo.list_models():
        pytest.skip("no conv_vae in the zoo")
    x = np.random.default_rng(0).random((8, 28, 28, 1)).astype(np.float32)
    s = score(zoo.build("conv_vae"), x, "elbo", batch_size=3)
    assert s.shape == (8,) and np.all(np.isfinite(s))


class _Interrupt(Exception):
    pass


def test_resume_continues_from_the_checkpoint(small_trouser, tmp_path, monkeypatch):
    from zoo.keras import keras
    from training import fit

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

    cfg = fit.TrainConfig(model="conv_ae", normal_class=1, epochs=4, batch_size=128, seed=0)
    out = tmp_path / "run"
    with pytest.raises(_Interrupt):
        fit.train(cfg, out=out, split=small_trouser, callbacks=[Crash()], verbose=0, plots=False)
    assert (out / "backup").is_dir() and not (out / "model.keras").exists()
    seen = Seen()
    resumed = fit.train(out=out, resume=True, split=small_trouser, callbacks=[seen], verbose=0, plots=False)
    assert seen.epochs == [1, 2, 3]  # the epoch counter continues
    assert seen.first_batch == 8  # inside epoch 2, after the last backed-up batch
    assert resumed.history["epoch"] == [0, 1, 2, 3]
    assert resumed.history["val_loss"][-1] < resumed.history["val_loss"][0]

    plain = fit.train(cfg, out=tmp_path / "plain", split=small_trouser, verbose=0, plots=False)
    assert resumed.metrics["model"]["auroc"] == pytest.approx(plain.metrics["model"]["auroc"], abs=0.03)
    assert resumed.history["val_loss"][-1] == pytest.approx(plain.history["val_loss"][-1], rel=0.15)

    again = fit.train(cfg, out=tmp_path / "again", split=small_trouser, verbose=0, plots=False)
    assert again.metrics["model"]["auroc"] == pytest.approx(plain.metrics["model"]["auroc"], abs=0.005)

    from zoo.errors import UserError

    with pytest.raises(UserError, match="already finished"):
        fit.train(out=out, resume=True, split=small_trouser, verbose=0)
    with pytest.raises(UserError, match="already holds a run"):
        fit.train(cfg, out=out, split=small_trouser, verbose=0)


def test_train_all_writes_the_summary(fashion_mnist_ready, tmp_path):
    from training import train_all

    summary = train_all(model="conv_ae", epochs=1, out=tmp_path, classes=[1, 8], plots=False)
    assert [r["class"] for r in summary["classes"]] == [1, 8]
    assert 0.5 < summary["mean_auroc"] <= 1 and summary["min_auroc"] <= summary["mean_auroc"]
    assert all(r["images_per_second"] > 0 and r["pca_auroc"] > 0.5 for r in summary["classes"])
    md = (tmp_path / "summary.md").read_text()
    assert "| 8 | Bag |" in md and "**mean**" in md and "PCA AUROC" in md
    assert json.loads((tmp_path / "summary.json").read_text())["classes"][1]["name"] == "Bag"
    assert (tmp_path / "class_1" / "model.keras").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--model", "conv_aee", "--out", "{tmp}/a"], "unknown model"),
        (["train", "--normal-class", "12", "--out", "{tmp}/a"], "0..9"),
        (["train", "--normal-class", "shirt", "--out", "{tmp}/a"], "a comma-separated list"),
        (["train", "--dataset", "imagenet42", "--out", "{tmp}/a"], "imagenet42"),
        (["train", "--epochs", "ten", "--out", "{tmp}/a"], "--epochs"),
        (["train", "--lr", "fast"], "--lr"),
        (["train", "--param", "latent_dim"], "key=value"),
        (["train", "--resume", "--out", "{tmp}/nothing"], "config.json"),
        (["evaluate", "{tmp}/nothing"], "expected an existing run folder"),
        (["evaluate", "{tmp}/broken"], "missing model.keras"),
        (["evaluate", "{tmp}/broken", "--normal-class", "x"], "--normal-class"),
    ],
)
def test_bad_input_exits_2_without_traceback(argv, message, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model": "conv_ae"}))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse rejects malformed flags itself, also with exit code 2
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_evaluate_a_tflite_bundle(trouser_run, trouser_split, tmp_path):
    from edge.convert import export_run
    from training import evaluate_path

    export_run(trouser_run, tmp_path / "bundle", quant="float32")
    report = evaluate_path(tmp_path / "bundle", normal_class=1, out=tmp_path / "eval", split=trouser_split,
                           plots=False, verbose=False)
    trained = json.loads((trouser_run / "metrics.json").read_text())
    assert report["model"]["auroc"] == pytest.approx(trained["model"]["auroc"], abs=0.002)


def test_evaluate_refuses_an_all_classes_run(tmp_path, capsys):
    import zoo
    from training.fit import TrainConfig

    run = tmp_path / "allclasses"
    run.mkdir()
    (run / "config.json").write_text(TrainConfig(model="dense_ae", all_classes=True).to_json())
    (run / "threshold.json").write_text(json.dumps({"score": "mse", "method": "percentile", "value": 0.1}))
    zoo.build("dense_ae").save(str(run / "model.keras"))
    assert main(["evaluate", str(run), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "trained on all classes" in err and "Traceback" not in err
