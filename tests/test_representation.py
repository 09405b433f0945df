"""Beyond detection (issue 7): all-classes training, embeddings, linear probe, int8 compression, generation, CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # trains, compresses or converts models: the full suite runs it

from training.cli import main


@pytest.fixture(scope="module")
def full_all(fashion_mnist_ready):
    from training.data import all_classes_split

    return all_classes_split("fashion_mnist")


@pytest.fixture(scope="module")
def small_all(full_all):
    """3,000 train / 300 validation / 1,000 test images of every class: cheap training."""
    s = full_all
    return dataclasses.replace(s, x_train=s.x_train[:3000], train_labels=s.train_labels[:3000], x_val=s.x_val[:300],
                               val_labels=s.val_labels[:300], x_test=s.x_test[:1000], test_labels=s.test_labels[:1000])


@pytest.fixture(scope="module")
def ae_run(small_all, tmp_path_factory):
    """conv_ae, latent 8, trained 4 epochs on all classes of the small split."""
    import training

    out = tmp_path_factory.mktemp("runs") / "conv_ae"
    return training.train(model="conv_ae", params={"latent_dim": 8}, all_classes=True, epochs=4, min_steps=0, split=small_all, out=out, verbose=0)


@pytest.fixture(scope="module")
def vae_run(small_all, tmp_path_factory):
    """conv_vae, latent 4, trained 2 epochs on all classes of the small split (no plots)."""
    import training

    out = tmp_path_factory.mktemp("runs") / "conv_vae"
    return training.train(model="conv_vae", params={"latent_dim": 4}, all_classes=True, epochs=2, min_steps=0, split=small_all, out=out,
                          verbose=0, plots=False)


def test_all_classes_split_holds_out_a_fixed_tenth_of_every_class(full_all):
    from training.data import one_class_split
    from training.data import all_classes_split

    s = full_all
    assert len(s.x_train) == 54_000 and len(s.x_val) == 6_000 and len(s.x_test) == 10_000
    assert np.bincount(s.val_labels).tolist() == [600] * 10
    again = all_classes_split("fashion_mnist")
    np.testing.assert_array_equal(again.x_val, s.x_val)
    # The hold-out of a class is the one-class protocol's validation set of that class.
    np.testing.assert_array_equal(s.x_val[s.val_labels == 3], one_class_split("fashion_mnist", 3).x_val)
    assert s.x_train_all.shape == (60_000, 28, 28, 1) and len(s.train_all_labels) == 60_000


def test_all_classes_run_reports_reconstruction_not_detection(ae_run):
    m = ae_run.metrics
    assert m["all_classes"] is True and "auroc" not in json.dumps(m)
    assert ae_run.config.all_classes and json.loads((ae_run.run_dir / "config.json").read_text())["all_classes"] is True
    for who in ("model", "pca"):
        for part in ("val", "test"):
            q = m[who][part]
            assert 0 < q["mse"] < 0.1 and q["psnr"] > 10 and 0 < q["ssim"] <= 1
    assert m["training"]["n_train"] == 3000
    assert (ae_run.run_dir / "plots" / "latent_space.png").stat().st_size > 10_000
    assert (ae_run.run_dir / "plots" / "training_curves.png").is_file()
    assert json.loads((ae_run.run_dir / "threshold.json").read_text())["calibrated_on"] == "validation images of every class"


def test_embed_shape_and_determinism(ae_run, small_all):
    from training.representation import embed

    x = small_all.x_test[:200]
    a, b = embed(ae_run.model, x), embed(ae_run.model, x)
    assert a.shape == (200, 8) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(embed(ae_run.model, x[:50]), a[:50], rtol=1e-5, atol=1e-6)  # batch-independent


def test_embed_rejects_wrong_image_shape(ae_run):
    from training.representation import embed
    from zoo.errors import UserError

    with pytest.raises(UserError, match=r"expects images of shape \(28, 28, 1\)"):
        embed(ae_run.model, np.zeros((2, 32, 32, 3), np.float32))


def test_linear_probe_beats_chance_by_far(ae_run, small_all):
    from training.representation import embed, linear_probe

    s = small_all
    probe = linear_probe(embed(ae_run.model, s.x_train), s.train_labels, embed(ae_run.model, s.x_test), s.test_labels)
    assert probe["accuracy"] > 0.55, probe  # chance is 0.10
    assert probe["n_train"] == 3000 and probe["n_test"] == 1000 and probe["dim"] == 8


def test_int8_quantizer_round_trip_error_is_at_most_half_a_step():
    from training.representation import Int8CodeQuantizer

    rng = np.random.default_rng(0)
    codes = rng.normal(size=(500, 6)).astype(np.float32) * [1, 10, 0.1, 3, 1, 0]
    q = Int8CodeQuantizer().fit(codes)
    assert q.param_bytes == 48
    c = q.quantize(codes)
    assert c.dtype == np.int8 and c.min() == -128 and c[:, :5].max() == 127
    assert np.all(np.abs(q.dequantize(c) - codes) <= q.scale_ / 2 + 1e-5)
    assert np.all(q.dequantize(c)[:, 5] == 0)  # a constant dimension survives
    assert q.quantize(codes.max(axis=0, keepdims=True) + 100).max() == 127  # out of range: clipped


@pytest.mark.parametrize("which", ["model", "pca"])
def test_compression_figures_come_from_real_round_trips(which, ae_run, small_all):
    from training.representation import Int8CodeQuantizer, ModelCodec, PCACodec, compression_report, psnr, roundtrip
    from edge.scoring import ssim

    s = small_all
    codec = ModelCodec(ae_run.model) if which == "model" else PCACodec(8).fit(s.x_train)
    train_codes = codec.encode(s.x_train)
    report = compression_report(codec, train_codes, s.x_test)
    n, d = len(s.x_test), 8
    assert report["code_bytes"] == d and report["param_bytes"] == 8 * d
    assert report["bytes_per_image"] == pytest.approx(d + 8 * d / n)
    assert report["ratio"] == pytest.approx(784 / (d + 8 * d / n))
    q, x_hat = roundtrip(codec, Int8CodeQuantizer().fit(train_codes), s.x_test)
    assert q.dtype == np.int8 and q.shape == (n, d) and x_hat.shape == s.x_test.shape
    assert report["psnr"] == pytest.approx(float(psnr(s.x_test, x_hat).mean()), abs=1e-6)
    assert report["ssim"] == pytest.approx(float(ssim(s.x_test, x_hat).mean()), abs=1e-6)
    # Quantization costs little but something: the int8 decode is not the float decode.
    assert abs(report["psnr"] - report["float_psnr"]) < 0.5 and not np.array_equal(x_hat, codec.decode(codec.encode(s.x_test)))


def test_pca_codec_and_evaluate_codec(small_all):
    from training.representation import PCACodec, evaluate_codec

    r = evaluate_codec(PCACodec(8).fit(small_all.x_train), small_all)
    assert r["name"] == "PCA-8" and r["latent_dim"] == 8
    assert r["probe"]["accuracy"] > 0.55 and r["reconstruction"]["psnr"] > 14
    assert r["compression"]["psnr"] <= r["compression"]["float_psnr"] + 0.05


def test_samples_have_the_input_shape_and_range(vae_run, tmp_path):
    import zoo
    from training.generate import sample_grid

    images = zoo.sample(vae_run.model, 16, seed=1)
    assert images.shape == (16, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(images, zoo.sample(vae_run.model, 16, seed=1))
    assert sample_grid(vae_run.model, tmp_path / "grid.png", n=16).stat().st_size > 5_000


def test_interpolation_ends_at_the_two_reconstructions(vae_run, small_all):
    from training.generate import interpolate

    x = small_all.x_test
    walk = interpolate(vae_run.model, x[0], x[1], steps=5)
    assert walk.shape == (5, 28, 28, 1)
    ends = vae_run.model.predict(x[:2], verbose=0)  # inference = decode(z_mean)
    np.testing.assert_allclose(walk[[0, -1]], ends, atol=1e-5)


def test_cli_sample_interpolate_embed(vae_run, ae_run, tmp_path, small_all):
    from training.representation import embed

    grid, walk, codes, labels, plot = (tmp_path / n for n in ("grid.png", "walk.png", "codes.npy", "labels.npy", "tsne.png"))
    assert main(["sample", str(vae_run.run_dir), "--n", "64", "--out", str(grid)]) == 0
    assert main(["interpolate", str(vae_run.run_dir), "--a", "0", "--b", "1", "--steps", "10", "--out", str(walk)]) == 0
    assert grid.stat().st_size > 10_000 and walk.stat().st_size > 10_000
    assert main(["embed", str(ae_run.run_dir / "model.keras"), "--dataset", "fashion_mnist", "--split", "test", "--out", str(codes),
                 "--labels-out", str(labels), "--plot", str(plot), "--tsne", "--tsne-samples", "300"]) == 0
    c = np.load(codes)
    assert c.shape == (10_000, 8)
    np.testing.assert_allclose(c[:1000], embed(ae_run.model, small_all.x_test), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.load(labels)[:1000], small_all.test_labels)
    assert plot.stat().st_size > 10_000


def test_cli_bad_input_exits_2(ae_run, tmp_path, capsys):
    assert main(["sample", str(ae_run.run_dir), "--out", str(tmp_path / "g.png")]) == 2
    assert "needs a variational model" in capsys.readouterr().err
    assert not (tmp_path / "g.png").exists()
    assert main(["sample", str(tmp_path / "nothing"), "--out", str(tmp_path / "g.png")]) == 2
    assert main(["interpolate", str(ae_run.run_dir), "--a", "0", "--b", "10000", "--out", str(tmp_path / "w.png")]) == 2
    assert "index b must be an integer in 0..9999" in capsys.readouterr().err
    assert main(["train", "--all-classes-one-model", "--normal-class", "3", "--out", str(tmp_path / "r")]) == 2
    assert "leave out --normal-class" in capsys.readouterr().err


def test_cli_train_all_classes_one_model(tmp_path, capsys, fashion_mnist_ready):
    out = tmp_path / "run"
    assert main(["train", "--all-classes-one-model", "--model", "dense_ae", "--latent-dim", "4", "--epochs", "1", "--min-steps", "0",
                 "--quiet", "--no-plots", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "all classes" in text and "PSNR" in text
    m = json.loads((out / "metrics.json").read_text())
    assert m["training"]["n_train"] == 54_000 and m["model"]["test"]["psnr"] > 10


def test_represent_benchmark_table(small_all, tmp_path):
    from training.benchmark import represent

    result = represent(["vae"], [4], epochs=1, min_steps=0, out=tmp_path, split=small_all, raw_probe=True,
                       raw_probe_max_iter=20)
    assert [r["variant"] for r in result["rows"]] == ["PCA", "vae"]
    table = (tmp_path / "represent.md").read_text()
    assert "| **PCA** | 4 |" in table and "| vae (beta " in table and "| raw pixels | 784 |" in table
    assert (tmp_path / "samples_vae-4.png").stat().st_size > 10_000 and (tmp_path / "walk_vae-4.png").stat().st_size > 10_000
    # A second call reuses the finished run instead of training again.
    again = represent(["vae"], [4], epochs=1, min_steps=0, out=tmp_path, split=small_all, raw_probe=False)
    assert again["rows"][1]["compression"] == result["rows"][1]["compression"]
