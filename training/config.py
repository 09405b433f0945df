"""The configs of a detector and of a training run: plain dataclasses that round-trip to JSON."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import zoo
from training.inputs.base import DEFAULT_LABEL_COLUMN
from training.scores import make_score, score_kinds
from edge.threshold import THRESHOLD_METHODS
from zoo.config import Config, check_choice, check_int, check_number
from zoo.errors import UserError


@dataclasses.dataclass
class DetectorConfig(Config):
    """What defines an autoencoder detector: the network, how it is fitted, its score and threshold.

    Args:
        model: a zoo model name (``zoo.list_models()``).
        params: keyword arguments for ``zoo.build`` (e.g. ``{"latent_dim": 16}``).
        seed: seeds Python, numpy and TensorFlow, and the shuffling.
        epochs: maximum number of epochs (early stopping may end sooner).
        min_steps: the least number of optimizer steps a fit may take: small datasets get
            more epochs so that they train at all (``training.fit.budget``).
        batch_size: training batch size (never more than the training images).
        lr: Adam learning rate.
        patience: epochs without normal-validation improvement before stopping.
        score: a score kind (``training.scores.score_kinds()``: "mse", "mae", "ssim", "elbo", "nap"), or
            "auto" for the variant's own default (``zoo.model_info(model).score``; see :meth:`resolved`).
        score_options: the kind's options (e.g. ``{"pool": "gap"}`` for "nap").
        threshold_method: "percentile", "mean_std" or "best_f1" (``edge.threshold``).
        percentile: percentile for "percentile".
        k: number of standard deviations for "mean_std".
        deterministic: enable TensorFlow op determinism (same seed, same result).
    """

    model: str = "conv_ae"
    params: dict = dataclasses.field(default_factory=dict)
    seed: int = 0
    epochs: int = 30
    min_steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    patience: int = 5
    score: str = "auto"
    score_options: dict = dataclasses.field(default_factory=dict)
    threshold_method: str = "percentile"
    percentile: float = 99.0
    k: float = 3.0
    deterministic: bool = True

    def resolved(self) -> "DetectorConfig":
        """A copy whose ``score`` "auto" is replaced by the variant's own default score."""
        return self.replace(score=zoo.model_info(self.model).score) if self.score == "auto" else self

    def validate(self) -> "DetectorConfig":
        """Check every field (model name, numbers, score, threshold); raise UserError quoting the bad value."""
        if not isinstance(self.model, str):
            raise UserError(f"model must be a zoo model name. Received: model={self.model!r}")
        zoo.model_info(self.model)  # unknown names suggest close ones
        for name in ("params", "score_options"):
            if not isinstance(getattr(self, name), dict):
                raise UserError(f"{name} must be a dict. Received: {name}={getattr(self, name)!r}")
        for name, low in (("epochs", 1), ("batch_size", 1), ("patience", 1), ("seed", 0), ("min_steps", 0)):
            check_int(self, name, low)
        check_number(self, "lr", 0.0, 10.0)
        check_choice(self, "score", ("auto", *score_kinds()))
        if self.score != "auto":
            make_score(self.score, self.score_options)  # options checked now, not after training
        check_choice(self, "threshold_method", THRESHOLD_METHODS)
        check_number(self, "percentile", 0.0, 100.0)
        check_number(self, "k", 0.0)
        if not isinstance(self.deterministic, bool):
            raise UserError(f"deterministic must be true or false. Received: deterministic={self.deterministic!r}")
        return self

    @classmethod
    def from_run_config(cls, data: dict) -> "DetectorConfig":
        """The detector's fields of a run's config.json (data fields and sections of other stages are left out)."""
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict):
            raise UserError(f"a run's config.json must be a JSON object. Received: {type(data).__name__}")
        return cls.from_dict({k: v for k, v in data.items() if k in names})



@dataclasses.dataclass
class TrainConfig(DetectorConfig):
    """A :class:`DetectorConfig` plus the data it is trained on: everything a run needs; round-trips to JSON.

    Args:
        dataset: "fashion_mnist", "mnist", "cifar10", an ImageFolder directory, or a
            CSV/.npy/.npz file of feature vectors (``training.data``).
        normal_class: the class id treated as normal.
        data_dir: data directory passed to the loader (None: its default).
        all_classes: train one model on every class of the train split instead
            (embeddings, generation, compression). Validation is a fixed 10% of each
            class; ``normal_class`` is unused and metrics.json reports reconstruction
            quality beside PCA instead of anomaly metrics. Defaults to False.
        image_size: resize images to (height, width) when loading (None: keep their size).
        color_mode: "grayscale" or "rgb" to convert images (None: as stored).
        test_data: for files (vectors, series), the labelled test data (None: no test split).
        label_column: the CSV column holding class labels. Defaults to "label".
        input_kind: "image", "vector" or "series" (None: inferred from ``dataset``; a ``.npy``
            recording needs "series").
        window, hop: series window length and hop (None: chosen from the normal training data).
        aggregate: how a series' window scores become its score, "mean" or "max" (None: "mean"
            for series sets; recordings always take the largest covering window's score).
    """

    dataset: str = "fashion_mnist"
    normal_class: int = 0
    data_dir: str | None = None
    all_classes: bool = False
    image_size: tuple | None = None
    color_mode: str | None = None
    test_data: str | None = None
    label_column: str = DEFAULT_LABEL_COLUMN
    input_kind: str | None = None
    window: int | None = None
    hop: int | None = None
    aggregate: str | None = None

    def validate(self) -> "TrainConfig":
        """The detector's checks, then the data's (known dataset, class in range)."""
        from training import data

        super().validate()
        data.check_source(self.data_source(), None if self.all_classes else self.normal_class)
        return self

    def resolved(self) -> "TrainConfig":
        """The detector's resolution (score "auto"), and the user's data paths made absolute: a run trained on
        ``--dataset data/pump.csv`` can be evaluated and exported from any working directory."""
        from training.inputs.named import DATASETS

        config = super().resolved()
        paths = {name: os.path.abspath(os.path.expanduser(value)) for name in ("dataset", "test_data", "data_dir")
                 if isinstance(value := getattr(config, name), str) and value not in DATASETS
                 and os.path.exists(os.path.expanduser(value))}
        return config.replace(**paths) if paths else config

    def data_source(self) -> Any:
        """The ``training.data.Source`` these fields describe."""
        from training import data

        return data.Source(self.dataset, data_dir=self.data_dir, image_size=self.image_size, color_mode=self.color_mode,
                           test_data=self.test_data, label_column=self.label_column, input_kind=self.input_kind,
                           window=self.window, hop=self.hop, aggregate=self.aggregate)
