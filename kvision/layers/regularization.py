"""Stochastic depth and per-channel residual scaling."""

import keras
from keras import ops

from kvision import _checks
from kvision import ops as kv_ops


@keras.saving.register_keras_serializable(package="kvision")
class DropPath(keras.layers.Layer):
    """Stochastic depth: drops a residual branch for whole samples.

    Reference: Huang et al., *Deep Networks with Stochastic Depth* (2016),
    used by ViT for small datasets (arXiv:2112.13492), MLP-Mixer
    (arXiv:2105.01601) and ConvNeXt (arXiv:2201.03545).

    During training each sample's input is zeroed with probability ``rate``
    and the survivors are scaled by ``1 / (1 - rate)``, so the expected value
    is unchanged. At inference the layer is the identity. Randomness comes
    from a ``keras.random.SeedGenerator``, so the layer works under JAX
    tracing and a given ``seed`` reproduces the same masks.

    Args:
        rate: float in [0, 1), the probability of dropping a sample's branch.
        seed: optional int seed for the layer's ``SeedGenerator``.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``).

    Input shape: any tensor ``(B, ...)``.
    Output shape: the same as the input.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from kvision.layers import DropPath
    >>> layer = DropPath(0.5, seed=0)
    >>> x = np.ones((4, 3, 2), "float32")
    >>> tuple(layer(x, training=True).shape)
    (4, 3, 2)
    >>> y = keras.ops.convert_to_numpy(layer(x, training=False))
    >>> bool((y == x).all())
    True
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _checks.rate("rate", rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        # Nothing to build. Parents build their sublayers from shapes and
        # never call this one symbolically, so without this a model holding
        # it stays "unbuilt", and Keras' JAX predict_on_batch then runs one
        # eager forward pass (an XLA compile per operation) before its
        # compiled one.
        self.built = True

    def call(self, inputs, training=None):
        if not training:
            return inputs
        return kv_ops.drop_path(inputs, self.rate, self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="kvision")
class LayerScale(keras.layers.Layer):
    """Learnable per-channel scaling of a residual branch.

    Reference: Touvron et al., *Going deeper with Image Transformers* (CaiT,
    arXiv:2103.17239); ConvNeXt (arXiv:2201.03545) initialises it at 1e-6 so
    each block starts close to the identity.

    Args:
        init_value: float, the initial value of every channel's scale.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: ``(..., channels)``.
    Output shape: the same as the input.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from kvision.layers import LayerScale
    >>> layer = LayerScale(1e-6)
    >>> y = keras.ops.convert_to_numpy(layer(np.ones((2, 5, 8), "float32")))
    >>> y.shape, bool(np.allclose(y, 1e-6))
    ((2, 5, 8), True)
    """

    def __init__(self, init_value=1e-6, **kwargs):
        super().__init__(**kwargs)
        if isinstance(init_value, bool) or not isinstance(
            init_value, (int, float)
        ):
            raise ValueError(
                "`init_value` must be a number. "
                f"Received: init_value={init_value!r}"
            )
        self.init_value = float(init_value)

    def build(self, input_shape):
        _checks.static_dims(self, input_shape, [-1], "channel dimension")
        self.gamma = self.add_weight(
            name="gamma",
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.init_value),
        )

    def call(self, inputs):
        return inputs * ops.cast(self.gamma, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"init_value": self.init_value})
        return config
