"""Summarize the zoo's device fidelity per dataset and model from manifests: before and after a change.

Usage: python scripts/zoo_summary.py BEFORE_MANIFEST.json AFTER_MANIFEST.json
(e.g. `git show HEAD~1:saved_models/manifest.json > /tmp/before.json`). Prints a Markdown table: the device mode,
mean device AUROC (and float), entries within 0.005 of float, the least / mean verdict agreement between
LiteRT's XNNPACK and reference kernels and between the float model and the device detector, the median
bundle size. Reads the figures the manifests record; measures nothing (latency is left out: two manifests may
have been measured on different days).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict

KERNELS, FLOAT = "litert_default vs litert_reference", "litert_default vs keras_float"


def _groups(path: str) -> dict:
    entries = json.load(open(path))["entries"].values()
    groups = defaultdict(list)
    for r in entries:
        groups[(r["dataset"], r["model"])].append(r)
    return groups


def _row(records: list) -> dict:
    quants = sorted({r.get("quant", "int8") for r in records})
    q = "/".join(quants)
    dev = [r["metrics"][r.get("quant", "int8")]["auroc"] for r in records]
    flo = [r["metrics"]["float"]["auroc"] for r in records]
    ker = [r["agreement"]["pairs"][KERNELS]["verdicts_agree"] for r in records]
    fvd = [r["agreement"]["pairs"][FLOAT]["verdicts_agree"] for r in records]
    return {"quant": q, "n": len(records), "auroc": statistics.mean(dev), "float": statistics.mean(flo),
            "within": sum(abs(d - f) <= 0.005 for d, f in zip(dev, flo)), "not_below": sum(d >= f - 0.005 for d, f in zip(dev, flo)), "ker": (min(ker), statistics.mean(ker)),
            "ker_ok": sum(k >= 0.998 for k in ker), "fvd": (min(fvd), statistics.mean(fvd)),
            "kib": statistics.median(r["size"]["bundle_bytes"] for r in records) / 1024}


def main(before: str, after: str) -> None:
    old, new = _groups(before), _groups(after)
    print("| dataset | model | device before → after | mean AUROC before → after (float) | within 0.005 of float |"
          " kernels same verdict, least / mean | entries ≥ 99.8% | float vs device, least / mean | bundle KiB |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    totals = defaultdict(int)
    for key in sorted(new):
        a, b = _row(old[key]), _row(new[key])
        totals["n"] += b["n"]
        for name in ("within", "not_below", "ker_ok"):
            totals[f"{name}_before"] += a[name]
            totals[f"{name}_after"] += b[name]
        print(f"| {key[0]} | {key[1]} | {a['quant']} → {b['quant']} | {a['auroc']:.4f} → {b['auroc']:.4f} ({b['float']:.4f}) "
              f"| {a['within']} → {b['within']} of {b['n']} | {100 * a['ker'][0]:.2f}% / {100 * a['ker'][1]:.2f}% → "
              f"{100 * b['ker'][0]:.2f}% / {100 * b['ker'][1]:.2f}% | {a['ker_ok']} → {b['ker_ok']} "
              f"| {100 * a['fvd'][0]:.2f}% / {100 * a['fvd'][1]:.2f}% → {100 * b['fvd'][0]:.2f}% / {100 * b['fvd'][1]:.2f}% "
              f"| {a['kib']:.1f} → {b['kib']:.1f} |")
    print(f"\nAll {totals['n']} entries: within 0.005 of float {totals['within_before']} → {totals['within_after']}; "
          f"no more than 0.005 below float {totals['not_below_before']} → {totals['not_below_after']}; "
          f"kernels ≥ 99.8% {totals['ker_ok_before']} → {totals['ker_ok_after']}.")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
