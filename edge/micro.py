"""Microcontroller checks: a model under TFLite Micro against LiteRT, and a series bundle's C stream detector.

The C files themselves come from ``edge.c_array``. ``check_micro`` runs the
model under the TFLite Micro Python interpreter (package ``tflite-micro``) in a
child process, because TFLite Micro aborts the whole process (segfault) when the
tensor arena is too small. ``check_stream_c`` compiles a series bundle's C stream
detector (``edge.micro_series``) and runs it on a recording with the model under TFLite
Micro, against ``edge.StreamDetector``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from zoo.errors import UserError
from zoo.quiet import native_stderr_silenced

_ARENA_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '([A-Z0-9_]+)'")


@dataclass
class MicroReport:
    """Result of running a model under the TFLite Micro interpreter, against LiteRT and the bundle's threshold."""

    ok: bool
    ops: list[str]
    unsupported_ops: list[str]
    arena_bytes: int | None
    arena_verified: bool
    max_abs_diff_vs_litert: int | None
    max_abs_diff_vs_litert_xnnpack: int | None
    images_compared: int
    max_score_diff_vs_litert: float | None = None
    max_score_diff_vs_litert_xnnpack: float | None = None
    verdicts_agree: int | None = None
    message: str = ""
    agreement: dict | None = None  # edge.agreement.compare of TFLite Micro and LiteRT's two kernel sets

    def to_dict(self) -> dict:
        """Return the report as a JSON-ready dictionary."""
        return asdict(self)


_CHILD = r"""
import sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
model = open(sys.argv[1], "rb").read()
arena = int(sys.argv[2])
x = np.load(sys.argv[3])
n_out = int(sys.argv[5])
interp = runtime.Interpreter.from_bytes(model, arena_size=arena)
outs = [[] for _ in range(n_out)]
for i in range(len(x)):
    interp.set_input(x[i : i + 1], 0)
    interp.invoke()
    for k in range(n_out):
        outs[k].append(np.array(interp.get_output(k)))
np.savez(sys.argv[4], *[np.concatenate(o) for o in outs])
sys.stdout.flush()
interp.print_allocations()
"""


def _run_child(model_path: Path, arena: int, x_path: Path, out_path: Path, n_out: int, timeout: float) -> tuple[bool, str]:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(model_path), str(arena), str(x_path), str(out_path), str(n_out)],
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return False, f"TFLite Micro run timed out after {timeout:g} s"
    return proc.returncode == 0 and out_path.exists(), proc.stdout + proc.stderr


def model_ops(tflite: bytes) -> list[str]:
    """Return the sorted builtin op names of a ``.tflite`` model (read with LiteRT, no delegate)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(
        model_content=tflite, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    return sorted({op["op_name"] for op in interp._get_ops_details()})


def _run_micro(tflite: bytes, q: np.ndarray, n_out: int, timeout: float) -> tuple[list[np.ndarray] | None, int | None, bool, str]:
    """(outputs, arena bytes, arena verified, log) of TFLite Micro on the quantized inputs ``q``."""
    with tempfile.TemporaryDirectory(prefix="aezoo-micro-") as tmp:
        tmp = Path(tmp)
        model_path, x_path, out_path = tmp / "model.tflite", tmp / "x.npy", tmp / "out.npz"
        model_path.write_bytes(tflite)
        np.save(x_path, q)
        generous = max(64 * 1024, 20 * len(tflite)) + int(q[0].size) * 64
        ok, log = _run_child(model_path, generous, x_path, out_path, n_out, timeout)
        if not ok:
            return None, None, False, log
        with np.load(out_path) as data:
            outs = [data[f"arr_{k}"] for k in range(n_out)]
        m = _ARENA_TOTAL.search(log)
        arena = int(m.group(1)) if m else None
        # The recorded total should suffice; small margins cover alignment if it does not.
        for margin in (0, 256, 1024, 4096) if arena is not None else ():
            out_path.unlink(missing_ok=True)
            verified, _ = _run_child(model_path, arena + margin, x_path, out_path, n_out, timeout)
            if verified:
                return outs, arena + margin, True, log
        return outs, arena, False, log


def check_micro(tflite: bytes, spec: dict, inputs: np.ndarray, *, timeout: float = 120.0) -> MicroReport:
    """Run an int8, batch-1 bundle model under TFLite Micro; compare outputs, scores and verdicts with LiteRT.

    ``inputs`` are what a device passes in (images in [0, 1] or raw vectors). Each runs
    through TFLite Micro with a generous arena; the arena actually used is read from its
    recording allocator and proven enough by a second run. The int8 outputs are compared
    with LiteRT's builtin kernels without delegates (measured closest to TFLite Micro) and with its
    default XNNPACK path, in int8 steps; the scores (``edge.scoring``) and the verdicts
    against the bundle's threshold are compared too. ``ok`` needs a verified arena and every
    verdict to agree; the int8 steps and score differences are reported, not required to be 0.
    """
    from edge.agreement import compare
    from edge.detector import Detector
    from edge.scoring import compute

    try:
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    except ImportError:
        raise UserError("the TFLite Micro check needs the tflite-micro package: pip install tflite-micro") from None
    reference = Detector(tflite, {**spec, "model": {**spec["model"], "kernels": "reference"}})
    if reference.quantize(inputs[:1]).dtype != np.int8 or reference._batch != 1:
        raise UserError("the TFLite Micro check needs a full-integer int8 model with a batch of 1 "
                        "(aezoo export --format c-array --quant int8)")
    x = reference.prepare(inputs)
    q = reference.quantize(inputs)
    ops = model_ops(tflite)
    n_out = len(reference.output_names)
    micro, arena, verified, log = _run_micro(tflite, q, n_out, timeout)
    if micro is None:
        missing = sorted(set(_MISSING_OP.findall(log)))
        return MicroReport(False, ops, missing, None, False, None, None, 0,
                           message=f"TFLite Micro could not run the model: {log.strip()[-800:]}")
    expected = _litert_outputs(tflite, q, delegates=False)
    expected_xnn = _litert_outputs(tflite, q, delegates=True)
    diff = max(int(np.max(np.abs(m.astype(np.int32) - e.astype(np.int32)))) for m, e in zip(micro, expected))
    diff_xnn = max(int(np.max(np.abs(m.astype(np.int32) - e.astype(np.int32)))) for m, e in zip(micro, expected_xnn))

    def scores(raw: list[np.ndarray]) -> np.ndarray:
        outs = {name: (r.astype(np.float64) - zero) * scale
                for (name, _, (scale, zero)), r in zip(reference._outs, raw)}
        return compute(reference.score_kind, x, outs, reference.score_params)

    s_micro, s_ref, s_xnn = scores(micro), scores(expected), scores(expected_xnn)
    t = float(spec["threshold"]["value"])
    agree = int(np.sum((s_micro > t) == (s_ref > t)))
    # int8 kernels may round differently by a step, and a whitened score head amplifies that, so
    # the outputs need not match bit for bit; what must hold is the device's decision.
    ok = verified and agree == len(x)
    spread = float(np.max(np.abs(s_micro - s_ref))) / abs(t) if t else float("nan")
    message = (f"{'runs' if ok else 'FAILED: runs'} under TFLite Micro with a {arena}-byte arena "
               f"({'verified' if verified else 'not verified'}); outputs within {diff} int8 step(s) of LiteRT's "
               f"builtin kernels ({diff_xnn} of LiteRT with XNNPACK), scores within {spread:.1%} of the threshold; "
               f"{agree} of {len(x)} verdicts agree with the bundle's")
    pairs = compare({"tflite_micro": s_micro, "litert_reference": s_ref, "litert_default": s_xnn}, dict.fromkeys(
        ("tflite_micro", "litert_reference", "litert_default"), t))
    return MicroReport(ok, ops, [], arena, verified, diff, diff_xnn, len(x),
                       float(np.max(np.abs(s_micro - s_ref))), float(np.max(np.abs(s_micro - s_xnn))), agree, message,
                       {"on": "the normal validation inputs checked under TFLite Micro", **pairs})


def _litert_outputs(tflite: bytes, inputs: np.ndarray, *, delegates: bool) -> list[np.ndarray]:
    """Raw outputs of LiteRT on each input (batch 1), with or without its default XNNPACK delegate."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with native_stderr_silenced():
        lite = Interpreter(model_content=tflite, num_threads=1, experimental_op_resolver_type=resolver)
    lite.allocate_tensors()
    in_idx = lite.get_input_details()[0]["index"]
    out_idx = [d["index"] for d in lite.get_output_details()]
    outs: list[list[np.ndarray]] = [[] for _ in out_idx]
    for i in range(len(inputs)):
        lite.set_tensor(in_idx, inputs[i : i + 1])
        lite.invoke()
        for k, idx in enumerate(out_idx):
            outs[k].append(lite.get_tensor(idx).copy())
    return [np.concatenate(o) for o in outs]


# -- the series detector in C (edge/micro_series.py) on a recording ----------------------------------------------

_STREAM_CHILD = r"""
import ctypes, json, sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime

lib_path, model_path, arena, rec_path, n_out, in_size, out_sizes, raw_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), json.loads(sys.argv[7]), sys.argv[8]
lib = ctypes.CDLL(lib_path)
interp = runtime.Interpreter.from_bytes(open(model_path, "rb").read(), arena_size=arena)
inp = np.zeros(in_size, np.int8)
outs = [np.zeros(n, np.int8) for n in out_sizes]
ptrs = (ctypes.POINTER(ctypes.c_int8) * n_out)(*[o.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)) for o in outs])
shape = interp.get_input_details(0)["shape"]

@ctypes.CFUNCTYPE(ctypes.c_int)
def invoke():
    interp.set_input(inp.reshape(shape), 0)
    interp.invoke()
    for k in range(n_out):
        outs[k][:] = np.asarray(interp.get_output(k)).reshape(-1)
    return 0

lib.aezoo_detect_bind(inp.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)), ptrs, invoke)
lib.aezoo_detect.restype = ctypes.c_int
rec = np.ascontiguousarray(np.load(rec_path), np.float32)
score = ctypes.c_double()
rows, raw, inputs = [], [[] for _ in outs], []
for t in range(len(rec)):
    v = lib.aezoo_detect(rec[t].ctypes.data_as(ctypes.POINTER(ctypes.c_float)), ctypes.byref(score))
    if v == -2 or v == -3:
        raise SystemExit(f"aezoo_detect returned {v} at sample {t}")
    if v >= 0:
        rows.append([t, score.value, v])
        inputs.append(inp.copy())
        for k, o in enumerate(outs):
            raw[k].append(o.copy())
np.savez(raw_path, *[np.array(r) for r in raw], inputs=np.array(inputs))
json.dump(rows, sys.stdout)
"""


def check_stream_c(bundle: str | Path, recording: np.ndarray, *, timeout: float = 600.0) -> dict:
    """Compile a c-array series bundle's ``aezoo_detect.c`` and run it on ``recording`` [T, C] with the model under
    TFLite Micro; compare each verdict and score with ``edge.StreamDetector`` (LiteRT, the bundle's kernels).

    Returns ``{"verdicts", "agree", "anomalies", "max_score_diff", "relative_score_diff", "inputs_equal",
    "max_c_vs_numpy_on_micro_outputs", "state_bytes", "arena_bytes", "model_bytes", "compiler"}``: the score
    differences are C on TFLite Micro against LiteRT (kernels round differently), and C against ``edge.scoring``
    on the same TFLite Micro outputs (the C code's own error, relative); ``inputs_equal``: the C code wrote the int8
    input tensor ``edge.Detector`` quantizes, window for window.
    """
    from edge.micro_series import NAME
    from edge.stream import StreamDetector

    bundle = Path(bundle)
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise UserError("checking the C stream detector needs a C compiler (cc or gcc) on PATH")
    spec = json.loads((bundle / "detector.json").read_text())
    if not (bundle / f"{NAME}.c").is_file() or "micro" not in spec:
        raise UserError(f"{bundle} has no {NAME}.c: export the series run with --format c-array")
    stream = StreamDetector.load(bundle)
    x = stream.input.recording(recording)
    expected = [(v.end, v.score, int(v.anomaly)) for v in stream.push(x)]
    with tempfile.TemporaryDirectory(prefix="aezoo-cstream-") as tmp:
        lib = Path(tmp) / "libaezoo_detect.so"
        build = [cc, "-std=c99", "-O2", "-Wall", "-Werror", "-ffp-contract=off", "-shared", "-fPIC",
                 str(bundle / f"{NAME}.c"), "-o", str(lib), "-lm"]
        proc = subprocess.run(build, capture_output=True, text=True)
        if proc.returncode != 0:
            raise UserError(f"the C stream detector did not compile: {proc.stderr.strip()[-800:]}")
        np.save(Path(tmp) / "rec.npy", x)
        out_sizes = [int(np.prod(o["shape"])) for o in spec["outputs"]]
        arena = int(spec["micro"]["arena_bytes"]) + 1024
        proc = subprocess.run([sys.executable, "-c", _STREAM_CHILD, str(lib), str(bundle / spec["model"]["file"]), str(arena),
                               str(Path(tmp) / "rec.npy"), str(len(out_sizes)), str(int(np.prod(spec["input"]["shape"]))),
                               json.dumps(out_sizes), str(Path(tmp) / "raw.npz")], capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0:
            raise UserError(f"the C stream detector failed under TFLite Micro: {proc.stderr.strip()[-800:]}")
        with np.load(Path(tmp) / "raw.npz") as raw:
            micro_outputs = [raw[f"arr_{k}"] for k in range(len(out_sizes))]
            c_inputs = raw["inputs"]
    got = json.loads(proc.stdout)
    if [r[0] for r in got] != [e[0] for e in expected]:
        raise UserError(f"the C stream detector gave verdicts at other samples than StreamDetector: "
                        f"{[r[0] for r in got][:5]}... vs {[e[0] for e in expected][:5]}...")
    diffs = [abs(g[1] - e[1]) for g, e in zip(got, expected)]
    t = float(spec["threshold"]["value"])
    return {"verdicts": len(got), "agree": sum(g[2] == e[2] for g, e in zip(got, expected)),
            "anomalies": sum(g[2] for g in got), "max_score_diff": max(diffs, default=0.0),
            "relative_score_diff": max(diffs, default=0.0) / abs(t) if t else None,
            "inputs_equal": _same_inputs(stream, x, c_inputs),
            "max_c_vs_numpy_on_micro_outputs": _c_vs_numpy(stream, x, micro_outputs, [g[1] for g in got]),
            "state_bytes": 4 * stream.window * stream.channels, "arena_bytes": int(spec["micro"]["arena_bytes"]),
            "model_bytes": int(spec["model"]["bytes"]), "compiler": Path(cc).name}


def _windows(stream, x: np.ndarray) -> np.ndarray:
    from edge.inputs import sliding_windows

    return sliding_windows(x, stream.window, stream.hop)[0]


def _same_inputs(stream, x: np.ndarray, c_inputs: np.ndarray) -> bool:
    """True when every int8 input tensor the C code wrote is the one ``edge.Detector`` quantizes for that window."""
    host = stream.detector.quantize(_windows(stream, x))
    return bool(np.array_equal(host.reshape(len(host), -1), c_inputs.reshape(len(c_inputs), -1)))


def _c_vs_numpy(stream, x: np.ndarray, micro_outputs: list[np.ndarray], c_scores: list[float]) -> float:
    """Largest relative difference of the C scores and ``edge.scoring`` on the very outputs TFLite Micro gave."""
    from edge.scoring import compute

    det = stream.detector
    windows = det.prepare(_windows(stream, x))
    outs = {name: (raw.astype(np.float64).reshape(len(raw), *o["shape"]) - zero) * scale
            for (name, _, (scale, zero)), raw, o in zip(det._outs, micro_outputs, det.spec["outputs"])}
    ref = compute(det.score_kind, windows, outs, det.score_params)
    return float(np.max(np.abs(ref - np.asarray(c_scores)) / np.maximum(np.abs(ref), 1e-12))) if len(ref) else 0.0
