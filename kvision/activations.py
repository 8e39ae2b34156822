"""Activations the papers use that Keras has no name for.

MLP-Mixer's official Flax code uses ``flax.linen.gelu``, the tanh
approximation of GELU; the official PyTorch code of SL-ViT, ConvMixer and
ConvNeXt uses the exact erf form (Keras' ``"gelu"``). kvision offers both by
name: ``"gelu"`` and ``"gelu_approximate"``.
"""

import keras


@keras.saving.register_keras_serializable(package="kvision")
def gelu_approximate(x):
    """GELU with the tanh approximation (``jax.nn.gelu``'s default)."""
    return keras.activations.gelu(x, approximate=True)


_BY_NAME = {"gelu_approximate": gelu_approximate}


def get(identifier):
    """Like ``keras.activations.get``, plus kvision's named activations."""
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]
    try:
        return keras.activations.get(identifier)
    except ValueError:
        raise ValueError(
            "`activation` must name a Keras activation, 'gelu_approximate' "
            f"or be a callable. Received: activation={identifier!r}"
        ) from None


def serialize(activation):
    """The config form of an activation resolved by :func:`get`."""
    for name, function in _BY_NAME.items():
        if activation is function:
            return name
    return keras.activations.serialize(activation)
