"""Anomaly maps: where in an image the autoencoder failed to reconstruct it (numpy and Pillow only).

An autoencoder gives a map for free: the per-pixel squared error between the image
and its reconstruction, averaged over the colour channels, optionally smoothed with
a Gaussian (``sigma`` in pixels of the model's input; 0 keeps the raw error). The
training side (``AutoencoderDetector.anomaly_map``) and the device
(``edge.Detector.anomaly_map``) both call :func:`pixel_error_map`, so one model gives
one map. :func:`write_map_png` draws input, reconstruction and the map over the
input, side by side, for a person to look at (``aezoo detect BUNDLE img.png --map DIR``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from zoo.errors import UserError

# Smoothing of a map, in pixels of the model's input; chosen before any measurement (a 28x28 image's strokes are
# 1-3 px wide) and left at it: BENCHMARKS.md reports the raw map (sigma 0) beside it.
DEFAULT_SIGMA = 1.0
# A panel is drawn at least this many pixels high (small images are enlarged, nearest neighbour).
PANEL_HEIGHT = 224


def pixel_error_map(x: np.ndarray, x_hat: np.ndarray, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """Per-pixel squared error of images ``x`` and reconstructions ``x_hat`` (N, H, W, C): float32 (N, H, W).

    ``sigma`` > 0 smooths each map with a Gaussian of that standard deviation (pixels; reflected edges).
    """
    x, x_hat = np.asarray(x, np.float32), np.asarray(x_hat, np.float32)
    if x.ndim != 4 or x.shape != x_hat.shape:
        raise UserError(f"an anomaly map needs images and reconstructions shaped (N, H, W, C) alike. Received: "
                        f"{x.shape} and {x_hat.shape}")
    if not np.isfinite(sigma) or sigma < 0:
        raise UserError(f"sigma must be a finite number >= 0 (pixels). Received: sigma={sigma!r}")
    err = np.mean((x - x_hat) ** 2, axis=-1)
    return gaussian_blur(err, sigma) if sigma > 0 else err


def gaussian_blur(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Maps (N, H, W) smoothed by a separable Gaussian (radius 3 sigma, edges reflected), float32."""
    radius = max(1, int(np.ceil(3 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    out = np.asarray(maps, np.float64)
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect" if out.shape[axis] > radius else "edge")
        out = sum(w * np.take(padded, range(i, i + out.shape[axis]), axis=axis) for i, w in enumerate(kernel))
    return out.astype(np.float32)


def _heat(m: np.ndarray) -> np.ndarray:
    """An (H, W) map in [0, 1] as RGB uint8: black -> red -> yellow -> white (a colour ramp a printer keeps)."""
    m = np.clip(m, 0.0, 1.0)[..., None]
    stops = np.array([[0, 0, 0], [180, 20, 20], [250, 200, 40], [255, 255, 255]], np.float64)
    pos = m * (len(stops) - 1)
    i = np.minimum(pos.astype(int), len(stops) - 2)
    frac = pos - i
    return (stops[i[..., 0]] * (1 - frac) + stops[i[..., 0] + 1] * frac).astype(np.uint8)


def _rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, C) pixels in [0, 1] as RGB uint8."""
    a = np.clip(np.round(np.asarray(image, np.float64) * 255), 0, 255).astype(np.uint8)
    return np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a


def write_map_png(path: str | os.PathLike, image: np.ndarray, reconstruction: np.ndarray, error_map: np.ndarray, *,
                  vmax: float, title: str = "") -> Path:
    """Write a PNG of three panels: the input, its reconstruction, and the map (scaled to ``vmax``) over the input.

    ``vmax`` fixes the colour scale (a squared pixel error: ``aezoo detect --map-scale``), the same for every
    input so that maps compare; an error above it is drawn at full heat. Written to a temporary name and renamed
    into place.
    """
    from PIL import Image, ImageDraw

    h, w = error_map.shape
    scale = max(1, -(-PANEL_HEIGHT // h))
    base = _rgb(image)
    heat = _heat(error_map / vmax if vmax > 0 else np.zeros_like(error_map))
    alpha = np.clip(error_map / vmax if vmax > 0 else 0.0, 0.0, 1.0)[..., None] ** 0.5
    overlay = (0.45 * base * (1 - alpha) + heat * alpha).astype(np.uint8)  # a dimmed input: bright pixels stay readable
    panels = [Image.fromarray(p).resize((w * scale, h * scale), Image.NEAREST) for p in (base, _rgb(reconstruction), overlay)]
    gap, top = 8, 22
    canvas = Image.new("RGB", (3 * w * scale + 2 * gap, h * scale + top), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (panel, label) in enumerate(zip(panels, ("input", "reconstruction", "anomaly map"))):
        canvas.paste(panel, (k * (w * scale + gap), top))
        draw.text((k * (w * scale + gap) + 2, 4), label if k or not title else f"{label}: {title}", fill="black")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        canvas.save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
