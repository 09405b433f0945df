"""The one latency and throughput measurement of a detector (TensorFlow-free: it runs on the device).

Batch-1 latency is measured twice on the same image, so it is clear where the time
goes: through ``Detector.score`` (input checks, quantization, scoring in numpy) and
the interpreter's bare ``invoke()`` with the input tensor already set. The
difference is the Python around the interpreter.
"""

from __future__ import annotations

import time

import numpy as np

# Untimed calls before the timed ones: first invocations allocate and warm caches.
WARMUP = 100
# docs/PROTOCOL.md: the median over at least 1,000 invocations.
ITERATIONS = 1000
BATCH_REPEATS = 20


def _summary(times_ns: np.ndarray) -> dict[str, float]:
    us = np.asarray(times_ns, np.float64) / 1e3
    return {"median": float(np.median(us)), "p10": float(np.percentile(us, 10)), "p90": float(np.percentile(us, 90)),
            "n": int(len(us))}


def batch1_latency(detector, image: np.ndarray, *, iterations: int = ITERATIONS, warmup: int = WARMUP) -> dict:
    """Batch-1 latency of ``detector`` (an ``edge.Detector``) on one input, in microseconds.

    ``detector.score`` and the bare ``invoke()`` of the same interpreter are timed alternately, call by
    call, so both see the same machine state. Returns ``{"detector": {...}, "invoke": {...},
    "python_us": ..., "threads": ...}``: median, p10, p90 and n of each, and the difference of the
    medians (the Python around the interpreter).
    """
    x1 = np.asarray(image)[None] if np.ndim(image) == len(detector.input_shape) else np.asarray(image)[:1]
    score, invoke = (lambda: detector.score(x1)), detector._interp.invoke
    whole, bare = _alternate(score, invoke, iterations, warmup)
    return {"detector": _summary(whole), "invoke": _summary(bare), "python_us": _median_us(whole) - _median_us(bare),
            "threads": detector.num_threads, "batch": 1, "iterations": iterations, "warmup": warmup, "alternated": True}


def _alternate(first, second, iterations: int, warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """Times of ``first()`` and ``second()`` called in turn (ns), after ``warmup`` untimed rounds."""
    for _ in range(warmup):
        first()
        second()
    a, b = np.empty(iterations, np.int64), np.empty(iterations, np.int64)
    clock = time.perf_counter_ns
    for i in range(iterations):
        t0 = clock()
        first()
        t1 = clock()
        second()
        a[i], b[i] = t1 - t0, clock() - t1
    return a, b


def _median_us(times_ns: np.ndarray) -> float:
    return float(np.median(times_ns)) / 1e3


def throughput(score, inputs: np.ndarray, *, repeats: int = BATCH_REPEATS) -> float:
    """Inputs/second of ``score(inputs)``: one warm-up call, then the median of ``repeats`` calls."""
    score(inputs)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        score(inputs)
        times.append(time.perf_counter() - t0)
    return float(len(inputs) / np.median(times))


def measure_bundle(bundle: str, inputs: np.ndarray, *, iterations: int = ITERATIONS) -> dict:
    """Latency (batch 1, one thread) and throughput of a bundle, as a device measures them."""
    from edge.detector import Detector

    detector = Detector.load(bundle, num_threads=1)
    return {"latency": batch1_latency(detector, inputs[0], iterations=iterations),
            "throughput_per_second": round(throughput(detector.score, inputs[:1000]), 1)}


def stream_latency(bundle: str, recording: np.ndarray, *, repeats: int = 3) -> dict:
    """Per-hop latency of ``edge.StreamDetector`` on a recording [T, C] of raw samples, in microseconds, one thread.

    The recording streams ``repeats`` times in chunks of one hop (after a first window), so each
    timed ``push`` is one hop: standardization, ring buffer, one batch-1 model call, the score.
    The bare ``invoke()`` is timed after each hop on the same window (alternating); the difference
    of the medians is the Python around the interpreter. ``samples_per_second``: the recording pushed one sample per call.
    """
    from edge.stream import StreamDetector

    stream = StreamDetector.load(bundle, num_threads=1)
    w, hop = stream.window, stream.hop
    x = stream.input.recording(recording)
    invoke_fn = stream.detector._interp.invoke
    hops, bare = [], []
    clock = time.perf_counter_ns
    for _ in range(repeats):
        stream.reset()
        stream.push(x[:w])
        for i in range(w, len(x) - hop + 1, hop):
            t0 = clock()
            stream.push(x[i : i + hop])
            t1 = clock()
            invoke_fn()  # the same window again: the bare model call, alternating with the hops
            bare.append(clock() - t1)
            hops.append(t1 - t0)
    start = len(hops) // 10  # the first tenth warms caches up
    timed, invoke_ns = np.asarray(hops[start:]), np.asarray(bare[start:])
    per_hop, invoke = _summary(timed), _summary(invoke_ns)
    per_hop["p99"] = float(np.percentile(timed / 1e3, 99))
    invoke["p99"] = float(np.percentile(invoke_ns / 1e3, 99))
    stream.reset()
    t0 = time.perf_counter()
    for row in x:
        stream.push(row)
    seconds = time.perf_counter() - t0
    import sys

    return {"per_hop": per_hop, "invoke": invoke, "python_us": per_hop["median"] - invoke["median"], "window": w,
            "hop": hop, "samples_per_second": round(len(x) / seconds, 1), "samples": int(len(x)), "threads": 1,
            "tensorflow_loaded": "tensorflow" in sys.modules}


def main(argv: list[str] | None = None) -> None:
    """``python -m edge.latency BUNDLE INPUTS.npy [ITERATIONS]``: print :func:`measure_bundle` as JSON;
    ``python -m edge.latency --stream BUNDLE RECORDING.npy``: print :func:`stream_latency`.

    The training side measures in such a child process: TensorFlow's threads, once loaded,
    slow a Python process's own timings, and a device never loads TensorFlow.
    """
    import json
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args[0] == "--stream":
        print(json.dumps(stream_latency(args[1], np.load(args[2], allow_pickle=False))))
        return
    inputs = np.load(args[1], allow_pickle=False)
    print(json.dumps(measure_bundle(args[0], inputs, iterations=int(args[2]) if len(args) > 2 else ITERATIONS)))


if __name__ == "__main__":
    main()
