"""How well anomaly maps find *where* an image is anomalous, on synthetic defects (``aezoo bench anomaly-maps``).

Fashion-MNIST has no pixel labels, so the defects are made: a normal test image of
class k gets a rectangle (6-12 px a side, at a random place) pasted from the same
place of a test image of another class. The defect's mask is the rectangle's pixels
that the paste changed by more than :data:`VISIBLE` (a patch of black pasted on
black is no defect); an image whose paste changed fewer than :data:`MIN_PIXELS`
pixels is drawn again. Every figure made this way is labelled synthetic.

For each zoo entry's device bundle: the pixel-level AUROC of its anomaly map
(``edge.Detector.anomaly_map``, smoothed and raw) over all pixels of the defective
images, and the image-level AUROC of its score, defective vs the same images
intact. Two baselines in the same run, on the same images: PCA's per-pixel
reconstruction error (90% of the normal training variance, the protocol's PCA)
and the squared distance to the mean normal training image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

# A pasted pixel counts as defect when it differs from the original by more than this (pixel range [0, 1]).
VISIBLE = 0.1
MIN_PIXELS = 10
PATCH_SIDES = (6, 12)


def synthetic_defects(normal: np.ndarray, others: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(defective images, masks bool (N, H, W)) of ``normal`` images (N, H, W, C) with patches from ``others``."""
    n, h, w, _ = normal.shape
    out, masks = normal.copy(), np.zeros((n, h, w), bool)
    for i in range(n):
        while True:
            side = int(rng.integers(PATCH_SIDES[0], PATCH_SIDES[1] + 1))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            donor = others[int(rng.integers(len(others)))]
            patch = donor[top:top + side, left:left + side]
            changed = np.abs(patch - normal[i, top:top + side, left:left + side]).max(axis=-1) > VISIBLE
            if changed.sum() >= MIN_PIXELS:
                break
        out[i, top:top + side, left:left + side] = patch
        masks[i, top:top + side, left:left + side] = changed
    return out, masks


def _pixel_auroc(maps: np.ndarray, masks: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(masks.ravel(), maps.ravel()))


def localization(entries: Sequence[str], *, n_images: int = 200, seed: int = 0, root: str | Path | None = None) -> dict:
    """Pixel and image AUROC of the entries' anomaly maps on synthetic defects, beside PCA and the mean image.

    ``entries``: zoo entries "MODEL/fashion_mnist/K" (or "MODEL/K"). Test images only make the defects and are
    scored; nothing is chosen on them (the map's smoothing is fixed in ``edge.anomaly_map``).
    """
    from sklearn.metrics import roc_auc_score

    from edge import Detector
    from edge.anomaly_map import DEFAULT_SIGMA, pixel_error_map
    from training.baselines import PCABaseline
    from training.data import one_class_split
    from training.progress import progress

    rows, splits = [], {}
    for entry in progress(list(entries), desc="anomaly maps", unit="entry"):
        model, k = entry.split("/")[0], int(entry.split("/")[-1])
        if k not in splits:
            s = one_class_split("fashion_mnist", k)
            rng = np.random.default_rng(seed + k)
            normal = s.x_test[s.test_labels == k][:n_images]
            bad, masks = synthetic_defects(normal, s.x_test[s.test_labels != k], rng)
            pca = PCABaseline().fit(s.x_train, s.x_val)
            mean = s.x_train.mean(axis=0, keepdims=True)
            # The baselines' maps get the same smoothing as the autoencoder's, and PCA's the raw one too.
            baselines = {"pca": pixel_error_map(bad, pca.reconstruct(bad)),
                         "pca raw": pixel_error_map(bad, pca.reconstruct(bad), 0.0),
                         "mean image": pixel_error_map(bad, np.broadcast_to(mean, bad.shape))}
            splits[k] = (normal, bad, masks, {b: _pixel_auroc(m, masks) for b, m in baselines.items()})
        normal, bad, masks, base = splits[k]
        det = Detector.from_zoo(model, "fashion_mnist", k, root=root)
        labels = np.r_[np.zeros(len(normal)), np.ones(len(bad))]
        rows.append({"entry": f"{model}/fashion_mnist/{k}", "score": det.score_kind, "quant": det.spec["model"]["quant"],
                     "pixel_auroc": _pixel_auroc(det.anomaly_map(bad), masks),
                     "pixel_auroc_raw": _pixel_auroc(det.anomaly_map(bad, sigma=0.0), masks),
                     "image_auroc": float(roc_auc_score(labels, np.r_[det.score(normal), det.score(bad)])),
                     "pca_pixel_auroc": base["pca"], "pca_pixel_auroc_raw": base["pca raw"],
                     "mean_image_pixel_auroc": base["mean image"],
                     "defect_pixels_per_image": float(masks.sum() / len(masks))})
    return {"synthetic": True, "n_images": n_images, "seed": seed, "sigma": DEFAULT_SIGMA, "rows": rows,
            "method": __doc__.split("\n\n")[1].replace("\n", " ")}


def localization_markdown(result: dict) -> str:
    """The benchmark's table (per entry, and the mean per model), labelled synthetic."""
    lines = [f"Synthetic defects: {result['n_images']} normal test images per class, patches of another class pasted "
             f"(seed {result['seed']}); map smoothing sigma {result['sigma']} px.", "",
             "Pixel AUROC of each map (smoothed, and raw), and the image AUROC of the detector's score (defective vs intact).",
             "", "| entry | score (device) | autoencoder map | raw | PCA map | PCA raw | mean image map | image AUROC |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    keys = ("pixel_auroc", "pixel_auroc_raw", "pca_pixel_auroc", "pca_pixel_auroc_raw", "mean_image_pixel_auroc",
            "image_auroc")
    for r in result["rows"]:
        lines.append(f"| {r['entry']} | {r['score']} ({r['quant']}) | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
    for model in sorted({r["entry"].split("/")[0] for r in result["rows"]}):
        rs = [r for r in result["rows"] if r["entry"].startswith(model + "/")]
        mean = [float(np.mean([r[k] for r in rs])) for k in keys]
        lines.append(f"| **{model} mean ({len(rs)} classes)** | | **{mean[0]:.3f}** | " +
                     " | ".join(f"{v:.3f}" for v in mean[1:]) + " |")
    return "\n".join(lines) + "\n"
