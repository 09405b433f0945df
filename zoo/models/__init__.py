"""The model families; importing this package registers every variant."""

from zoo.models import conv, dense, denoising, sparse, vae  # noqa: F401
