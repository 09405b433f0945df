"""The input kinds on the training side: one unit per kind (image, vector, series), registered by name.

``training.data`` is the one door in (``load_split``, ``one_class_split``, ...); it asks
:func:`unit_for` which unit reads a source and never branches on the kind itself. A
new kind is one module here with ``@register_input`` and one device unit in
``edge.inputs``, plus its import line below.
"""

from training.inputs.base import (AllClassesSplit, InputUnit, OneClassSplit, Source, Units, holdout_indices, input_kinds,
                                  register_input, unit_for, unit_named)
# Registration order is the order of claims: a TimeEval .csv is a series before it is a file of vectors.
from training.inputs import image, series, vector  # noqa: F401,E402  (registers the units)

__all__ = ["AllClassesSplit", "InputUnit", "OneClassSplit", "Source", "Units", "holdout_indices", "input_kinds",
           "register_input", "unit_for", "unit_named"]
