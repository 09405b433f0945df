"""Detector.score minus the bare invoke() for every zoo entry, alternating call by call, with a checkout's edge package.

    python scripts/python_overhead.py CHECKOUT OUT.json [ITERATIONS]

CHECKOUT is a clone of this repository (its edge/ and saved_models/ are used), so the same
measurement compares two versions of the runtime on one machine: run it on the old clone,
then on the new one. One input per entry (random pixels in [0, 1]; random standardized
windows or vectors), 200 untimed rounds, then ITERATIONS (default 2,000) timed rounds.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    checkout, out = sys.argv[1], sys.argv[2]
    iterations = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    sys.path.insert(0, checkout)
    import numpy as np

    from edge import Detector

    entries = json.load(open(f"{checkout}/saved_models/manifest.json"))["entries"]
    rng, clock, result = np.random.default_rng(0), time.perf_counter_ns, {}
    for key, record in entries.items():
        det = Detector.load(f"{checkout}/saved_models/{record['path']}/detector")
        if det.input.name == "image":
            x = rng.random((1, *det.input_shape), dtype=np.float32)
        else:
            x = det.input.to_device(rng.standard_normal((1, *det.input_shape)).astype(np.float32))
        invoke = det._interp.invoke
        for _ in range(200):
            det.score(x)
            invoke()
        whole, bare = np.empty(iterations, np.int64), np.empty(iterations, np.int64)
        for i in range(iterations):
            t0 = clock()
            det.score(x)
            t1 = clock()
            invoke()
            whole[i], bare[i] = t1 - t0, clock() - t1
        d, v = float(np.median(whole)) / 1e3, float(np.median(bare)) / 1e3
        result[key] = {"detector_us": d, "invoke_us": v, "python_us": d - v}
        print(f"{key:40s} detector {d:7.1f} us  invoke {v:7.1f} us  python {d - v:6.1f} us", flush=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
