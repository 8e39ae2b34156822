"""MLP-Mixer and ConvMixer blocks, and the ConvMixer patch stem."""

import keras
from keras import ops

from kvision import _checks
from kvision import _seeds
from kvision import activations
from kvision import ops as kv_ops
from kvision.layers.convolution import DepthwiseConv2D
from kvision.layers.mlp import MLP
from kvision.layers.regularization import DropPath


def _batch_norm(layer, momentum, epsilon, name):
    return keras.layers.BatchNormalization(
        momentum=momentum, epsilon=epsilon, dtype=layer.dtype_policy, name=name
    )


@keras.saving.register_keras_serializable(package="kvision")
class MixerBlock(keras.layers.Layer):
    """MLP-Mixer block: token mixing across patches, then channel mixing.

    Reference: Tolstikhin et al., *MLP-Mixer: An all-MLP Architecture for
    Vision* (arXiv:2105.01601), Eq. 1. Each half is pre-norm with its own
    LayerNorm and its own residual::

        U = X + DropPath(MLP_tokens(LN(X)^T)^T)
        Y = U + DropPath(MLP_channels(LN(U)))

    This is the MetaFormer skeleton (arXiv:2111.11418) on token sequences,
    with a token MLP as mixer: ``MetaFormerBlock(token_mixer="spatial_mlp")``
    runs the same token MLP on feature maps, with GroupNorm and LayerScale.

    Args:
        tokens_mlp_dim: int, hidden width of the token-mixing MLP (``D_S``).
        channels_mlp_dim: int, hidden width of the channel-mixing MLP
            (``D_C``).
        activation: MLP activation (default ``"gelu_approximate"``, the
            tanh GELU of the official Flax code; ``"gelu"`` is the exact
            form, as in timm's port).
        dropout: float in [0, 1), dropout inside both MLPs.
        drop_path_rate: float in [0, 1), stochastic depth rate.
        norm_epsilon: float, LayerNorm epsilon (default 1e-6, as in the
            official Flax code).
        seed: optional int seed for dropout and stochastic depth.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: ``(B, N, C)`` with static ``N`` and ``C``.
    Output shape: ``(B, N, C)``.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import MixerBlock
    >>> block = MixerBlock(tokens_mlp_dim=256, channels_mlp_dim=2048)
    >>> tuple(block(np.zeros((2, 196, 512), "float32")).shape)
    (2, 196, 512)
    """

    def __init__(
        self,
        tokens_mlp_dim,
        channels_mlp_dim,
        activation="gelu_approximate",
        dropout=0.0,
        drop_path_rate=0.0,
        norm_epsilon=1e-6,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.tokens_mlp_dim = _checks.positive_int(
            "tokens_mlp_dim", tokens_mlp_dim
        )
        self.channels_mlp_dim = _checks.positive_int(
            "channels_mlp_dim", channels_mlp_dim
        )
        self.activation = activations.get(activation)
        self.dropout = _checks.rate("dropout", dropout)
        self.drop_path_rate = _checks.rate("drop_path_rate", drop_path_rate)
        self.norm_epsilon = _checks.non_negative_float(
            "norm_epsilon", norm_epsilon
        )
        self.seed = seed

    def build(self, input_shape):
        _checks.input_rank(self, input_shape, (3,), "(batch, tokens, channels)")
        _checks.static_dims(self, input_shape, [1, 2], "token count and width")
        _, tokens, channels = input_shape
        policy = self.dtype_policy

        def mlp(hidden, name):
            return MLP(
                hidden,
                activation=self.activation,
                dropout=self.dropout,
                seed=_seeds.child_seed(self.seed, name),
                dtype=policy,
                name=name,
            )

        def norm(name):
            return keras.layers.LayerNormalization(
                epsilon=self.norm_epsilon, dtype=policy, name=name
            )

        self.token_norm = norm("token_norm")
        self.token_mlp = mlp(self.tokens_mlp_dim, "token_mixing")
        self.channel_norm = norm("channel_norm")
        self.channel_mlp = mlp(self.channels_mlp_dim, "channel_mixing")
        self.drop_path = DropPath(
            self.drop_path_rate,
            seed=_seeds.child_seed(self.seed, "drop_path"),
            dtype=policy,
            name="drop_path",
        )
        self.token_norm.build(input_shape)
        self.token_mlp.build((None, channels, tokens))
        self.channel_norm.build(input_shape)
        self.channel_mlp.build(input_shape)

    def call(self, inputs, training=None):
        y = ops.transpose(self.token_norm(inputs), (0, 2, 1))
        y = ops.transpose(self.token_mlp(y, training=training), (0, 2, 1))
        x = inputs + self.drop_path(y, training=training)
        y = self.channel_mlp(self.channel_norm(x), training=training)
        return x + self.drop_path(y, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tokens_mlp_dim": self.tokens_mlp_dim,
                "channels_mlp_dim": self.channels_mlp_dim,
                "activation": activations.serialize(self.activation),
                "dropout": self.dropout,
                "drop_path_rate": self.drop_path_rate,
                "norm_epsilon": self.norm_epsilon,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kvision")
class ConvMixerStem(keras.layers.Layer):
    """ConvMixer patch embedding: ``BN(act(Conv(kernel=stride=patch_size)))``.

    Reference: Trockman and Kolter, *Patches Are All You Need?*
    (arXiv:2201.09792), Eq. 1. BatchNorm follows the official PyTorch code:
    PyTorch's momentum 0.1 is Keras' ``momentum=0.9``, epsilon 1e-5 (with
    Keras' default 0.99 the moving statistics lag far behind on short
    small-data runs and test accuracy collapses).

    Args:
        filters: int, the model width ``h``.
        patch_size: int, patch side ``p``; height and width must be divisible
            by it.
        activation: activation after the convolution (default ``"gelu"``).
        bn_momentum: float, BatchNorm moving-average momentum (Keras sense).
        bn_epsilon: float, BatchNorm epsilon.
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None``.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: ``(B, H, W, C)`` (or channels first).
    Output shape: ``(B, H // p, W // p, filters)`` (or channels first).

    Example:

    >>> import numpy as np
    >>> from kvision.layers import ConvMixerStem
    >>> stem = ConvMixerStem(filters=256, patch_size=2)
    >>> tuple(stem(np.zeros((2, 32, 32, 3), "float32")).shape)
    (2, 16, 16, 256)
    """

    def __init__(
        self,
        filters,
        patch_size,
        activation="gelu",
        bn_momentum=0.9,
        bn_epsilon=1e-5,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = _checks.positive_int("filters", filters)
        self.patch_size = _checks.positive_int("patch_size", patch_size)
        self.activation = activations.get(activation)
        self.bn_momentum = _checks.rate("bn_momentum", bn_momentum)
        self.bn_epsilon = _checks.non_negative_float("bn_epsilon", bn_epsilon)
        self.data_format = _checks.data_format(data_format)

    def build(self, input_shape):
        shape = _checks.nhwc_shape(self, input_shape)
        _checks.divisible_image(self, shape, self.patch_size)
        self.conv = keras.layers.Conv2D(
            self.filters,
            self.patch_size,
            strides=self.patch_size,
            # Fed NHWC by `call`: never Keras' global data format.
            data_format="channels_last",
            dtype=self.dtype_policy,
            name="conv",
        )
        self.conv.build(shape)
        self.norm = _batch_norm(self, self.bn_momentum, self.bn_epsilon, "bn")
        self.norm.build(self.conv.compute_output_shape(shape))

    def call(self, inputs, training=None):
        x = kv_ops.to_channels_last(inputs, self.data_format)
        x = self.norm(self.activation(self.conv(x)), training=training)
        return kv_ops.from_channels_last(x, self.data_format)

    def compute_output_shape(self, input_shape):
        shape = _checks.nhwc_shape(self, input_shape)
        p = self.patch_size
        out = (shape[0], shape[1] // p, shape[2] // p, self.filters)
        return _checks.nhwc_to_data_format(self, out)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "patch_size": self.patch_size,
                "activation": activations.serialize(self.activation),
                "bn_momentum": self.bn_momentum,
                "bn_epsilon": self.bn_epsilon,
                "data_format": self.data_format,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kvision")
class ConvMixerBlock(keras.layers.Layer):
    """ConvMixer block: depthwise spatial mixing, then pointwise mixing.

    Reference: Trockman and Kolter, *Patches Are All You Need?*
    (arXiv:2201.09792), Eq. 2-3::

        z' = BN(act(DepthwiseConv(z))) + z
        z  = BN(act(PointwiseConv(z')))

    The depthwise convolution uses ``"same"`` padding; the pointwise 1×1
    convolution is a dense layer on the channel axis (the same arithmetic).
    BatchNorm defaults follow the official PyTorch code (see
    :class:`ConvMixerStem`).

    Args:
        kernel_size: int, side of the depthwise kernel.
        activation: activation (default ``"gelu"``; ``"relu"`` in
            ConvMixer-768/32).
        bn_momentum: float, BatchNorm moving-average momentum (Keras sense).
        bn_epsilon: float, BatchNorm epsilon.
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None``.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: ``(B, H, W, C)`` (or channels first).
    Output shape: the same as the input.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import ConvMixerBlock
    >>> block = ConvMixerBlock(kernel_size=5)
    >>> tuple(block(np.zeros((2, 16, 16, 256), "float32")).shape)
    (2, 16, 16, 256)
    """

    def __init__(
        self,
        kernel_size,
        activation="gelu",
        bn_momentum=0.9,
        bn_epsilon=1e-5,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernel_size = _checks.positive_int("kernel_size", kernel_size)
        self.activation = activations.get(activation)
        self.bn_momentum = _checks.rate("bn_momentum", bn_momentum)
        self.bn_epsilon = _checks.non_negative_float("bn_epsilon", bn_epsilon)
        self.data_format = _checks.data_format(data_format)

    def build(self, input_shape):
        shape = _checks.nhwc_shape(self, input_shape)
        policy = self.dtype_policy
        self.depthwise = DepthwiseConv2D(
            self.kernel_size,
            padding="same",
            # Fed NHWC by `call`: never Keras' global data format.
            data_format="channels_last",
            dtype=policy,
            name="depthwise",
        )
        self.pointwise = keras.layers.Dense(
            shape[-1], dtype=policy, name="pointwise"
        )
        self.depthwise_norm = _batch_norm(
            self, self.bn_momentum, self.bn_epsilon, "depthwise_bn"
        )
        self.pointwise_norm = _batch_norm(
            self, self.bn_momentum, self.bn_epsilon, "pointwise_bn"
        )
        for layer in (
            self.depthwise,
            self.pointwise,
            self.depthwise_norm,
            self.pointwise_norm,
        ):
            layer.build(shape)

    def call(self, inputs, training=None):
        x = kv_ops.to_channels_last(inputs, self.data_format)
        y = self.depthwise_norm(
            self.activation(self.depthwise(x)), training=training
        )
        x = x + y
        x = self.pointwise_norm(
            self.activation(self.pointwise(x)), training=training
        )
        return kv_ops.from_channels_last(x, self.data_format)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "activation": activations.serialize(self.activation),
                "bn_momentum": self.bn_momentum,
                "bn_epsilon": self.bn_epsilon,
                "data_format": self.data_format,
            }
        )
        return config
