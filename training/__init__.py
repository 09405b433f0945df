"""Training and evaluation of zoo autoencoders on the one-class protocol (PROTOCOL.md).

Importing ``training`` imports neither TensorFlow nor any data: the public names
load on first use (PEP 562 ``__getattr__``)::

    import training
    result = training.train(model="conv_ae", normal_class=1, epochs=10, out="runs/trouser")
    result.model, result.history, result.metrics["model"]["auroc"]
    model, config, threshold = training.load_run("runs/trouser")
    training.evaluate_path("runs/trouser")      # a run folder, .keras file or .tflite bundle
    training.score(model, images, kind="mse")
"""

from __future__ import annotations

from zoo.lazy import lazy_exports

# public name -> module that defines it (imported on first access)
_LAZY = {
    "TrainConfig": "training.fit",
    "TrainResult": "training.fit",
    "train": "training.fit",
    "train_all": "training.fit",
    "load_run": "training.fit",
    "evaluate_path": "training.evaluate",
    "evaluate_detector": "training.evaluate",
    "score": "training.scoring",
    "reconstruct": "training.scoring",
    "detection_metrics": "training.metrics",
    "PCABaseline": "training.baselines",
    "load_split": "training.data",
    "class_names": "training.data",
    "make_pipeline": "training.data",
    "one_class_split": "training.data",
    "OneClassSplit": "training.data",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
