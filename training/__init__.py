"""Training and evaluation of zoo autoencoders on the one-class protocol (docs/PROTOCOL.md).

Importing ``training`` imports neither TensorFlow nor any data: the public names
load on first use (PEP 562 ``__getattr__``)::

    import training
    result = training.train(model="conv_ae", normal_class=1, score="nap", out="runs/trouser")
    result.detector.decision_function(images), result.metrics["model"]["auroc"]
    detector, config = training.load_run("runs/trouser")
    training.evaluate_path("runs/trouser")      # a run folder, .keras file or detector bundle
    training.AutoencoderDetector(model="dense_ae").fit(x_train, x_val)
    det = training.AutoencoderDetector(network=my_fitted_keras_model).calibrate(x_train, x_val)   # tf_keras or Keras 3
    training.export_detector(det, "bundle/", x_train, x_val)  # the device bundle (edge.Detector.load("bundle/"))
    training.export_run("runs/trouser", "trouser-detector/")   # what `aezoo export` does
"""

from __future__ import annotations

from zoo.lazy import lazy_exports

# public name -> module that defines it (imported on first access)
_LAZY = {
    "TrainConfig": "training.config",
    "DetectorConfig": "training.config",
    "AutoencoderDetector": "training.detector",
    "TrainResult": "training.trainer",
    "train": "training.trainer",
    "train_all": "training.trainer",
    "load_run": "training.detector",
    "export_detector": "training.convert",
    "export_run": "training.convert",
    "Run": "training.runs",
    "evaluate_path": "training.evaluate",
    "evaluate_split": "training.evaluate",
    "detection_metrics": "training.metrics",
    "PCABaseline": "training.baselines",
    "KNNBaseline": "training.baselines",
    "load_split": "training.data",
    "class_names": "training.data",
    "one_class_split": "training.data",
    "all_classes_split": "training.data",
    "OneClassSplit": "training.data",
    "Source": "training.data",
    "score_kinds": "training.scores",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
