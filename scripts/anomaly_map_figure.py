"""The README's anomaly-map figure: the default detector (conv_ae, class 0 = T-shirt/top) on three test images.

A normal T-shirt, the same T-shirt with a synthetic defect (a patch of a test image of another class pasted in, as
`aezoo bench anomaly-maps` makes them), and a pullover (another class). Usage: .venv/bin/python scripts/anomaly_map_figure.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from edge import Detector
from edge.anomaly_map import pixel_error_map, write_map_png
from training.data import one_class_split
from training.localization import synthetic_defects

OUT = Path(__file__).resolve().parents[1] / "docs" / "img" / "anomaly_maps.png"


def main() -> None:
    s = one_class_split("fashion_mnist", 0)
    det = Detector.from_zoo("conv_ae", "fashion_mnist", 0)
    normal = s.x_test[s.test_labels == 0][:1]
    defect, _ = synthetic_defects(normal, s.x_test[s.test_labels == 7], np.random.default_rng(3))
    pullover = s.x_test[s.test_labels == 2][:1]
    x = np.concatenate([normal, defect, pullover])
    scores, recon = det.score(x), det.reconstruct(x)
    maps = pixel_error_map(x, recon)
    with tempfile.TemporaryDirectory() as tmp:
        panels = []
        for i, name in enumerate(("normal", "synthetic defect", "another class")):
            verdict = "ANOMALY" if scores[i] > det.threshold_ else "normal"
            panels.append(Image.open(write_map_png(Path(tmp) / f"{i}.png", x[i], recon[i], maps[i], vmax=0.1,
                                                   title=f"{name}, nap={scores[i]:.0f} {verdict}")).convert("RGB"))
        w, h = panels[0].size
        canvas = Image.new("RGB", (w, 3 * h), "white")
        for i, p in enumerate(panels):
            canvas.paste(p, (0, i * h))
        canvas.save(OUT)
    print(f"wrote {OUT} (threshold {det.threshold_:.0f})")


if __name__ == "__main__":
    main()
