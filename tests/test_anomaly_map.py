"""Anomaly maps (edge.anomaly_map, Detector.anomaly_map, `aezoo detect --map`) and the synthetic-defect benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from edge import Detector
from edge.anomaly_map import gaussian_blur, pixel_error_map
from training.cli import main
from zoo import catalog
from zoo.errors import UserError


@pytest.fixture(scope="module")
def images(fashion_mnist_ready):
    from training.data import load_split

    x, labels = load_split("fashion_mnist", "test")
    return np.asarray(x[:6], np.float32), labels[:6]


def test_the_device_map_is_the_per_pixel_error_of_the_int8_models_own_reconstruction(images):
    """Detector.anomaly_map = mean over channels of (x - x_hat)^2 of the bundle's own model, run here through the
    training side's independent interpreter call, then smoothed by the one blur both sides use."""
    from training.convert import run_tflite

    bundle = catalog.detector_dir("dense_ae", "fashion_mnist", 0)
    det = Detector.load(bundle)
    x, _ = images
    recon = run_tflite((bundle / "model.tflite").read_bytes(), x)[0]
    raw = det.anomaly_map(x, sigma=0.0)
    assert raw.shape == (6, 28, 28) and raw.dtype == np.float32
    np.testing.assert_allclose(raw, ((x - recon) ** 2).mean(axis=-1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(det.anomaly_map(x, sigma=1.0), gaussian_blur(raw, 1.0), rtol=1e-5, atol=1e-7)
    # An image scored as more anomalous has more error in its map (mse: the map's mean is the score).
    np.testing.assert_allclose(raw.mean(axis=(1, 2)), det.score(x), rtol=1e-4)
    # The training side computes the same map from the entry's float Keras model (int8 rounding apart).
    import zoo
    from training import AutoencoderDetector

    float_map = AutoencoderDetector(network=zoo.load("dense_ae", normal_class=0), score="mse").anomaly_map(x, sigma=0.0)
    for f, d in zip(float_map, raw):
        assert np.corrcoef(f.ravel(), d.ravel())[0, 1] > 0.97


def test_the_blur_is_a_normalised_symmetric_gaussian():
    delta = np.zeros((1, 21, 21), np.float32)
    delta[0, 10, 10] = 1.0
    b = gaussian_blur(delta, 2.0)[0]
    assert b.sum() == pytest.approx(1.0, abs=1e-6) and b.argmax() == 10 * 21 + 10
    np.testing.assert_allclose(b, b.T, atol=1e-7)
    np.testing.assert_allclose(b, b[::-1, ::-1], atol=1e-7)
    # Its profile is the Gaussian's: exp(-d^2 / (2 sigma^2)) relative to the centre.
    assert b[10, 12] / b[10, 10] == pytest.approx(np.exp(-4 / 8), rel=1e-3)
    with pytest.raises(UserError, match="sigma must be"):
        pixel_error_map(np.zeros((1, 4, 4, 1)), np.zeros((1, 4, 4, 1)), sigma=-1)
    with pytest.raises(UserError, match=r"\(N, H, W, C\)"):
        pixel_error_map(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)))


def test_detect_map_writes_one_picture_per_input_and_refuses_what_it_cannot_draw(images, tmp_path, capsys):
    from PIL import Image

    x, _ = images
    bundle = catalog.detector_dir("conv_ae", "fashion_mnist", 0)
    for i in range(2):
        Image.fromarray((x[i, ..., 0] * 255).round().astype(np.uint8)).save(tmp_path / f"img{i}.png")
    np.save(tmp_path / "batch.npy", x[:3])
    out = tmp_path / "maps"
    argv = ["detect", str(bundle), str(tmp_path / "img0.png"), str(tmp_path / "img1.png"), str(tmp_path / "batch.npy"),
            "--map", str(out)]
    assert main(argv) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["batch_0.map.png", "batch_1.map.png", "batch_2.map.png", "img0.map.png", "img1.map.png"]
    with Image.open(out / "img0.map.png") as im:
        assert im.size[0] > 3 * im.size[1] * 0.9 and im.size[1] >= 224  # three panels, enlarged
    before = (out / "img0.map.png").read_bytes()
    capsys.readouterr()
    assert main(argv) == 2  # never overwrites
    assert "would overwrite" in capsys.readouterr().err and (out / "img0.map.png").read_bytes() == before
    assert main([*argv[:3], "--map", str(tmp_path / "img0.png")]) == 2
    assert main([*argv[:3], "--map", str(tmp_path / "m2"), "--map-scale", "0"]) == 2 and not (tmp_path / "m2").exists()
    series = catalog.detector_dir("conv1d_ae", "kdd_tsad_135", 0)
    np.save(tmp_path / "w.npy", np.zeros((1, *Detector.load(series).input_shape), np.float32))
    assert main(["detect", str(series), str(tmp_path / "w.npy"), "--map", str(tmp_path / "m3")]) == 2
    assert "maps of images: series bundles have none" in capsys.readouterr().err and not (tmp_path / "m3").exists()


def test_synthetic_defects_change_only_their_masked_pixels():
    from training.localization import MIN_PIXELS, VISIBLE, synthetic_defects

    rng = np.random.default_rng(0)
    normal = np.zeros((20, 28, 28, 1), np.float32)
    others = rng.random((5, 28, 28, 1)).astype(np.float32)
    bad, masks = synthetic_defects(normal, others, rng)
    assert (masks.sum(axis=(1, 2)) >= MIN_PIXELS).all()
    changed = np.abs(bad - normal)[..., 0] > VISIBLE
    assert (changed == masks).all()
