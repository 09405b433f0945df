"""The model zoo: every registered variant is built, trained, saved, quantized and converted.

Parametrized over ``zoo.list_models()``, so a new variant is tested as soon as it
is registered. Trained models are shared between tests through a module cache.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import zoo
from zoo.errors import UserError

SHAPES = {"28x28x1": (28, 28, 1), "32x32x3": (32, 32, 3), "vec64": (64,), "series64x3": (64, 3)}
KIND_OF_RANK = {1: "vector", 2: "series", 3: "image"}
INT8_LIMIT = 64 * 1024
SEED = 0


def _cases() -> list:
    cases = []
    for name in zoo.list_models():
        kinds = zoo.model_info(name).input_kinds
        for key, shape in SHAPES.items():
            if KIND_OF_RANK[len(shape)] in kinds:
                cases.append(pytest.param(name, shape, id=f"{name}-{key}"))
    return cases


CASES = _cases()
# Every variant on its first kind's shape (QAT fit, both int8 paths); the other shapes need only one dense and one conv
# variant of each kind.
QAT_EXPORTED_ELSEWHERE = ("conv_vae", "denoising_ae", "sparse_ae")  # test_custom_layer_variants_compress_save_and_...
QAT_CASES = [c for c in CASES if c.id.endswith("28x28x1") or c.id.split("-")[0] in ("dense_ae", "conv_ae", "conv1d_ae")
             or c.id == "conv1d_vae-series64x3"]


def make_data(shape: tuple[int, ...], n: int = 64, seed: int = SEED) -> np.ndarray:
    """Learnable data: a few Gaussian blobs per image, low-rank vectors (both in [0, 1]), or standardized series
    windows (sums of two sines of random phase per channel)."""
    rng = np.random.default_rng(seed)
    if len(shape) == 2:
        t = np.arange(shape[0])[None, :, None]
        phase = rng.uniform(0, 2 * np.pi, (n, 1, shape[1]))
        return (np.sin(2 * np.pi * t / 16 + phase) + 0.5 * np.sin(2 * np.pi * t / 5 + 2 * phase)).astype(np.float32)
    if len(shape) == 1:
        z = rng.standard_normal((n, 4))
        w = rng.standard_normal((4, shape[0]))
        return (1 / (1 + np.exp(-(z @ w)))).astype(np.float32)
    h, w, c = shape
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((n, h, w, c), np.float32)
    for i in range(n):
        for _ in range(3):
            cy, cx = rng.uniform(0.2, 0.8, 2) * (h, w)
            s = rng.uniform(0.08, 0.2) * h
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
            out[i] += blob[..., None] * rng.uniform(0.3, 1.0, c)
    return np.clip(out, 0, 1)


def to_int8(model, representative: np.ndarray) -> bytes:
    """Full-integer int8 TFLite through the project's one converter."""
    from training.convert import to_tflite

    return to_tflite(model, "int8", representative)


def run_int8(flatbuffer: bytes, x: np.ndarray) -> np.ndarray:
    """Run an int8 model with LiteRT on float images; return dequantized outputs."""
    from training.convert import run_tflite

    return run_tflite(flatbuffer, x)[0]


_TRAINED: dict = {}


def trained(name: str, shape: tuple[int, ...]):
    """(model, data, loss history) of ``name`` trained a few steps; built once per module."""
    key = (name, shape)
    if key not in _TRAINED:
        from zoo.keras import keras

        keras.utils.set_random_seed(SEED)
        x = make_data(shape)
        model = zoo.build(name, input_shape=shape)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        history = model.fit(x, x, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]
        _TRAINED[key] = (model, x, history)
    return _TRAINED[key]


@pytest.mark.parametrize("name, shape", CASES)
def test_builds_flat_model_with_stable_names(name, shape):
    from zoo.keras import keras

    model = zoo.build(name, input_shape=shape)
    assert model.name == name
    assert tuple(model.input_shape[1:]) == shape and tuple(model.output_shape[1:]) == shape
    assert not any(isinstance(layer, (keras.Model, keras.layers.Lambda)) for layer in model.layers)
    names = [layer.name for layer in model.layers]
    assert any(n in ("latent", "z_mean") for n in names)
    assert any(n.startswith("dec_") for n in names)
    y = model(make_data(shape, n=4), training=False).numpy()
    if len(shape) != 2:
        assert y.min() >= 0.0 and y.max() <= 1.0  # sigmoid output
    else:
        assert model.layers[-1].name == "dec_out" or model.get_layer("dec_out").activation.__name__ == "linear"


@pytest.mark.slow
@pytest.mark.parametrize("name, shape", QAT_CASES)
def test_trains_loss_goes_down(name, shape):
    _, _, history = trained(name, shape)
    assert np.all(np.isfinite(history))
    assert history[-1] < history[0], history


@pytest.mark.slow
@pytest.mark.parametrize("name, shape", CASES)
def test_save_load_reproduces_outputs_and_parts(name, shape, tmp_path):
    model, x, _ = trained(name, shape)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = zoo.load_model(path)
    assert loaded.name == name
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    # encoder + decoder recompose the deterministic reconstruction, also after loading.
    code = zoo.encoder(loaded).predict(x, verbose=0)
    assert code.ndim == 2
    np.testing.assert_allclose(zoo.decoder(loaded).predict(code, verbose=0), loaded.predict(x, verbose=0), atol=1e-5)
    assert zoo.is_variational(loaded) == (name.endswith("vae") or zoo.is_variational(model))


@pytest.mark.slow
@pytest.mark.parametrize("name, shape", QAT_CASES)
def test_qat_and_int8_tflite(name, shape):
    """Every variant wraps for QAT with one quantize layer more and converts to int8 close to Keras; the QAT model's
    own int8 conversion is checked here except for the custom-layer variants, whose QAT bundles tests/test_compress.py
    fine-tunes, saves, loads and exports."""
    from zoo.keras import keras

    model, x, _ = trained(name, shape)
    qat = zoo.qat_model(model)
    assert len(qat.layers) == len(model.layers) + 1  # + the input quantize layer
    flatbuffers = {}
    if shape in ((28, 28, 1), (64, 3)):
        qat(x[:4], training=True)
        assert len(qat.losses) == len(model.losses)
        if model.losses:  # QAT training keeps the extra loss terms (KL, sparsity) of the custom layers
            qat.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse")
            assert np.isfinite(qat.fit(x, x, batch_size=16, epochs=1, verbose=0).history["loss"][-1])
        flatbuffers["ptq"] = to_int8(model, x[:16])
        # `aezoo models` estimates this size without converting.
        from zoo.registry import int8_size_estimate

        assert abs(int8_size_estimate(model) - len(flatbuffers["ptq"])) < 0.01 * len(flatbuffers["ptq"])
    if name not in QAT_EXPORTED_ELSEWHERE:
        flatbuffers["qat"] = to_int8(qat, x[:16])
    for kind, fb in flatbuffers.items():
        y = run_int8(fb, x[:4])
        reference = (qat if kind == "qat" else model).predict(x[:4], verbose=0)
        assert y.shape == reference.shape
        # Series windows are standardized (spread about 1), images in [0, 1]: the same relative tolerance.
        assert np.abs(y - reference).mean() < 0.05 * (1.0 if len(shape) != 2 else float(np.std(x))), kind
        if shape in ((28, 28, 1), (64, 3)):
            assert len(fb) <= INT8_LIMIT, f"{name} {kind} int8 model is {len(fb)} bytes"


@pytest.mark.parametrize("name", zoo.list_models())
def test_config_round_trips_json(name):
    config = zoo.config_for(name, latent_dim=8)
    data = json.loads(config.to_json())
    assert type(config).from_dict(data) == config
    model = zoo.build(name, **data)  # lists from JSON are accepted for tuples
    assert model.name == name


# ---------------------------------------------------------------- errors
def test_unknown_model_suggests_close_matches():
    with pytest.raises(UserError) as err:
        zoo.build("conv_aee")
    msg = str(err.value)
    assert "Did you mean 'conv_ae'" in msg and "Received: name='conv_aee'" in msg
    for name in zoo.list_models():
        assert name in msg


def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(UserError) as err:
        zoo.build("conv_ae", latnt_dim=8)
    msg = str(err.value)
    assert "latnt_dim" in msg and "Did you mean 'latent_dim'" in msg and "filters" in msg


@pytest.mark.parametrize(
    "name, params, received",
    [
        ("dense_ae", {"latent_dim": 0}, "latent_dim=0"),
        ("conv_ae", {"filters": (8, -1)}, "filters=(8, -1)"),
        ("conv_ae", {"input_shape": (64,)}, "input_shape=(64,)"),
        ("conv_vae", {"input_shape": (28, 28)}, "input_shape=(28, 28)"),
        ("denoising_ae", {"corruption": "blur"}, "corruption='blur'"),
        ("denoising_ae", {"strength": 1.5}, "strength=1.5"),
        ("sparse_ae", {"rho": 1.0}, "rho=1.0"),
        ("sparse_ae", {"sparsity": "l2"}, "sparsity='l2'"),
        ("vae", {"beta": -1}, "beta=-1"),
    ],
)
def test_invalid_values_quote_the_received_value(name, params, received):
    with pytest.raises(UserError, match="Received: " + received.replace("(", r"\(").replace(")", r"\)")):
        zoo.build(name, **params)


KIND_SHAPES = {"image": (28, 28, 1), "series": (64, 3), "vector": (64,)}
EXPECTED = {"image": "image shape", "series": "series window shape", "vector": "vector shape"}


@pytest.mark.parametrize("name", zoo.list_models())
def test_each_variant_builds_for_its_input_kinds_and_refuses_the_others(name):
    kinds = zoo.model_info(name).input_kinds
    for kind, shape in KIND_SHAPES.items():
        if kind in kinds:
            assert zoo.build(name, input_shape=shape).output_shape[1:] == shape
        else:
            with pytest.raises(UserError, match=EXPECTED[kinds[0]]):
                zoo.build(name, input_shape=shape)


# ---------------------------------------------------------------- VAE
@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in zoo.list_models() if n.endswith("vae")])
def test_vae_kl_sampling_and_determinism(name):
    shape = (28, 28, 1) if "image" in zoo.model_info(name).input_kinds else (64, 3)
    model, x, _ = trained(name, shape)
    assert zoo.is_variational(model)
    model(x[:8], training=True)
    assert model.losses and all(float(loss) >= 0.0 for loss in model.losses)
    a = model(x[:8], training=False).numpy()
    b = model(x[:8], training=False).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(model(x[:8], training=True).numpy(), a)  # sampling is active in training
    samples = zoo.sample(model, 5, seed=1)
    assert samples.shape == (5, *shape)
    if len(shape) == 3:  # images come out of a sigmoid; series windows are standardized, unbounded
        assert samples.min() >= 0.0 and samples.max() <= 1.0
    np.testing.assert_array_equal(samples, zoo.sample(model, 5, seed=1))
    scores = zoo.negative_elbo(model, x[:8])
    assert scores.shape == (8,) and np.all(np.isfinite(scores))
    # the negative ELBO is reconstruction MSE plus a non-negative KL / D
    mse = ((model.predict(x[:8], verbose=0) - x[:8]) ** 2).mean(axis=tuple(range(1, x.ndim)))
    assert np.all(scores >= mse - 1e-6)
    assert zoo.negative_elbo(model, x[:8], samples=3, seed=0).shape == (8,)


def test_non_variational_model_cannot_sample():
    with pytest.raises(UserError, match="variational"):
        zoo.sample(zoo.build("dense_ae"), 2)


# ---------------------------------------------------------------- sparse AE
@pytest.mark.slow
@pytest.mark.parametrize("sparsity", ["kl", "l1"])
def test_sparsity_penalty_lowers_mean_code_activation(sparsity):
    """Same data, seed and steps; the only difference is the penalty weight."""
    from zoo.keras import keras

    x = make_data((28, 28, 1), n=128, seed=1)
    means = {}
    for weight in (0.0, 1.0 if sparsity == "kl" else 0.5):
        keras.utils.set_random_seed(SEED)
        model = zoo.build("sparse_ae", sparsity=sparsity, sparsity_weight=weight)
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
        model.fit(x, x, batch_size=32, epochs=5, shuffle=False, verbose=0)
        means[weight] = float(np.abs(zoo.encoder(model).predict(x, verbose=0)).mean())
    plain, sparse = means.values()
    assert sparse < 0.8 * plain, means


# ---------------------------------------------------------------- denoising
@pytest.mark.parametrize("corruption", ["gaussian", "salt_pepper", "mask"])
def test_corruption_only_in_training(corruption):
    model = zoo.build("denoising_ae", corruption=corruption, strength=0.3)
    layer = model.get_layer("corrupt")
    x = make_data((28, 28, 1), n=4)
    noisy = layer(x, training=True).numpy()
    assert not np.array_equal(noisy, x)
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    # Inference is deterministic and corruption-free; training corrupts the model's input too.
    clean = model(x, training=False).numpy()
    np.testing.assert_array_equal(model(x, training=False).numpy(), clean)
    assert not np.array_equal(model(x, training=True).numpy(), clean)


# ---------------------------------------------------------------- package surface
def test_models_command_lists_every_variant(capsys):
    import training.cli

    for kind, shape in KIND_SHAPES.items():
        assert training.cli.main(["models", "--input-shape", ",".join(map(str, shape))]) == 0
        out = capsys.readouterr().out
        assert "estimated" in out.splitlines()[0]
        for name in zoo.list_models():
            line = next(line for line in out.splitlines() if line.startswith(name + " "))
            if kind in zoo.model_info(name).input_kinds:
                assert f"{zoo.build(name, input_shape=shape).count_params():,}" in line
            else:  # a variant that does not take this kind says which it takes
                assert ",".join(zoo.model_info(name).input_kinds) in line and " -  " in line


# ---------------------------------------------------------------- Keras 3
@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.list_models())
def test_every_variant_builds_in_keras_3_with_the_same_outputs(name, tmp_path):
    from zoo.keras import keras3

    tf_keras_model = zoo.build(name)
    x = make_data(tuple(tf_keras_model.input_shape[1:]))[:8]  # the variant's default input: an image or a series window
    k3 = zoo.build(name, keras_version=3)
    assert isinstance(k3, keras3().Model) and [l.name for l in k3.layers] == [l.name for l in tf_keras_model.layers]
    zoo.save_weights(tf_keras_model, tmp_path / "w.npz")  # by layer name: both load it
    zoo.load_weights(k3, tmp_path / "w.npz")
    np.testing.assert_allclose(k3.predict(x, verbose=0), tf_keras_model.predict(x, verbose=0), atol=1e-6)
    assert zoo.encoder(k3).output.shape[-1] == zoo.encoder(tf_keras_model).output.shape[-1]


@pytest.mark.slow
def test_keras_3_fit_and_qat_refusal():
    from zoo.errors import UserError

    x = make_data((28, 28, 1))
    model = zoo.build("conv_ae", keras_version=3)
    model.compile(optimizer="adam", loss="mse")
    loss = model.fit(x, x, batch_size=16, epochs=2, verbose=0).history["loss"]
    assert loss[-1] < loss[0]
    with pytest.raises(UserError, match="no Keras 3 support"):
        zoo.qat_model(model)
    with pytest.raises(UserError, match="keras_version must be 2"):
        zoo.build("conv_ae", keras_version=4)


def test_a_pretrained_entry_loads_into_keras_3_with_the_same_weights():
    from zoo import catalog

    if not catalog.list_pretrained("conv_ae"):
        pytest.skip("no pretrained conv_ae entry")
    x = make_data((28, 28, 1))[:8]
    two = zoo.load("conv_ae", normal_class=0)
    three = zoo.load("conv_ae", normal_class=0, keras_version=3)
    np.testing.assert_allclose(three.predict(x, verbose=0), two.predict(x, verbose=0), atol=1e-5)


@pytest.mark.parametrize("rename, expected", [
    ({"latent": "bottleneck"}, "expected one named 'latent'"),
    ({"enc_dense1": "hidden1"}, "enc_conv* or enc_dense*"),
    ({"dec_reshape": "out"}, "expected a decoder layer named dec_*"),
    ({"input": "x"}, "expected the input layer named 'input'"),
])
def test_a_variant_that_breaks_the_naming_contract_is_refused_at_build(rename, expected, monkeypatch):
    """A registered variant whose layers do not follow the contract the scores and encoder/decoder rely on is refused
    at its first build, with the layer it expected (not late, inside a score)."""
    from zoo import registry
    from zoo.keras import active as keras

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @registry.register_model(input_kinds=("vector",))
    def renamed_ae(input_shape=(16,), latent_dim=4):
        """A dense autoencoder with one layer renamed."""
        name = lambda n: rename.get(n, n)  # noqa: E731
        x = keras.Input(shape=input_shape, name=name("input"))
        h = keras.layers.Dense(8, activation="relu", name=name("enc_dense1"))(x)
        z = keras.layers.Dense(latent_dim, name=name("latent"))(h)
        y = keras.layers.Dense(16, name=name("dec_dense1"))(z)
        y = keras.layers.Reshape(input_shape, name=name("dec_reshape"))(y)
        return keras.Model(x, y, name="renamed_ae")

    with pytest.raises(UserError, match="breaks the zoo's layer-naming contract") as err:
        zoo.build("renamed_ae")
    assert expected in str(err.value)
