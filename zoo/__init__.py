"""Autoencoder zoo: Keras 2 functional-API autoencoders, a registry and pretrained entries.

Importing ``zoo`` does not import TensorFlow (so ``aezoo detect`` and ``edge`` run
without it); the public names load on first use (PEP 562 ``__getattr__``).

    import zoo
    zoo.list_models()                       # ['conv_ae', 'conv_vae', 'dense_ae', ...]
    model = zoo.build("conv_ae", latent_dim=16)         # tf_keras; keras_version=3 for a Keras 3 model
    zoo.encoder(model), zoo.decoder(model)  # input -> code, code -> reconstruction
    qat = zoo.qat_model(model)              # quantization-aware copy for TFMOT
"""

from __future__ import annotations

from zoo.lazy import lazy_exports

# public name -> module that defines it (imported on first access)
_LAZY = {
    "register_model": "zoo.registry",
    "list_models": "zoo.models",
    "model_info": "zoo.models",
    "build": "zoo.models",
    "config_for": "zoo.models",
    "load_model": "zoo.registry",
    "save_weights": "zoo.registry",
    "load_weights": "zoo.registry",
    "ModelConfig": "zoo.registry",
    "ModelInfo": "zoo.registry",
    "custom_objects": "zoo.layers",
    "quantize_scope": "zoo.layers",
    "qat_model": "zoo.layers",
    "encoder": "zoo.models.common",
    "decoder": "zoo.models.common",
    "is_variational": "zoo.models.common",
    "negative_elbo": "zoo.models.vae",
    "sample": "zoo.models.vae",
    "load": "zoo.pretrained",
    "list_pretrained": "zoo.catalog",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
