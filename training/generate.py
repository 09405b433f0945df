"""Generation with the zoo's autoencoders: prior samples of a VAE and latent-space walks, as PNG grids.

    sample_grid(vae_model, "grid.png", n=64)                      # decode 64 draws of z ~ N(0, I)
    interpolation_grid(model, "walk.png", x_test, [(0, 1)], steps=10)  # decode (1 - t) z_a + t z_b
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import zoo
from zoo.errors import UserError


def tile(images: np.ndarray, cols: int, *, pad: int = 1) -> np.ndarray:
    """Arrange images (N, H, W, C) in a grid ``cols`` wide with ``pad`` pixels of white between them."""
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    rows = math.ceil(n / cols)
    grid = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.float32)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = img
    return grid[..., 0] if c == 1 else grid


def sample_grid(model: Any, path: str | os.PathLike, *, n: int = 64, seed: int = 0, cols: int | None = None, title: str = "") -> Path:
    """Decode ``n`` draws from a VAE's prior (``zoo.sample``) and save them as a PNG grid.

    Raises:
        UserError: the model is not variational, or ``n`` < 1.
    """
    from training.plots import _save, plt

    images = zoo.sample(model, n, seed=seed)
    cols = cols or math.ceil(math.sqrt(n))
    grid = tile(images, cols)
    fig, ax = plt.subplots(figsize=(0.75 * cols + 0.4, 0.75 * math.ceil(n / cols) + 0.6))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    ax.set_title(title or f"{model.name}: {n} draws from the prior N(0, I), seed {seed}", fontsize=9)
    return _save(fig, path)


def interpolate(model: Any, x_a: np.ndarray, x_b: np.ndarray, steps: int = 10) -> np.ndarray:
    """Decode the straight line between the codes of two images (VAE: their ``z_mean``).

    Args:
        model: a zoo autoencoder.
        x_a, x_b: two images of the model's input shape.
        steps: points on the line, both ends included (>= 2). Defaults to 10.

    Returns:
        ``steps`` decoded images, from ``x_a``'s code (t = 0) to ``x_b``'s (t = 1).
    """
    from training.representation import ModelCodec

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise UserError(f"steps must be an integer >= 2 (both ends included). Received: steps={steps!r}")
    codec = ModelCodec(model)
    z = codec.encode(np.stack([x_a, x_b]))
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return codec.decode((1.0 - t) * z[0] + t * z[1])


def interpolation_grid(
    model: Any,
    path: str | os.PathLike,
    images: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    *,
    steps: int = 10,
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """One row per pair of image indices: the original A, the ``steps`` decoded codes from A to B, the original B."""
    from training.plots import _img, _save, plt

    n = len(images)
    for a, b in pairs:
        for name, i in (("a", a), ("b", b)):
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n:
                raise UserError(f"image index {name} must be an integer in 0..{n - 1}. Received: {name}={i!r}")
    rows = [interpolate(model, images[a], images[b], steps) for a, b in pairs]
    cols = steps + 2
    fig, axes = plt.subplots(len(pairs), cols, figsize=(0.9 * cols, 1.05 * len(pairs) + 0.5), squeeze=False)
    t = np.linspace(0.0, 1.0, steps)
    for r, ((a, b), walk) in enumerate(zip(pairs, rows)):
        strip = [images[a], *walk, images[b]]
        for k, img in enumerate(strip):
            ax = axes[r, k]
            ax.imshow(_img(img), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if k in (0, cols - 1):
                i = a if k == 0 else b
                name = class_names[int(labels[i])] if labels is not None and class_names is not None else ""
                ax.set_title(f"{'A' if k == 0 else 'B'} #{i}\n{name}", fontsize=7)
                for spine in ax.spines.values():
                    spine.set_color("tab:red")
            elif r == 0:
                ax.set_title(f"t={t[k - 1]:.2f}", fontsize=7)
    walks = "walks between the codes of two images" if len(pairs) > 1 else "walk between the codes of two images"
    fig.suptitle(title or f"{model.name}: decoded linear {walks}", fontsize=9)
    return _save(fig, path)
