"""``AutoencoderDetector``: a zoo autoencoder as an anomaly detector with the scikit-learn/PyOD shape.

    det = AutoencoderDetector(model="conv_ae", score="nap").fit(x_train, x_val)
    det.decision_function(x_test)      # higher = more anomalous
    det.predict(x_test)                # 1 where the score is above det.threshold_
    det.save("runs/mine"); AutoencoderDetector.load("runs/mine")

``fit`` trains the network with Keras ``fit`` (early stopping on ``x_val``), fits the
score's parameters on ``x_train`` and calibrates ``threshold_`` on ``x_val``: normal
data only. ``calibrate`` does the last two for a network that is already trained (a
compressed one, say). The PCA and kNN baselines and ``edge.Detector`` answer the
same calls, so evaluation never asks which kind of detector it has.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import zoo
from edge.threshold import threshold_record
from training.config import DetectorConfig
from training.runs import CONFIG, MODEL, SCORE_STATE, THRESHOLD, Run, read_json
from training.scores import make_score
from zoo.errors import NotFittedError, UserError
from zoo.files import write_json


class AutoencoderDetector:
    """A zoo autoencoder with a score and a calibrated threshold: ``fit``, ``decision_function``, ``predict``.

    Args:
        config: the :class:`DetectorConfig` (defaults to ``DetectorConfig()``); keyword
            ``overrides`` replace its fields (``model`` names the zoo variant).
        network: an already trained Keras autoencoder to wrap (``calibrate`` then fits only
            the score and threshold; its name is the variant's when it is a zoo model).
            Defaults to None (``fit`` builds and trains one).

    Attributes (after ``fit``/``calibrate``):
        model_: the Keras autoencoder. score_: the fitted :class:`training.scores.Score`.
        threshold_: the threshold. threshold_record_: how it was calibrated.
        history_: the training history (``fit`` only).
    """

    def __init__(self, config: DetectorConfig | None = None, *, network: Any = None, **overrides: Any):
        if config is not None and not isinstance(config, DetectorConfig):
            raise UserError(f"config must be a DetectorConfig. Received: {type(config).__name__}")
        if network is not None and config is None and "model" not in overrides and network.name in zoo.list_models():
            overrides["model"] = network.name
        self.config = (config or DetectorConfig()).replace(**overrides).resolved()
        self.model_ = network
        self._graph = None

    def __repr__(self) -> str:
        fitted = f", threshold_={self.threshold_:.6g}" if hasattr(self, "threshold_") else ""
        return f"AutoencoderDetector(model={self.config.model!r}, score={self.config.score!r}{fitted})"

    # -- fitting -----------------------------------------------------------------------------------------------

    def fit(self, x_train: np.ndarray, x_val: np.ndarray, *, callbacks: Sequence[Any] = (), verbose: Any = 0,
            state_dir: str | os.PathLike | None = None, strategy: Any = None,
            backup_dir: str | os.PathLike | None = None) -> "AutoencoderDetector":
        """Train the network on normal ``x_train`` (early stopping on normal ``x_val``), then :meth:`calibrate`.

        ``state_dir`` keeps the best checkpoint and the early-stopping state there, so an
        interrupted fit resumes (``training.train`` passes the run folder); ``strategy`` (a
        ``tf.distribute`` strategy) and ``backup_dir`` are ``training.fit.fit_network``'s.
        """
        from training.fit import fit_network

        x_train, x_val = _images(x_train, "x_train"), _images(x_val, "x_val")
        self.model_, self.history_ = fit_network(self.config, x_train, x_val, model=self.model_, callbacks=callbacks,
                                                 verbose=verbose, state_dir=state_dir, strategy=strategy,
                                                 backup_dir=backup_dir)
        return self.calibrate(x_train, x_val)

    def calibrate(self, x_train: np.ndarray, x_val: np.ndarray) -> "AutoencoderDetector":
        """Fit the score's parameters on normal ``x_train`` and the threshold on normal ``x_val``."""
        if self.model_ is None:
            raise UserError("calibrate needs a trained network: call fit(x_train, x_val) or pass network=...")
        x_train, x_val = _images(x_train, "x_train"), _images(x_val, "x_val")
        self.score_ = make_score(self.config.score, self.config.score_options).fit(self.model_, x_train)
        self._graph = None
        return self.calibrate_threshold(x_val)

    def calibrate_threshold(self, x_val: np.ndarray, *, labels: np.ndarray | None = None) -> "AutoencoderDetector":
        """(Re)calibrate ``threshold_`` on ``x_val`` with the config's method (``labels`` only for "best_f1")."""
        c = self.config
        self.threshold_record_ = threshold_record(self.decision_function(x_val), method=c.threshold_method,
                                                  percentile=c.percentile, k=c.k, labels=labels)
        self.threshold_ = self.threshold_record_["value"]
        return self

    # -- the detector interface ----------------------------------------------------------------------------

    @property
    def score_kind(self) -> str:
        """The score's kind (``config.score``)."""
        return self.config.score

    def _check_fitted(self) -> None:
        if getattr(self, "score_", None) is None:
            raise NotFittedError("This AutoencoderDetector instance is not fitted yet. Call 'fit' (or 'calibrate' for a "
                            "trained network) with normal training and validation images before using it.")

    @property
    def graph_(self) -> Any:
        """The Keras graph whose outputs the score reduces (what the TFLite export converts)."""
        self._check_fitted()
        if self._graph is None:
            self._graph = self.score_.graph(self.model_)
        return self._graph

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """One anomaly score per image (float64); higher = more anomalous."""
        self._check_fitted()
        return self.score_.score(self.model_, _images(x, "x"), graph=self.graph_)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """1 (anomaly) where the score is above ``threshold_``, else 0."""
        return (self.decision_function(x) > self.threshold_).astype(np.int64)

    def reconstruct(self, x: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
        """The network's reconstructions of ``x`` (inference mode: no corruption, VAE mean path)."""
        if self.model_ is None:
            raise UserError("reconstruct needs a trained network: call fit first")
        x = _images(x, "x")
        return np.asarray(self.model_.predict(x, batch_size=batch_size, verbose=0)) if len(x) else np.empty_like(x)

    def encode(self, x: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
        """The codes of ``x`` (``zoo.encoder``: the code layer; VAE: z_mean)."""
        if self.model_ is None:
            raise UserError("encode needs a trained network: call fit first")
        return np.asarray(zoo.encoder(self.model_).predict(_images(x, "x"), batch_size=batch_size, verbose=0))

    def anomaly_map(self, x: np.ndarray, *, sigma: float | None = None) -> np.ndarray:
        """Per-pixel squared reconstruction error of images ``x`` (N, H, W), as ``edge.Detector.anomaly_map``
        computes it from the device model (one function, :func:`edge.anomaly_map.pixel_error_map`)."""
        from edge.anomaly_map import DEFAULT_SIGMA, pixel_error_map

        x = _images(x, "x")
        if x.ndim != 4:
            raise UserError(f"an anomaly map is per pixel: it needs images (N, H, W, C). Received: shape {x.shape}")
        return pixel_error_map(x, self.reconstruct(x), DEFAULT_SIGMA if sigma is None else sigma)

    # -- persistence -----------------------------------------------------------------------------------------

    def threshold_json(self) -> dict:
        """What threshold.json holds: the score (kind, options, parameters) and the threshold record."""
        self._check_fitted()
        return {"score": self.score_.to_dict(), **self.threshold_record_}

    def save(self, path: str | os.PathLike) -> Path:
        """Write model.keras, threshold.json and (for fitted score arrays) score.npz into the folder ``path``."""
        from zoo.files import atomic_path

        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with atomic_path(path / MODEL) as tmp:
            self.model_.save(str(tmp))
        self.score_.save_state(path / SCORE_STATE)
        write_json(path / THRESHOLD, self.threshold_json())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, config: DetectorConfig | None = None) -> "AutoencoderDetector":
        """Load what :meth:`save` wrote (``config`` defaults to the folder's config.json, else the defaults)."""
        path = Path(path)
        for name in (MODEL, THRESHOLD):
            if not (path / name).is_file():
                raise UserError(f"{path} is not a saved detector: {name} is missing")
        if config is None:
            config = DetectorConfig.from_run_config(read_json(path / CONFIG, "the run's config")) \
                if (path / CONFIG).is_file() else DetectorConfig()
        record = read_json(path / THRESHOLD, "the threshold record")
        network = zoo.load_model(path / MODEL)
        if network.name != config.model:  # a folder mixed by hand would export under the wrong name
            raise UserError(f"{path}: its config names the variant {config.model!r}, its {MODEL} holds "
                            f"{network.name!r}; the two do not belong together. Retrain, or restore the folder.")
        score = record.get("score", config.score)
        if not isinstance(score, dict):  # runs written before the score record had one shape: flat keys
            score = {"kind": score, "options": record.get("score_options", config.score_options)}
        # The threshold record keeps its own score_mean/score_std; only the score's record is not its.
        return cls.assemble(config, network, score["kind"], score.get("options"), path / SCORE_STATE,
                            {k: v for k, v in record.items() if k not in ("score", "score_options", "score_params")})

    @classmethod
    def assemble(cls, config: DetectorConfig, network: Any, score: str, score_options: dict | None,
                 score_state: str | os.PathLike, threshold_record: dict) -> "AutoencoderDetector":
        """A fitted detector from its saved parts: the network, the score (kind, options, fitted state file) and the
        threshold record (a run folder's, or a zoo entry's)."""
        det = cls(config, network=network)
        det.score_ = make_score(score, score_options)
        det.score_.load_state(Path(score_state))
        det.threshold_record_ = dict(threshold_record)
        det.threshold_ = float(threshold_record["value"])
        return det


def load_run(path: str | os.PathLike) -> tuple[AutoencoderDetector, Any]:
    """Load a finished (or at least complete) run folder: return (``AutoencoderDetector``, ``TrainConfig``)."""
    run = Run(path).require_finished()
    config = run.train_config()
    return AutoencoderDetector.load(run.path, config), config


def _images(x: Any, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2:
        raise UserError(f"{name} must be a batch shaped (N, ...). Received: shape={x.shape}")
    return x
