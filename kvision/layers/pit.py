"""PiT's pooling between stages of a token transformer."""

import keras
from keras import ops

from kvision import _checks
from kvision.layers.convolution import DepthwiseConv2D


@keras.saving.register_keras_serializable(package="kvision")
class PiTPooling(keras.layers.Layer):
    """Pooling-based Vision Transformer (PiT) pooling on tokens.

    Reference: Heo et al., *Rethinking Spatial Dimensions of Vision
    Transformers* (arXiv:2103.16302), Section 3.2 and the official code's
    ``conv_head_pooling``. The visual tokens are put back on their grid and
    go through a depthwise convolution with kernel ``stride + 1``, explicit
    zero padding ``stride // 2`` and stride ``stride`` whose channel
    multiplier widens them (``C -> C * depth_multiplier``); the class
    token(s) go through a dense layer to the same width. With stride 2 a
    grid of side ``s`` becomes ``(s - 1) // 2 + 1`` (27 -> 14 -> 7 for PiT
    at 224 pixels).

    Output channel ``c * depth_multiplier + m`` comes from input channel
    ``c`` (Keras' depthwise layout), the order of PyTorch's grouped
    convolution with ``groups=C``.

    With ``pointwise=True`` a 1x1 convolution (a dense layer on the
    channels) follows the depthwise one: the pooling of the PiT baseline in
    the official code of *Vision Transformer for Small-Size Datasets*
    (arXiv:2112.13492), which that paper's PiT parameter counts include.

    Args:
        depth_multiplier: int, the width multiplier (PiT: 2).
        stride: int, the pooling stride (PiT: 2, i.e. a 3x3 kernel and
            one pixel of padding).
        pointwise: bool, add the 1x1 convolution after the depthwise one.
        num_class_tokens: int >= 0, how many leading tokens are class (or
            distillation) tokens, projected by the dense layer.
        token_grid: ``(rows, columns)`` of the visual tokens, or ``None``
            to infer a square grid.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: tokens ``(B, T + rows * columns, C)``, ``T`` class tokens
        first.
    Output shape: ``(B, T + rows' * columns', C * depth_multiplier)`` with
        ``rows' = (rows + 2 * (stride // 2) - stride - 1) // stride + 1``,
        i.e. ``(rows - 1) // 2 + 1`` for stride 2 (the same for columns).

    Example:

    >>> import numpy as np
    >>> from kvision.layers import PiTPooling
    >>> pool = PiTPooling()
    >>> tuple(pool(np.zeros((2, 1 + 27 * 27, 64), "float32")).shape)
    (2, 197, 128)
    """

    def __init__(
        self,
        depth_multiplier=2,
        stride=2,
        pointwise=False,
        num_class_tokens=1,
        token_grid=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.depth_multiplier = _checks.positive_int(
            "depth_multiplier", depth_multiplier
        )
        self.stride = _checks.positive_int("stride", stride)
        self.pointwise = bool(pointwise)
        if (
            isinstance(num_class_tokens, bool)
            or not isinstance(num_class_tokens, int)
            or num_class_tokens < 0
        ):
            raise ValueError(
                "`num_class_tokens` must be a non-negative integer. "
                f"Received: num_class_tokens={num_class_tokens!r}"
            )
        self.num_class_tokens = num_class_tokens
        self.token_grid = _checks.token_grid_argument(token_grid)

    def _grid(self, input_shape):
        grid = _checks.token_grid(
            self, input_shape, self.num_class_tokens, self.token_grid
        )
        if min(self._pooled(n) for n in grid) < 1:
            raise ValueError(
                f"PiTPooling: a {grid[0]}x{grid[1]} token grid is smaller "
                f"than the pooling kernel. Received: stride={self.stride}"
            )
        return grid

    def build(self, input_shape):
        self._grid_hw = self._grid(input_shape)
        channels = input_shape[-1]
        width = channels * self.depth_multiplier
        policy = self.dtype_policy
        self.depthwise = DepthwiseConv2D(
            self.stride + 1,
            strides=self.stride,
            padding="valid",
            depth_multiplier=self.depth_multiplier,
            data_format="channels_last",
            dtype=policy,
            name="depthwise",
        )
        pad = 2 * (self.stride // 2)
        self.depthwise.build(
            (None, self._grid_hw[0] + pad, self._grid_hw[1] + pad, channels)
        )
        if self.pointwise:
            self.pointwise_projection = keras.layers.Dense(
                width, dtype=policy, name="pointwise"
            )
            self.pointwise_projection.build((None, None, None, width))
        if self.num_class_tokens:
            self.class_projection = keras.layers.Dense(
                width, dtype=policy, name="class_projection"
            )
            self.class_projection.build((None, None, channels))

    def _pooled(self, size):
        """Output side of the padded, strided convolution."""
        s = self.stride
        return (size + 2 * (s // 2) - (s + 1)) // s + 1

    def call(self, inputs):
        t = self.num_class_tokens
        rows, cols = self._grid_hw
        x = ops.reshape(inputs[:, t:], (-1, rows, cols, inputs.shape[-1]))
        pad = self.stride // 2
        x = ops.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        x = self.depthwise(x)
        if self.pointwise:
            x = self.pointwise_projection(x)
        pooled_rows, pooled_cols = (self._pooled(n) for n in self._grid_hw)
        x = ops.reshape(x, (-1, pooled_rows * pooled_cols, x.shape[-1]))
        if t:
            x = ops.concatenate([self.class_projection(inputs[:, :t]), x], 1)
        return x

    def compute_output_shape(self, input_shape):
        rows, cols = self._grid(input_shape)
        tokens = self.num_class_tokens + self._pooled(rows) * self._pooled(cols)
        return (input_shape[0], tokens, input_shape[-1] * self.depth_multiplier)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "depth_multiplier": self.depth_multiplier,
                "stride": self.stride,
                "pointwise": self.pointwise,
                "num_class_tokens": self.num_class_tokens,
                "token_grid": self.token_grid,
            }
        )
        return config
