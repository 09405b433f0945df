"""``Detector``: a LiteRT anomaly detector loaded from a bundle (TensorFlow-free).

Imports only numpy and ai-edge-litert (Pillow only when decoding image files), so
it runs on a device that has no TensorFlow. The model's outputs (a reconstruction,
whitened hidden features, ...) become one score per input through
``edge.scoring.compute``, the same function the training side scores with.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edge import bundle as _bundle
from edge import inputs as _inputs
from edge.scoring import SCORE_KINDS, compute, get_kind
from zoo.errors import UserError
from zoo.quiet import native_stderr_silenced

# Batches larger than this are scored in chunks, so memory stays bounded.
MAX_BATCH = 1024
# LiteRT creates one thread pool per interpreter; thousands of threads crash the process.
MAX_THREADS = 64
# The CPU kernels LiteRT can run a bundle with: its XNNPACK delegate, or its builtin reference kernels.
KERNELS = ("default", "reference")


class Detector:
    """An int8 (or float) LiteRT autoencoder detector with the scikit-learn/PyOD shape.

    ``decision_function`` (alias ``score``) returns raw scores, higher = more
    anomalous; ``predict`` returns 1 (anomaly) where the score is above ``threshold_``.

    Inputs are what the bundle's input kind (``edge.inputs``) takes. Images are NHWC with
    the bundle's height, width and channels: float arrays with pixels in [0, 1], or uint8
    arrays in 0..255 (divided as in training). A single image is a batch of one; for one
    channel, (N, H, W) and (H, W) work too. Vector bundles take (N, features) or
    (features,) raw feature values; series bundles take raw windows (N, window, channels)
    or a whole recording through :meth:`score_recording`. The bundle's standardization
    is applied here, as in training.

    Attributes:
        threshold_: The calibrated threshold from the bundle.
        spec: The bundle's detector.json contents (as format version 2).
    """

    def __init__(self, model_content: bytes, spec: dict, *, num_threads: int = 1, kernels: str | None = None):
        """Build the interpreter for ``model_content`` described by ``spec`` (a detector.json dict).

        Args:
            model_content: The ``.tflite`` flatbuffer bytes.
            spec: The detector.json dictionary (see docs/BUNDLE.md).
            num_threads: LiteRT CPU threads, 1..64. Defaults to 1 (lowest batch-1 latency).
            kernels: "default" (LiteRT's XNNPACK delegate, what a Raspberry-Pi-class board runs) or "reference"
                (LiteRT's builtin kernels, the closest to TFLite Micro's); None: the bundle's ``model.kernels``.
        """
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        spec = _bundle.check_spec(spec, known_kinds=SCORE_KINDS)
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or not 1 <= num_threads <= MAX_THREADS:
            raise UserError(f"num_threads must be an integer in 1..{MAX_THREADS}. Received: num_threads={num_threads!r}")
        if kernels not in (None, *KERNELS):
            raise UserError(f"kernels must be one of {', '.join(KERNELS)} (or None: the bundle's). Received: {kernels!r}")
        # A microcontroller export was calibrated on LiteRT's builtin kernels, the closest to what TFLite
        # Micro runs; LiteRT's default XNNPACK delegate rounds int8 differently.
        self.kernels = kernels or spec["model"].get("kernels", "default")
        reference = self.kernels == "reference"
        resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if reference else OpResolverType.AUTO
        try:
            with native_stderr_silenced():  # LiteRT announces its XNNPACK delegate on stderr
                interp = Interpreter(model_content=bytes(model_content), num_threads=num_threads,
                                     experimental_op_resolver_type=resolver)
                interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise UserError(f"the model is not a valid TFLite flatbuffer (corrupted or truncated?): {exc}") from None
        self.spec = spec
        self._model = bytes(model_content)
        self.num_threads = num_threads
        self.threshold_ = float(spec["threshold"]["value"])
        self.score_kind = spec["score"]["kind"]
        self.score_params = spec["score"]["params"]
        self.input_shape = tuple(spec["input"]["shape"])
        self.input = _inputs.for_spec(spec)
        self._interp = interp
        self._bind_tensors(interp.get_input_details(), interp.get_output_details())
        self._needed = get_kind(self.score_kind).outputs
        self._reduce = get_kind(self.score_kind).reduce
        needed = set(self._needed) - set(self.output_names)
        if needed:
            raise UserError(f"score {self.score_kind!r} needs the outputs {sorted(needed)}, which the model lacks. "
                            f"Received outputs: {self.output_names}")

    def _bind_tensors(self, ins: list, outs: list) -> None:
        """Check the model's tensors against the spec; keep their indices and quantization."""
        spec = self.spec
        if len(ins) != 1 or len(outs) != len(spec["outputs"]):
            raise UserError(f"the model has {len(ins)} input(s) and {len(outs)} output(s); detector.json describes 1 and "
                            f"{len(spec['outputs'])}")
        for what, det, want in [("input", ins[0], spec["input"])] + [(o["name"], d, o) for d, o in zip(outs, spec["outputs"])]:
            got = (tuple(int(v) for v in det["shape"][1:]), np.dtype(det["dtype"]).name)
            if got != (tuple(want["shape"]), want["dtype"]):
                raise UserError(f"the model's {what} tensor does not match detector.json: expected {want['dtype']} "
                                f"{tuple(want['shape'])}, the model has {got[1]} {got[0]}")
            scale, zero = _quant_params(det)
            if (scale is None) != (want["scale"] is None) or scale is not None and (
                    abs(scale - want["scale"]) > 1e-6 * scale or zero != want["zero_point"]):
                raise UserError(f"the model's {what} tensor is quantized with scale {scale} and zero point {zero}; "
                                f"detector.json says {want['scale']} and {want['zero_point']}: the two do not belong "
                                "together. Re-export the bundle.")
        self.output_names = [o["name"] for o in spec["outputs"]]
        self._in = ins[0]
        self._in_dtype = np.dtype(ins[0]["dtype"])
        self._in_q = _quant_params(ins[0])
        if self._in_q[0] is not None:
            info = np.iinfo(self._in_dtype)
            self._in_range = (float(info.min), float(info.max))
            self._in_inv_scale = np.float32(1.0 / self._in_q[0])
            # Bounded inputs (image pixels) are checked to lie in [0, 1]; when that range quantizes inside the
            # integer range (the usual case: calibrated on [0, 1] images) clipping is a no-op and skipped.
            top = float(np.rint(np.float32(1.0) * self._in_inv_scale)) + self._in_q[1]
            self._in_clip = not (self.input.bounded and info.min <= self._in_q[1] and top <= info.max)
        self._outs = [(o["name"], d["index"], _quant_params(d)) for d, o in zip(outs, spec["outputs"])]
        self._sized = False
        dynamic = int(ins[0].get("shape_signature", ins[0]["shape"])[0]) == -1
        # A fixed-batch model (TFLite Micro exports use 1) runs in chunks of its batch; resizing
        # it would break shapes baked into Reshape/TransposeConv.
        self._chunk = MAX_BATCH if dynamic else int(ins[0]["shape"][0])
        self._batch = int(ins[0]["shape"][0])

    @classmethod
    def load(cls, bundle: str | os.PathLike, *, num_threads: int = 1, verify: bool = True,
             kernels: str | None = None, public_key: Any = None) -> "Detector":
        """Load a detector bundle directory written by ``aezoo export``.

        Args:
            bundle: The bundle directory (detector.json + model.tflite).
            num_threads: LiteRT CPU threads. Defaults to 1.
            verify: Check the sha256 of the model file and of detector.json's content. Defaults to True.
            kernels: "default" or "reference" (see ``__init__``); None: the bundle's.
            public_key: the PEM file of the public key the bundle must be signed with (``aezoo keygen``); None:
                ``$AEZOO_PUBLIC_KEY`` if set (a device that sets it loads only bundles signed with its key), else no
                signature check.

        Raises:
            UserError: for a missing or malformed detector.json, a missing model file,
                a sha256 mismatch or a model LiteRT cannot load.
        """
        data, spec = _bundle.read_bundle(bundle, verify=verify, known_kinds=SCORE_KINDS, public_key=public_key)
        return cls(data, spec, num_threads=num_threads, kernels=kernels)

    @classmethod
    def from_zoo(cls, model: str, dataset: str = "fashion_mnist", normal_class: int = 0, *,
                 num_threads: int = 1, root: str | os.PathLike | None = None) -> "Detector":
        """Load the device detector of a pretrained zoo entry (saved_models/, see ``zoo.catalog``).

        Reads manifest.json with ``json`` only and checks the bundle files' sha256
        against it, so this works without TensorFlow.

        Raises:
            UserError: unknown entry (listing the available ones), or a missing, truncated or altered file.
        """
        from zoo import catalog

        return cls.load(catalog.detector_dir(model, dataset, normal_class, root=root), num_threads=num_threads)

    def __repr__(self) -> str:
        return (f"Detector(model={self.spec['provenance'].get('model')!r}, quant={self.spec['model']['quant']!r}, "
                f"input={self.input_shape}, score={self.score_kind!r}, threshold_={self.threshold_:.6g})")

    # -- the hot path: preallocated buffers, the interpreter's tensors written and read in place ------------------

    def _resize(self, n: int) -> None:
        """Size the interpreter and the work buffers for batches of ``n``."""
        if n != int(self._interp.get_input_details()[0]["shape"][0]):
            self._interp.resize_tensor_input(self._in["index"], [n, *self.input_shape])
            self._interp.allocate_tensors()
        self._batch = n
        self._qbuf = np.empty((n, *self.input_shape), np.float32)
        # tensor() gives views of the interpreter's own buffers; they are re-taken after every allocation and never
        # held across invoke() (LiteRT refuses to run while one is alive).
        self._in_view = self._interp.tensor(self._in["index"])
        self._out_views = [(name, self._interp.tensor(index), scale, zero, np.empty((n, *o["shape"]), np.float64))
                           for (name, index, (scale, zero)), o in zip(self._outs, self.spec["outputs"])]
        self._sized = True

    def _run(self, x: np.ndarray, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Run one chunk of prepared float inputs; return the dequantized outputs ``names`` (default: all).

        The arrays returned are work buffers, reused by the next call: copy them to keep them.
        """
        if len(x) != self._batch or not self._sized:
            self._resize(len(x))
        self._to_input(x)
        self._interp.invoke()
        outputs = {}
        for name, view, scale, zero, buf in self._out_views:
            if names is None or name in names:
                if scale is None:
                    np.copyto(buf, view(), casting="unsafe")
                else:  # real = scale * (q - zero), in float64, two passes
                    np.multiply(np.subtract(view(), zero, out=buf, casting="unsafe"), scale, out=buf)
                outputs[name] = buf
        return outputs

    def _to_input(self, x: np.ndarray) -> None:
        """Write ``x`` into the input tensor as it holds it: clip(round(x / scale) + zero_point) for an int8 model."""
        if self._in_q[0] is None:
            np.copyto(self._in_view(), x, casting="unsafe")
            return
        q = self._qbuf
        np.multiply(x, self._in_inv_scale, out=q, casting="unsafe")
        np.rint(q, out=q)
        if self._in_clip:
            q += self._in_q[1]
            np.clip(q, *self._in_range, out=self._in_view(), casting="unsafe")
        else:  # the values are integers inside the tensor's range: the cast is exact
            np.add(q, self._in_q[1], out=self._in_view(), casting="unsafe")

    def _chunks(self, x: np.ndarray):
        for i in range(0, len(x), self._chunk):
            yield x[i : i + self._chunk]

    # -- public API --------------------------------------------------------------------------------------------

    def prepare(self, inputs) -> np.ndarray:
        """Return ``inputs`` as the float batch the model takes (validated, standardized where the kind says), or raise UserError."""
        return self.input.prepare(inputs)

    def outputs(self, inputs) -> dict[str, np.ndarray]:
        """Return the model's dequantized outputs by name (e.g. "reconstruction"), concatenated over chunks."""
        x = self.prepare(inputs)
        parts = [{k: v.copy() for k, v in self._run(c).items()} for c in self._chunks(x)] if len(x) else []
        return {name: np.concatenate([p[name] for p in parts]) if parts else np.empty((0, *o["shape"]))
                for name, o in zip(self.output_names, self.spec["outputs"])}

    def score(self, inputs) -> np.ndarray:
        """Return one anomaly score per input (float64, shape (N,)); higher = more anomalous."""
        return self.score_prepared(self.prepare(inputs))

    def score_prepared(self, x: np.ndarray) -> np.ndarray:
        """:meth:`score` of inputs that :meth:`prepare` returned (not validated or standardized again)."""
        if len(x) <= self._chunk:
            # The kind's own reduction, as edge.scoring.compute runs it; the outputs it reads were checked at load.
            return np.asarray(self._reduce(x, self._run(x, self._needed), self.score_params), np.float64) if len(x) \
                else np.empty(0)
        return np.concatenate([compute(self.score_kind, c, self._run(c, self._needed), self.score_params)
                               for c in self._chunks(x)])

    decision_function = score

    def predict(self, inputs) -> np.ndarray:
        """Return 1 (anomaly) where the score is above ``threshold_`` or not a number (never "normal" by accident),
        else 0; int64, shape (N,)."""
        return (~(self.score(inputs) <= self.threshold_)).astype(np.int64)

    def quantize(self, inputs) -> np.ndarray:
        """Return ``inputs`` as the model's input tensor would hold them (int8 for an int8 model)."""
        x = self.prepare(inputs)
        return np.concatenate([self._quantized(c) for c in self._chunks(x)]) if len(x) else \
            np.empty((0, *self.input_shape), self._in_dtype)

    def _quantized(self, x: np.ndarray) -> np.ndarray:
        if len(x) != self._batch or not self._sized:
            self._resize(len(x))
        self._to_input(x)
        return self._in_view().copy()

    def score_recording(self, recording) -> tuple[np.ndarray, np.ndarray]:
        """(window start indices, window scores) of a raw recording [T, channels] (series bundles only).

        The windows are cut every ``hop`` samples as in training; a sample's score is the
        largest score of the windows that cover it (``edge.inputs.point_scores``).
        """
        if not isinstance(self.input, _inputs.SeriesInput):
            raise UserError(f"score_recording needs a series bundle. Received: a {self.input.name} bundle")
        windows, starts = self.input.windows(recording)
        return starts, self.score(windows)

    def calibrate(self, inputs, *, method: str | None = None, percentile: float | None = None, k: float | None = None,
                  prepared: bool = False, source: str = "normal inputs given to Detector.calibrate"):
        """Set a new threshold from inputs known to be normal (collected on the device); return the ``Calibration``.

        The threshold is set as in training (``method`` "percentile" or "mean_std"; None takes the bundle's method,
        percentile and k) on this detector's own scores, and the scores are compared with the calibration data the
        bundle records (``Calibration.warning`` says when they look shifted, with the figures). Only this object
        changes: :meth:`save` writes the new bundle; the one it was loaded from is never touched.

        Args:
            inputs: normal inputs, as :meth:`score` takes them (or as :meth:`prepare` returned them, with ``prepared``).

        Raises:
            UserError: too few inputs for the method (the count is named), inputs of the wrong shape.
        """
        from edge.calibrate import provenance, recalibrate

        scores = self.score_prepared(inputs) if prepared else self.score(inputs)
        result = recalibrate(scores, self.spec["threshold"], method=method, percentile=percentile, k=k, source=source)
        self.spec = {**self.spec, "threshold": result.threshold, "provenance": provenance(self.spec, result)}
        self.threshold_ = float(result.threshold["value"])
        return result

    def save(self, out: str | os.PathLike, *, overwrite: bool = False, sign_key: Any = None) -> Path:
        """Write this detector (its model unchanged, its current threshold) as a new bundle directory ``out``.

        A microcontroller bundle (batch 1) gets its C files again, their threshold macro the current one; its TFLite
        Micro check (micro.json) is not re-run here. ``out`` must be new, an empty folder, or (with ``overwrite``) a
        bundle; anything else is refused, never deleted. ``sign_key`` (a private key file, ``aezoo keygen``) signs it.
        """
        from edge.c_array import c_sources

        extra = None
        if self.spec["model"].get("batch") == 1:
            extra = c_sources(self._model, _bundle.finish_spec(self.spec, self._model))
        from edge.signing import load_private_key

        key = load_private_key(sign_key) if sign_key is not None else None
        return _bundle.write_bundle(out, self._model, self.spec, extra, overwrite=overwrite, private_key=key)

    def reconstruct(self, inputs) -> np.ndarray:
        """Return the model's reconstructions (float32; standardized units for vectors)."""
        if "reconstruction" not in self.output_names:
            raise UserError(f"this bundle's model outputs {self.output_names}, no reconstruction. "
                            "Export it with a reconstruction score to get one.")
        return self.outputs(inputs)["reconstruction"].astype(np.float32)

    def anomaly_map(self, inputs, *, sigma: float | None = None) -> np.ndarray:
        """Return where each image is anomalous: its per-pixel squared reconstruction error, float32 (N, H, W).

        In the model's input resolution (the bundle's height and width; a file is resized to them as in
        training), averaged over the colour channels and smoothed with a Gaussian of ``sigma`` pixels
        (default :data:`edge.anomaly_map.DEFAULT_SIGMA`; 0: the raw error). Image bundles only.
        """
        from edge.anomaly_map import DEFAULT_SIGMA, pixel_error_map

        if not isinstance(self.input, _inputs.ImageInput):
            raise UserError(f"an anomaly map is per pixel: it needs an image bundle. Received: a {self.input.name} bundle")
        x = self.prepare(inputs)
        return pixel_error_map(x, self.reconstruct(x), DEFAULT_SIGMA if sigma is None else sigma)


def _quant_params(details: dict) -> tuple[float | None, float | None]:
    """(scale, zero_point) of a quantized tensor, or (None, None) for a float one."""
    if np.dtype(details["dtype"]).kind == "f":
        return None, None
    scale, zero = details["quantization"]
    if not scale:
        raise UserError(f"the model's tensor {details['name']!r} is {np.dtype(details['dtype']).name} without quantization parameters")
    return float(scale), float(zero)
