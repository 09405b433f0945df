"""Edge runtime: int8 LiteRT anomaly detectors exported from the zoo.

``edge.Detector`` needs only numpy and ai-edge-litert (no TensorFlow); the TF-based
converter lives in ``edge.convert`` and is imported only when exporting.
"""

from edge.detector import Detector

__all__ = ["Detector"]
