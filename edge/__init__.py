"""Edge runtime: int8 LiteRT anomaly detectors exported from the zoo.

``edge.Detector`` and ``edge.StreamDetector`` need only numpy and ai-edge-litert (no
TensorFlow); the TF-based converter lives in ``training.convert``.
"""

from edge.detector import Detector
from edge.stream import StreamDetector

__all__ = ["Detector", "StreamDetector"]
