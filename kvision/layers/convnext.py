"""ConvNeXt block, patchify stem and between-stage downsampling."""

import keras

from kvision import _checks
from kvision import activations
from kvision import ops as kv_ops
from kvision.layers.convolution import DepthwiseConv2D
from kvision.layers.mlp import MLP
from kvision.layers.regularization import DropPath
from kvision.layers.regularization import LayerScale


def _layer_norm(layer, name):
    return keras.layers.LayerNormalization(
        epsilon=layer.norm_epsilon, dtype=layer.dtype_policy, name=name
    )


class _ImageLayer(keras.layers.Layer):
    """Shared plumbing of the ConvNeXt pieces: layout and norm epsilon.

    Each piece works in NHWC inside ``call`` (transposing a channels-first
    input), so its inner convolutions are built with
    ``data_format="channels_last"``: Keras' global image data format never
    reaches them.
    """

    def __init__(self, norm_epsilon=1e-6, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.norm_epsilon = _checks.non_negative_float(
            "norm_epsilon", norm_epsilon
        )
        self.data_format = _checks.data_format(data_format)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"norm_epsilon": self.norm_epsilon, "data_format": self.data_format}
        )
        return config


@keras.saving.register_keras_serializable(package="kvision")
class ConvNeXtBlock(_ImageLayer):
    """ConvNeXt block: depthwise 7×7, LayerNorm, inverted-bottleneck MLP.

    Reference: Liu et al., *A ConvNet for the 2020s* (arXiv:2201.03545),
    Figure 4 and the official code::

        y = DepthwiseConv(k×k, same)(x) -> LN -> Dense(4C) -> GELU -> Dense(C)
        out = x + DropPath(LayerScale(y))

    The 1×1 convolutions are dense layers on the channel axis (the official
    code does the same, in channels-last). LayerScale starts at 1e-6.

    Close to the MetaFormer skeleton (arXiv:2111.11418) with a depthwise
    token mixer (``MetaFormerBlock(token_mixer="depthwise_conv")``), but
    with a single residual around mixer and MLP and the norm between them
    instead of a pre-norm on each branch, so it stays its own layer.

    Args:
        kernel_size: int, the depthwise kernel side (default 7).
        mlp_ratio: int, expansion of the MLP's hidden layer (default 4).
        layer_scale_init_value: float, initial LayerScale; ``None`` or 0
            disables LayerScale (as the official code does for <= 0).
        drop_path_rate: float in [0, 1), stochastic depth rate.
        activation: MLP activation (default ``"gelu"``).
        norm_epsilon: float, LayerNorm epsilon (default 1e-6).
        seed: optional int seed for stochastic depth.
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None``.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: ``(B, H, W, C)`` (or channels first).
    Output shape: the same as the input.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import ConvNeXtBlock
    >>> block = ConvNeXtBlock(drop_path_rate=0.1)
    >>> tuple(block(np.zeros((2, 8, 8, 96), "float32")).shape)
    (2, 8, 8, 96)
    """

    def __init__(
        self,
        kernel_size=7,
        mlp_ratio=4,
        layer_scale_init_value=1e-6,
        drop_path_rate=0.0,
        activation="gelu",
        norm_epsilon=1e-6,
        seed=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(norm_epsilon, data_format, **kwargs)
        self.kernel_size = _checks.positive_int("kernel_size", kernel_size)
        self.mlp_ratio = _checks.positive_int("mlp_ratio", mlp_ratio)
        if layer_scale_init_value is not None:
            layer_scale_init_value = _checks.non_negative_float(
                "layer_scale_init_value", layer_scale_init_value
            )
        self.layer_scale_init_value = layer_scale_init_value
        self.drop_path_rate = _checks.rate("drop_path_rate", drop_path_rate)
        self.activation = activations.get(activation)
        self.seed = seed

    def build(self, input_shape):
        shape = _checks.nhwc_shape(self, input_shape)
        policy = self.dtype_policy
        self.depthwise = DepthwiseConv2D(
            self.kernel_size,
            padding="same",
            data_format="channels_last",
            dtype=policy,
            name="depthwise",
        )
        self.norm = _layer_norm(self, "norm")
        self.mlp = MLP(
            self.mlp_ratio * shape[-1],
            activation=self.activation,
            dtype=policy,
            name="mlp",
        )
        self.layer_scale = None
        if self.layer_scale_init_value:
            self.layer_scale = LayerScale(
                self.layer_scale_init_value, dtype=policy, name="layer_scale"
            )
            self.layer_scale.build(shape)
        self.drop_path = DropPath(
            self.drop_path_rate, seed=self.seed, dtype=policy, name="drop_path"
        )
        for layer in (self.depthwise, self.norm, self.mlp):
            layer.build(shape)

    def call(self, inputs, training=None):
        x = kv_ops.to_channels_last(inputs, self.data_format)
        y = self.mlp(self.norm(self.depthwise(x)), training=training)
        if self.layer_scale is not None:
            y = self.layer_scale(y)
        x = x + self.drop_path(y, training=training)
        return kv_ops.from_channels_last(x, self.data_format)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "mlp_ratio": self.mlp_ratio,
                "layer_scale_init_value": self.layer_scale_init_value,
                "drop_path_rate": self.drop_path_rate,
                "activation": activations.serialize(self.activation),
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kvision")
class ConvNeXtStem(_ImageLayer):
    """ConvNeXt "patchify" stem: ``LN(Conv(kernel=stride=patch_size))``.

    Reference: Liu et al., *A ConvNet for the 2020s* (arXiv:2201.03545),
    Section 2.2: a 4×4, stride-4 convolution followed by LayerNorm.

    Args:
        filters: int, width of the first stage.
        patch_size: int (default 4); height and width must be divisible by it.
        norm_epsilon: float, LayerNorm epsilon (default 1e-6).
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None``.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: ``(B, H, W, C)`` (or channels first).
    Output shape: ``(B, H // p, W // p, filters)`` (or channels first).

    Example:

    >>> import numpy as np
    >>> from kvision.layers import ConvNeXtStem
    >>> stem = ConvNeXtStem(filters=96)
    >>> tuple(stem(np.zeros((2, 224, 224, 3), "float32")).shape)
    (2, 56, 56, 96)
    """

    def __init__(
        self,
        filters,
        patch_size=4,
        norm_epsilon=1e-6,
        data_format=None,
        **kwargs,
    ):
        super().__init__(norm_epsilon, data_format, **kwargs)
        self.filters = _checks.positive_int("filters", filters)
        self.patch_size = _checks.positive_int("patch_size", patch_size)

    def build(self, input_shape):
        shape = _checks.nhwc_shape(self, input_shape)
        _checks.divisible_image(self, shape, self.patch_size)
        self.conv = keras.layers.Conv2D(
            self.filters,
            self.patch_size,
            strides=self.patch_size,
            data_format="channels_last",
            dtype=self.dtype_policy,
            name="conv",
        )
        self.conv.build(shape)
        self.norm = _layer_norm(self, "norm")
        self.norm.build(self.conv.compute_output_shape(shape))

    def call(self, inputs):
        x = kv_ops.to_channels_last(inputs, self.data_format)
        x = self.norm(self.conv(x))
        return kv_ops.from_channels_last(x, self.data_format)

    def compute_output_shape(self, input_shape):
        shape = _checks.nhwc_shape(self, input_shape)
        p = self.patch_size
        out = (shape[0], shape[1] // p, shape[2] // p, self.filters)
        return _checks.nhwc_to_data_format(self, out)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "patch_size": self.patch_size})
        return config


@keras.saving.register_keras_serializable(package="kvision")
class ConvNeXtDownsampling(_ImageLayer):
    """ConvNeXt downsampling between stages: ``Conv2x2/s2(LN(x))``.

    Reference: Liu et al., *A ConvNet for the 2020s* (arXiv:2201.03545),
    Section 2.6 ("separate downsampling layers"). Like the official code, an
    odd height or width is floored by the stride-2 convolution.

    Args:
        filters: int, width of the next stage.
        norm_epsilon: float, LayerNorm epsilon (default 1e-6).
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None``.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: ``(B, H, W, C)`` (or channels first), ``H, W >= 2``.
    Output shape: ``(B, H // 2, W // 2, filters)`` (or channels first).

    Example:

    >>> import numpy as np
    >>> from kvision.layers import ConvNeXtDownsampling
    >>> down = ConvNeXtDownsampling(filters=192)
    >>> tuple(down(np.zeros((2, 56, 56, 96), "float32")).shape)
    (2, 28, 28, 192)
    """

    def __init__(self, filters, norm_epsilon=1e-6, data_format=None, **kwargs):
        super().__init__(norm_epsilon, data_format, **kwargs)
        self.filters = _checks.positive_int("filters", filters)

    def build(self, input_shape):
        shape = _checks.nhwc_shape(self, input_shape)
        for axis in (1, 2):
            if shape[axis] is not None and shape[axis] < 2:
                raise ValueError(
                    "ConvNeXtDownsampling needs height and width >= 2. "
                    f"Received: input_shape={tuple(input_shape)}"
                )
        self.norm = _layer_norm(self, "norm")
        self.norm.build(shape)
        self.conv = keras.layers.Conv2D(
            self.filters,
            2,
            strides=2,
            data_format="channels_last",
            dtype=self.dtype_policy,
            name="conv",
        )
        self.conv.build(shape)

    def call(self, inputs):
        x = kv_ops.to_channels_last(inputs, self.data_format)
        x = self.conv(self.norm(x))
        return kv_ops.from_channels_last(x, self.data_format)

    def compute_output_shape(self, input_shape):
        shape = _checks.nhwc_shape(self, input_shape)
        height, width = (None if s is None else s // 2 for s in shape[1:3])
        out = (shape[0], height, width, self.filters)
        return _checks.nhwc_to_data_format(self, out)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters})
        return config
