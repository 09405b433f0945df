"""``Detector``: a LiteRT anomaly detector loaded from a bundle (TensorFlow-free).

Imports only numpy and ai-edge-litert (Pillow only when decoding files), so it
runs on a device that has no TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edge import bundle as _bundle
from edge.scoring import score_reconstruction
from zoo.errors import UserError

# Batches larger than this are scored in chunks, so memory stays bounded.
MAX_BATCH = 1024


class Detector:
    """Reconstruction-error anomaly detector running a ``.tflite`` autoencoder.

    The scikit-learn/PyOD shape: ``decision_function`` (alias ``score``) returns raw
    scores, higher = more anomalous; ``predict`` returns 1 (anomaly) where the score
    is above ``threshold_``, else 0.

    Images are NHWC with the bundle's height, width and channels: float arrays with
    pixels in [0, 1], or uint8 arrays in 0..255 (divided by 255 as in training). A
    single image (H, W, C) is a batch of one; for one channel, (N, H, W) and (H, W)
    are accepted too.

    Attributes:
        threshold_: The calibrated threshold from the bundle.
        spec: The bundle's detector.json contents.
    """

    def __init__(self, model_content: bytes, spec: dict, *, num_threads: int = 1):
        """Build the interpreter for ``model_content`` described by ``spec`` (a detector.json dict).

        Args:
            model_content: The ``.tflite`` flatbuffer bytes.
            spec: The detector.json dictionary (see docs/BUNDLE.md).
            num_threads: LiteRT CPU threads. Defaults to 1 (lowest batch-1 latency).
        """
        from ai_edge_litert.interpreter import Interpreter

        spec = _bundle.check_spec(spec)
        if not isinstance(num_threads, int) or num_threads < 1:
            raise UserError(f"num_threads must be a positive integer. Received: num_threads={num_threads!r}")
        try:
            interp = Interpreter(model_content=bytes(model_content), num_threads=num_threads)
            interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise UserError(f"the model is not a valid TFLite flatbuffer (corrupted or truncated?): {exc}") from None
        ins, outs = interp.get_input_details(), interp.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise UserError(f"expected a model with one input and one output. Received: {len(ins)} inputs, {len(outs)} outputs")
        pre = spec["preprocessing"]
        self.spec = spec
        self.threshold_ = float(spec["threshold"]["value"])
        self.score_kind = spec["score"]["kind"]
        self.image_shape = (int(pre["height"]), int(pre["width"]), int(pre["channels"]))
        self.num_threads = num_threads
        for name, det, want in (("input", ins[0], spec["input"]), ("output", outs[0], spec["output"])):
            got_shape = tuple(int(d) for d in det["shape"][1:])
            if got_shape != self.image_shape or np.dtype(det["dtype"]).name != want["dtype"]:
                raise UserError(
                    f"the model's {name} tensor does not match detector.json: expected {want['dtype']} "
                    f"{self.image_shape}, the model has {np.dtype(det['dtype']).name} {got_shape}"
                )
        self._interp = interp
        self._in_index = ins[0]["index"]
        self._out_index = outs[0]["index"]
        self._in_dtype = np.dtype(ins[0]["dtype"])
        self._in_scale, self._in_zero = _quant_params(ins[0])
        self._out_scale, self._out_zero = _quant_params(outs[0])
        if self._in_scale is not None:
            self._in_inv_scale = 1.0 / self._in_scale
            info = np.iinfo(self._in_dtype)
            self._in_lo, self._in_hi = float(info.min), float(info.max)
            # Inputs are checked to lie in [0, 1]; when that range quantizes inside the integer
            # range (the usual case: calibrated on [0, 1] images) clipping is a no-op and skipped.
            top = float(np.rint(np.float32(1.0) * np.float32(self._in_inv_scale))) + self._in_zero
            self._in_clip = not (self._in_lo <= self._in_zero and top <= self._in_hi)
        self._batch = int(ins[0]["shape"][0])
        # A model exported with a fixed batch (TFLite Micro exports use 1) is run in chunks of
        # that size; resizing its input would break shapes baked into Reshape/TransposeConv.
        dynamic = int(ins[0].get("shape_signature", ins[0]["shape"])[0]) == -1
        self._chunk = MAX_BATCH if dynamic else self._batch
        self._fast_score = self.score_kind in ("mse", "mae")
        self._make_buffers(self._batch)

    @classmethod
    def load(cls, bundle: str | os.PathLike, *, num_threads: int = 1, verify: bool = True) -> "Detector":
        """Load a detector bundle directory written by ``aezoo export``.

        Args:
            bundle: The bundle directory (detector.json + model.tflite).
            num_threads: LiteRT CPU threads. Defaults to 1.
            verify: Check the model file's sha256 against detector.json. Defaults to True.

        Raises:
            UserError: for a missing or malformed detector.json, a missing model file,
                a sha256 mismatch or a model LiteRT cannot load.
        """
        data, spec = _bundle.read_bundle(bundle, verify=verify)
        return cls(data, spec, num_threads=num_threads)

    @classmethod
    def from_zoo(cls, model: str, dataset: str = "fashion_mnist", normal_class: int = 0, *,
                 num_threads: int = 1, root: str | os.PathLike | None = None) -> "Detector":
        """Load the int8 detector of a pretrained zoo entry (saved_models/, see ``zoo.pretrained``).

        Reads manifest.json with ``json`` only and checks the bundle files' sha256
        against it, so this works without TensorFlow.

        Args:
            model: the variant name, e.g. "conv_ae".
            dataset: the dataset it was trained on. Defaults to "fashion_mnist".
            normal_class: the class it treats as normal. Defaults to 0.
            num_threads: LiteRT CPU threads. Defaults to 1.
            root: the saved_models folder. Defaults to ``$AEZOO_SAVED_MODELS`` or the repository's saved_models/.

        Raises:
            UserError: unknown entry (listing the available ones), or a missing, truncated or altered file.
        """
        from zoo import pretrained

        return cls.load(pretrained.detector_dir(model, dataset, normal_class, root=root), num_threads=num_threads)

    def __repr__(self) -> str:
        return (f"Detector(model={self.spec['provenance'].get('model')!r}, quant={self.spec['model']['quant']!r}, "
                f"input={self.image_shape}, score={self.score_kind!r}, threshold_={self.threshold_:.6g})")

    # -- the hot path ------------------------------------------------------------------------------------------

    def _make_buffers(self, n: int) -> None:
        """Size the interpreter and the numpy work buffers for batches of ``n``."""
        if n != int(self._interp.get_input_details()[0]["shape"][0]):
            self._interp.resize_tensor_input(self._in_index, [n, *self.image_shape])
            self._interp.allocate_tensors()
        self._batch = n
        shape = (n, *self.image_shape)
        self._qbuf = np.empty(shape, np.float32) if self._in_scale is not None else None
        self._inbuf = np.empty(shape, self._in_dtype)
        self._xhat = np.empty(shape, np.float64)

    def _set_input(self, x: np.ndarray) -> None:
        if self._in_scale is None:
            np.copyto(self._inbuf, x, casting="unsafe")
        else:
            self._quantize_into(x, self._qbuf)
            np.copyto(self._inbuf, self._qbuf, casting="unsafe")
        self._interp.set_tensor(self._in_index, self._inbuf)

    def _quantize_into(self, x: np.ndarray, q: np.ndarray) -> None:
        """q = clip(round(x / scale) + zero_point) into the float32 buffer ``q`` (no allocation)."""
        np.multiply(x, self._in_inv_scale, out=q, casting="unsafe")
        np.rint(q, out=q)
        np.add(q, self._in_zero, out=q)
        if self._in_clip:
            np.clip(q, self._in_lo, self._in_hi, out=q)

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Reconstruct a validated float batch; return the float64 reconstruction buffer (reused)."""
        n = x.shape[0]
        if n != self._batch:
            self._make_buffers(n)
        self._set_input(x)
        self._interp.invoke()
        out = self._interp.get_tensor(self._out_index)
        xhat = self._xhat
        if self._out_scale is None:
            np.copyto(xhat, out)
        else:
            np.subtract(out, self._out_zero, out=xhat, dtype=np.float64)
            np.multiply(xhat, self._out_scale, out=xhat)
        return xhat

    def _score_batch(self, x: np.ndarray) -> np.ndarray:
        xhat = self._run(x)
        if not self._fast_score:
            return score_reconstruction(x, xhat, self.score_kind)
        # Same arithmetic as edge.scoring.score_reconstruction (float64), without its copies.
        n = x.shape[0]
        np.subtract(x, xhat, out=xhat, dtype=np.float64)
        flat = xhat.reshape(n, -1)
        if self.score_kind == "mse":
            sums = np.einsum("ij,ij->i", flat, flat)
        else:
            np.abs(flat, out=flat)
            sums = np.add.reduce(flat, axis=1)
        sums /= flat.shape[1]
        return sums

    # -- public API --------------------------------------------------------------------------------------------

    def prepare(self, images) -> np.ndarray:
        """Return ``images`` as a float NHWC batch in [0, 1] of the bundle's shape, or raise UserError."""
        x = images if isinstance(images, np.ndarray) else np.asarray(images)
        h, w, c = self.image_shape
        shape = x.shape
        if shape[-3:] == (h, w, c) and x.ndim in (3, 4):
            if x.ndim == 3:
                x = x[None]
        elif c == 1 and shape[-2:] == (h, w) and x.ndim in (2, 3):
            x = x.reshape(-1, h, w, 1)
        elif x.ndim in (3, 4) and shape[-3:-1] == (h, w):
            raise UserError(
                f"expected images with {c} channel(s) ({'grayscale' if c == 1 else 'RGB'}), "
                f"shaped (N, {h}, {w}, {c}). Received: shape={shape} ({shape[-1]} channels)"
            )
        else:
            raise UserError(f"expected images shaped (N, {h}, {w}, {c}) or ({h}, {w}, {c}). Received: shape={shape}")
        kind = x.dtype.kind
        if kind == "u" and x.dtype.itemsize == 1:
            return x.astype(np.float32) * np.float32(1.0 / float(self.spec["preprocessing"]["uint8_divisor"]))
        if kind != "f":
            raise UserError(f"expected float images in [0, 1] or uint8 images in 0..255. Received: dtype={x.dtype}")
        if x.size:
            lo, hi = x.min(), x.max()  # NaN propagates through min/max: one pass checks both
            if not (lo >= 0.0 and hi <= 1.0):
                if np.isnan(lo) or np.isnan(hi):
                    bad = np.flatnonzero(np.isnan(x.reshape(len(x), -1)).any(axis=1))
                    raise UserError(f"images contain NaN (image indices {bad[:10].tolist()}). Received: {len(x)} images")
                if not (np.isfinite(lo) and np.isfinite(hi)):
                    raise UserError(f"images contain infinite values. Received: min={lo}, max={hi}")
                raise UserError(
                    "expected float pixels in [0, 1] (the bundle's preprocessing: uint8 / 255); "
                    f"pass uint8 arrays or divide by 255. Received: min={float(lo):g}, max={float(hi):g}"
                )
        return x

    def score(self, images) -> np.ndarray:
        """Return one anomaly score per image (float64, shape (N,)); higher = more anomalous."""
        x = self.prepare(images)
        n, chunk = len(x), self._chunk
        if n <= chunk:
            return self._score_batch(x) if n else np.empty(0, np.float64)
        return np.concatenate([self._score_batch(x[i : i + chunk]) for i in range(0, n, chunk)])

    decision_function = score

    def predict(self, images) -> np.ndarray:
        """Return 1 (anomaly) where the score is above ``threshold_``, else 0; int64, shape (N,)."""
        return (self.score(images) > self.threshold_).astype(np.int64)

    def quantize(self, images) -> np.ndarray:
        """Return ``images`` as the model's input tensor would hold them (int8 for an int8 model), (N, H, W, C)."""
        x = self.prepare(images)
        if self._in_scale is None:
            return x.astype(self._in_dtype)
        q = np.empty(x.shape, np.float32)
        self._quantize_into(x, q)
        return q.astype(self._in_dtype)

    def reconstruct(self, images) -> np.ndarray:
        """Return the model's reconstructions as float32 in [0, 1], shape (N, H, W, C)."""
        x = self.prepare(images)
        if not len(x):
            return np.empty((0, *self.image_shape), np.float32)
        return np.concatenate([self._run(x[i : i + self._chunk]).astype(np.float32) for i in range(0, len(x), self._chunk)])


def _quant_params(details: dict) -> tuple[float | None, float | None]:
    """(scale, zero_point) of a quantized tensor, or (None, None) for a float one."""
    if np.dtype(details["dtype"]).kind == "f":
        return None, None
    scale, zero = details["quantization"]
    if not scale:
        raise UserError(f"the model's tensor {details['name']!r} is {np.dtype(details['dtype']).name} without quantization parameters")
    return float(scale), float(zero)


def load_image_file(path: str | os.PathLike, spec: dict) -> np.ndarray:
    """Decode a PNG/JPEG (or any Pillow image) or a .npy file into the bundle's input layout.

    Image files are converted to the bundle's color mode ('L' = Pillow's ITU-R 601-2 luma,
    'RGB') and returned as uint8 (1, H, W, C); they must already be H x W (no resizing:
    the runtime never guesses a crop or scale). .npy files are returned as stored (a
    single image or a batch), loaded without pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"input file not found: {str(path)!r}")
    if path.suffix.lower() == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise UserError(f"{str(path)!r} is not a readable .npy array: {exc}") from None
    from PIL import Image, UnidentifiedImageError

    pre = spec["preprocessing"]
    try:
        with Image.open(path) as img:
            img = img.convert(pre["color_mode"])
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"{str(path)!r} is not a readable image (PNG/JPEG) or .npy file: {exc}") from None
    if arr.shape[:2] != (pre["height"], pre["width"]):
        raise UserError(
            f"{str(path)!r}: expected a {pre['width']}x{pre['height']} image (width x height). "
            f"Received: {arr.shape[1]}x{arr.shape[0]}"
        )
    return arr.reshape(1, pre["height"], pre["width"], pre["channels"])
