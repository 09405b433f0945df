"""Compression with TFMOT (training.compress) and `aezoo optimize`, on the real Fashion-MNIST."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # trains, compresses or converts models: the full suite runs it

from training.cli import main

SPARSITY = 0.5
CLUSTERS = 8


@pytest.fixture(scope="module")
def tiny_model(small_split):
    """A conv_ae trained for one epoch on 512 images of class 0."""
    from zoo.keras import keras
    import zoo

    keras.utils.set_random_seed(0)
    model = zoo.build("conv_ae")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(small_split.x_train, small_split.x_train, batch_size=64, epochs=1, verbose=0)
    return model


def compress(model, split, method, **kw):
    from training.compress import CompressConfig, compress as run

    config = CompressConfig(method=method, epochs=1, sparsity=SPARSITY, clusters=CLUSTERS, batch_size=64, **kw)
    return run(model, split.x_train, split.x_val, config, verbose=0)


def kernels(model) -> dict[str, np.ndarray]:
    """Kernel values by layer name; QAT wrappers are looked through."""
    out = {}
    for layer in model.layers:
        found = [w for w in layer.weights if w.name.rsplit("/", 1)[-1].startswith("kernel:")]
        if found:
            out[layer.name] = found[0].numpy()
    return out


def test_qat_model_keeps_layer_names(tiny_model, small_split):
    import zoo

    qat, stats = compress(tiny_model, small_split, "qat")
    assert any(type(layer).__name__ == "QuantizeWrapperV2" for layer in qat.layers)
    assert [layer.name for layer in qat.layers if layer.name.startswith("enc_")] == [
        layer.name for layer in tiny_model.layers if layer.name.startswith("enc_")]
    assert zoo.encoder(qat).output.shape[-1] == zoo.encoder(tiny_model).output.shape[-1]
    assert stats["fine_tune"][0]["stage"] == "qat" and np.isfinite(stats["fine_tune"][0]["loss"][-1])


def test_pruning_reaches_the_requested_sparsity(tiny_model, small_split):
    pruned, stats = compress(tiny_model, small_split, "prune")
    assert not any("Prune" in type(layer).__name__ for layer in pruned.layers)  # stripped
    ks = kernels(pruned)
    assert len(ks) == 8
    for name, k in ks.items():
        assert np.mean(k == 0) == pytest.approx(SPARSITY, abs=0.02), name
    assert stats["sparsity"] == pytest.approx(SPARSITY, abs=0.02)
    assert np.mean(kernels(tiny_model)["latent"] == 0) == 0  # the source model is untouched
    # The stripped model is a graph of its own: the nap score reads its hidden layers.
    from training.scores import make_score

    score = make_score("nap").fit(pruned, small_split.x_train[:256])
    assert np.all(np.isfinite(score.score(pruned, small_split.x_val[:32])))


def test_clustering_leaves_at_most_n_values_per_kernel(tiny_model, small_split):
    clustered, stats = compress(tiny_model, small_split, "cluster")
    assert not any("Cluster" in type(layer).__name__ for layer in clustered.layers)  # stripped
    for name, k in kernels(clustered).items():
        assert np.unique(k).size <= CLUSTERS, name
    assert max(k["unique_values"] for k in stats["kernels"].values()) <= CLUSTERS


def test_pqat_keeps_the_sparsity_through_qat(tiny_model, small_split):
    model, stats = compress(tiny_model, small_split, "pqat")
    assert [s["stage"] for s in stats["fine_tune"]] == ["prune", "qat"]
    assert any(type(layer).__name__ == "QuantizeWrapperV2" for layer in model.layers)
    for name, k in kernels(model).items():  # the kernels after QAT's fine-tune
        assert np.mean(k == 0) >= SPARSITY - 0.02, name


def test_cqat_keeps_the_clusters_through_qat(tiny_model, small_split):
    model, stats = compress(tiny_model, small_split, "cqat")
    clustered, _ = compress(tiny_model, small_split, "cluster")
    assert [s["stage"] for s in stats["fine_tune"]] == ["cluster", "qat"]
    after = kernels(model)
    for name, k in after.items():  # every kernel, Conv2DTranspose included
        assert np.unique(k).size <= CLUSTERS, name
    # QAT did train the shared values (it is not a no-op that trivially keeps them).
    assert any(not np.array_equal(np.unique(k), np.unique(kernels(clustered)[n])) for n, k in after.items())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["conv_vae", "denoising_ae", "sparse_ae"])
def test_custom_layer_variants_compress_save_and_export_int8(name, small_split, tmp_path):
    from conftest import export_model

    from zoo.keras import keras
    import zoo
    from edge.detector import Detector

    model = zoo.build(name)
    x = small_split.x_train[:128]
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(x, x, batch_size=64, epochs=1, verbose=0)
    qat, _ = compress(model, dataclasses.replace(small_split, x_train=x), "qat")
    path = tmp_path / "model.keras"
    qat.save(str(path))
    with zoo.quantize_scope():
        loaded = zoo.load_model(path)
    np.testing.assert_allclose(loaded.predict(x[:8], verbose=0), qat.predict(x[:8], verbose=0), atol=1e-6)
    assert zoo.is_variational(loaded) == (name == "conv_vae")
    bundle = export_model(loaded, tmp_path / "bundle", x_train=x, x_val=small_split.x_val, names=small_split.class_names)
    det = Detector.load(bundle)
    assert det.spec["input"]["dtype"] == "int8" and det.spec["outputs"][0]["dtype"] == "int8"
    float_err = np.mean((loaded.predict(x[:32], verbose=0) - det.reconstruct(x[:32])) ** 2)
    assert float_err < 1e-3


def test_config_validation_quotes_the_value():
    from training.compress import CompressConfig
    from zoo.errors import UserError

    for kw, text in ((dict(method="quant"), "method='quant'"), (dict(sparsity=1.0), "sparsity=1.0"),
                     (dict(clusters=1), "clusters=1"), (dict(epochs=0), "epochs=0")):
        with pytest.raises(UserError, match=text):
            CompressConfig(**kw).validate()
    config = CompressConfig(method="pqat", sparsity=0.75)
    assert CompressConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


# ---------------------------------------------------------------- the CLI


def test_optimize_writes_a_run_that_evaluate_and_export_accept(tiny_mse_run, on_small_split, tmp_path, capsys):
    assert main(["optimize", str(tiny_mse_run), "--method", "pqat", "--epochs", "1", "--sparsity", "0.6", "--quiet", "--no-plots"]) == 0
    out = tiny_mse_run.with_name("tiny-pqat")
    assert "run folder" in capsys.readouterr().out
    for f in ("model.keras", "config.json", "threshold.json", "metrics.json"):
        assert (out / f).is_file(), f
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "conv_ae" and config["compression"]["config"]["method"] == "pqat"
    assert config["compression"]["source_run"] == str(tiny_mse_run.resolve())
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.5 < metrics["model"]["auroc"] <= 1 and metrics["pca"]["auroc"] > 0.5
    assert metrics["compression"]["sparsity"] >= 0.58
    thr = json.loads((out / "threshold.json").read_text())
    source = json.loads((tiny_mse_run / "threshold.json").read_text())
    assert thr["method"] == "percentile" and thr["value"] != source["value"] and thr["score"] == source["score"]

    assert main(["evaluate", str(out), "--out", str(tmp_path / "eval"), "--no-plots"]) == 0
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert evaluated["model"]["auroc"] == pytest.approx(metrics["model"]["auroc"], abs=1e-6)
    # The QAT model.keras also opens on its own, outside its run folder.
    import zoo

    assert zoo.load_model(out / "model.keras").name == "conv_ae"
    assert main(["export", str(out), "--out", str(tmp_path / "bundle"), "--quant", "int8"]) == 0
    spec = json.loads((tmp_path / "bundle" / "detector.json").read_text())
    assert spec["input"]["dtype"] == "int8" and spec["model"]["quant"] == "int8"
    # Writing over an existing compressed run is refused; so is QAT on top of a QAT run.
    assert main(["optimize", str(tiny_mse_run), "--method", "pqat", "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["optimize", str(out), "--method", "qat", "--quiet", "--out", str(tmp_path / "qat2")]) == 2
    assert "already quantization-aware" in capsys.readouterr().err and not (tmp_path / "qat2").exists()


@pytest.mark.parametrize("argv, message", [
    (["--method", "quantize"], "invalid choice: 'quantize'"),
    (["--method", "prune", "--sparsity", "1.5"], "expected a fraction in (0, 1)"),
    (["--method", "prune", "--sparsity", "half"], "expected a fraction in (0, 1)"),
    (["--method", "cluster", "--clusters", "1"], "expected an integer in 2..256"),
])
def test_optimize_rejects_bad_options(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["optimize", str(tmp_path), *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_optimize_rejects_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["optimize", str(tmp_path), "--method", "qat"]) == 2
    assert "incomplete" in capsys.readouterr().err
