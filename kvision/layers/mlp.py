"""The one feed-forward block (ViT, MLP-Mixer and ConvNeXt all use it)."""

import keras

from kvision import _checks
from kvision import activations


@keras.saving.register_keras_serializable(package="kvision")
class MLP(keras.layers.Layer):
    """Two dense layers with a non-linearity: ``fc2(drop(act(fc1(x))))``.

    The transformer feed-forward of ViT (Dosovitskiy et al., 2020) and of the
    small-dataset ViT (arXiv:2112.13492), the token- and channel-mixing MLPs
    of MLP-Mixer (arXiv:2105.01601), and the inverted bottleneck of ConvNeXt
    (arXiv:2201.03545), whose 1×1 convolutions are dense layers on the
    channel axis. It acts on the last axis, so any leading shape works.

    Args:
        hidden_dim: int, width of the hidden layer.
        output_dim: int or ``None`` (default) to keep the input width.
        activation: activation of the hidden layer, a name or a callable
            (default ``"gelu"``, exact erf form as in PyTorch's ``nn.GELU``).
        dropout: float in [0, 1), dropout after the activation and after the
            output layer (as in the official ViT code).
        use_bias: bool, whether the dense layers use biases.
        seed: optional int seed for the dropout layers.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: ``(..., channels)``.
    Output shape: ``(..., output_dim or channels)``.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import MLP
    >>> mlp = MLP(hidden_dim=384)
    >>> tuple(mlp(np.zeros((2, 65, 192), "float32")).shape)
    (2, 65, 192)
    """

    def __init__(
        self,
        hidden_dim,
        output_dim=None,
        activation="gelu",
        dropout=0.0,
        use_bias=True,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = _checks.positive_int("hidden_dim", hidden_dim)
        self.output_dim = _checks.optional_positive_int(
            "output_dim", output_dim
        )
        self.activation = activations.get(activation)
        self.dropout = _checks.rate("dropout", dropout)
        self.use_bias = bool(use_bias)
        self.seed = seed

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(
                "MLP expects inputs of rank >= 2 (batch, ..., channels). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        _checks.static_dims(self, input_shape, [-1], "channel dimension")
        output_dim = self.output_dim or input_shape[-1]
        policy = self.dtype_policy
        self.fc1 = keras.layers.Dense(
            self.hidden_dim, use_bias=self.use_bias, dtype=policy, name="fc1"
        )
        self.fc2 = keras.layers.Dense(
            output_dim, use_bias=self.use_bias, dtype=policy, name="fc2"
        )
        self.drop = keras.layers.Dropout(
            self.dropout, seed=self.seed, dtype=policy, name="dropout"
        )
        self.fc1.build(input_shape)
        self.fc2.build(tuple(input_shape[:-1]) + (self.hidden_dim,))

    def call(self, inputs, training=None):
        x = self.activation(self.fc1(inputs))
        x = self.drop(x, training=training)
        x = self.fc2(x)
        return self.drop(x, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.output_dim or input_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "output_dim": self.output_dim,
                "activation": activations.serialize(self.activation),
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "seed": self.seed,
            }
        )
        return config
