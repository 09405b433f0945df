"""Evaluation and training plots as PNG files (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from zoo.files import atomic_path  # noqa: E402


def _save(fig, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)


def _img(a: np.ndarray) -> np.ndarray:
    return a[..., 0] if a.shape[-1] == 1 else a


def reconstructions(
    path: str | os.PathLike,
    normal: tuple[np.ndarray, np.ndarray, np.ndarray],
    anomalous: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    class_names: Sequence[str],
    title: str = "",
) -> Path:
    """Grid of original / reconstruction / per-pixel squared error for normal and anomalous images.

    ``normal`` and ``anomalous`` are (images, reconstructions, labels); each
    image's column says its class and its score (mean squared error).
    """
    cols = max(len(normal[0]), len(anomalous[0]))
    fig, axes = plt.subplots(6, cols, figsize=(1.5 * cols + 1.2, 10.5), squeeze=False)
    err_max = max(float(np.square(x - xh).max()) for x, xh, _ in (normal, anomalous) if len(x)) or 1.0
    for block, (name, (x, xh, labels)) in enumerate((("normal", normal), ("anomalous", anomalous))):
        for j in range(cols):
            for r in range(3):
                ax = axes[3 * block + r, j]
                ax.set_xticks([])
                ax.set_yticks([])
                if j >= len(x):
                    ax.axis("off")
                    continue
                err = np.square(x[j] - xh[j])
                if r == 0:
                    ax.imshow(_img(x[j]), cmap="gray", vmin=0, vmax=1)
                    ax.set_title(f"{class_names[int(labels[j])]}\nMSE {err.mean():.4f}", fontsize=8)
                elif r == 1:
                    ax.imshow(_img(xh[j]), cmap="gray", vmin=0, vmax=1)
                else:
                    im = ax.imshow(_img(err.mean(axis=-1, keepdims=True)), cmap="inferno", vmin=0, vmax=err_max)
                if j == 0:
                    ax.set_ylabel(f"{name}\n" + ("original", "reconstruction", "squared error")[r], fontsize=8)
    # A colorbar axes of its own, so the last column keeps the size of the others.
    fig.subplots_adjust(right=0.9, hspace=0.45)
    fig.colorbar(im, cax=fig.add_axes([0.92, 0.35, 0.012, 0.3]), label="per-pixel squared error")
    fig.suptitle(title or "Originals, reconstructions and error maps")
    return _save(fig, path)


def score_histogram(
    path: str | os.PathLike,
    scores: np.ndarray,
    y_true: np.ndarray,
    threshold: float,
    *,
    score_name: str = "mse",
    title: str = "",
) -> Path:
    """Histograms of normal vs anomalous test scores with the threshold as a vertical line."""
    scores = np.asarray(scores, np.float64)
    y_true = np.asarray(y_true).astype(bool)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    hi = np.percentile(scores, 99.5)
    bins = np.linspace(scores.min(), max(hi, threshold * 1.05), 80)
    ax.hist(scores[~y_true], bins=bins, alpha=0.6, density=True, label=f"normal test units (n={int((~y_true).sum())})")
    ax.hist(scores[y_true], bins=bins, alpha=0.6, density=True, label=f"anomalies (n={int(y_true.sum())})")
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.4g}")
    ax.set_xlabel(f"anomaly score ({score_name}); the top 0.5% are off the axis")
    ax.set_ylabel("density")
    ax.set_title(title or "Anomaly scores")
    ax.legend()
    return _save(fig, path)


def signal_scores(path: str | os.PathLike, signal: np.ndarray, scores: np.ndarray, labels: np.ndarray, threshold: float,
                  *, title: str = "", score_label: str = "score (largest covering window)") -> Path:
    """A recording (standardized channels) above its per-sample scores, with the threshold, the flagged samples
    and the labelled anomalies shaded."""
    signal, scores, labels = np.asarray(signal), np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    t = np.arange(len(scores))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    for c in range(signal.shape[1]):
        top.plot(t, signal[:, c], linewidth=0.6, label=f"channel {c}" if signal.shape[1] > 1 else "signal")
    bottom.plot(t, scores, color="tab:purple", linewidth=0.8, label=score_label)
    bottom.axhline(threshold, color="k", linestyle="--", linewidth=0.8, label=f"threshold {threshold:.4g}")
    flagged = scores > threshold
    bottom.fill_between(t, 0, 1, where=flagged, transform=bottom.get_xaxis_transform(), color="tab:red", alpha=0.15,
                        label="flagged")
    for ax in (top, bottom):
        ax.fill_between(t, 0, 1, where=labels, transform=ax.get_xaxis_transform(), color="tab:orange", alpha=0.35,
                        label="labelled anomaly" if ax is top else None)
    top.set_ylabel("standardized value")
    bottom.set_ylabel("anomaly score")
    bottom.set_yscale("log" if scores.min() > 0 and scores.max() / max(scores.min(), 1e-12) > 100 else "linear")
    bottom.set_xlabel("sample")
    top.set_title(title or "Signal and anomaly scores")
    top.legend(loc="upper right", fontsize=8)
    bottom.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def roc_curves(path: str | os.PathLike, curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], *, title: str = "") -> Path:
    """ROC curves on one axes: ``{label: (fpr, tpr, auroc)}``."""
    fig, ax = plt.subplots(figsize=(5.2, 5))
    for label, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{label} (AUROC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="gray", linestyle=":", label="chance")
    ax.set_xlabel("false-positive rate (normal flagged)")
    ax.set_ylabel("true-positive rate (anomalies flagged)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title(title or "ROC curve")
    ax.legend(loc="lower right")
    return _save(fig, path)


def training_curves(path: str | os.PathLike, history: Mapping[str, Sequence[float]], *, best_epoch: int | None = None, title: str = "") -> Path:
    """Training and normal-validation loss per epoch (log scale), with the restored best epoch marked."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    epochs = np.asarray(history.get("epoch", range(len(history["loss"])))) + 1
    ax.plot(epochs, history["loss"], marker="o", label="training loss")
    if "val_loss" in history:
        ax.plot(epochs, history["val_loss"], marker="o", label="normal-validation loss")
    if best_epoch is not None:
        ax.axvline(best_epoch + 1, color="k", linestyle="--", label=f"best epoch ({best_epoch + 1}, weights restored)")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)")
    ax.set_title(title or "Training curves")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def latent_space(path: str | os.PathLike, codes: np.ndarray, labels: np.ndarray, *, class_names: Sequence[str], normal_class: int | None = None, title: str = "",
                 projection: str = "pca", seed: int = 0) -> Path:
    """The codes projected to 2-D, one color per class (the normal class drawn on top).

    ``projection`` is "pca" or "tsne" (scikit-learn's TSNE, seeded with ``seed``;
    slow beyond a few thousand codes, so pass a subsample).
    """
    from sklearn.decomposition import PCA

    codes = np.asarray(codes, np.float64).reshape(len(codes), -1)
    labels = np.asarray(labels).astype(int)
    if projection not in ("pca", "tsne"):
        raise ValueError(f"projection must be 'pca' or 'tsne'. Received: projection={projection!r}")
    if projection == "tsne" and codes.shape[1] > 2:
        from sklearn.manifold import TSNE

        xy = TSNE(n_components=2, init="pca", perplexity=min(30.0, (len(codes) - 1) / 3), random_state=seed).fit_transform(codes)
    else:
        xy = PCA(n_components=2).fit_transform(codes) if codes.shape[1] > 2 else np.pad(codes, ((0, 0), (0, 2 - codes.shape[1])))
    axis = "t-SNE dimension" if projection == "tsne" else "principal component"
    fig, ax = plt.subplots(figsize=(7.5, 6))
    cmap = plt.get_cmap("tab10")
    order = sorted(np.unique(labels), key=lambda c: c == normal_class)
    for c in order:
        m = labels == c
        normal = c == normal_class
        ax.scatter(xy[m, 0], xy[m, 1], s=10 if normal else 5, alpha=0.9 if normal else 0.5, color=cmap(c % 10),
                   edgecolors="k" if normal else "none", linewidths=0.3,
                   label=f"{c} {class_names[c]}" + (" (normal)" if normal else ""))
    ax.set_xlabel(f"{axis} 1 of the codes")
    ax.set_ylabel(f"{axis} 2 of the codes")
    ax.set_title(title or f"Latent space ({'t-SNE' if projection == 'tsne' else 'PCA'} of the codes)")
    ax.legend(fontsize=8, markerscale=2, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)
