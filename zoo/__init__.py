"""Autoencoder zoo: Keras 2 functional-API autoencoders, a registry and pretrained entries.

Importing ``zoo`` does not import TensorFlow (so ``aezoo detect`` and ``edge`` run
without it); the public names load on first use.
"""
