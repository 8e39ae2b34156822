"""The Swin Transformer block and its patch merging."""

import keras
from keras import ops

from kvision import _checks
from kvision import _seeds
from kvision import activations
from kvision.layers.attention import attend
from kvision.layers.residual import build_residual_parts
from kvision.layers.windows import WindowAttention
from kvision.layers.windows import check_window_arguments
from kvision.layers.windows import window_attention_spec


@keras.saving.register_keras_serializable(package="kvision")
class PatchMerging(keras.layers.Layer):
    """Swin's patch merging: 2x2 neighbours concatenated, normed, projected.

    Reference: Liu et al., *Swin Transformer* (arXiv:2103.14030), Section
    3.1. Each 2x2 neighbourhood becomes one token of width ``4C`` (layer
    normalised) and a bias-free dense layer maps it to ``2C``, halving the
    resolution and doubling the width between stages. The four neighbours
    are concatenated in the official code's order: top-left, **bottom-left,
    top-right**, bottom-right (``x[0::2, 0::2]``, ``x[1::2, 0::2]``,
    ``x[0::2, 1::2]``, ``x[1::2, 1::2]``), which is not the row-major order
    of a space-to-depth; it matters only for porting weights.

    Args:
        norm_epsilon: float, epsilon of the layer normalisation (default
            1e-5, PyTorch's ``nn.LayerNorm`` as in the official code).
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: channels-last maps ``(B, H, W, C)``, ``H`` and ``W`` even.
    Output shape: ``(B, H // 2, W // 2, 2 * C)``.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import PatchMerging
    >>> tuple(PatchMerging()(np.zeros((2, 8, 8, 96), "float32")).shape)
    (2, 4, 4, 192)
    """

    def __init__(self, norm_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.norm_epsilon = _checks.non_negative_float(
            "norm_epsilon", norm_epsilon
        )

    def _check(self, input_shape):
        _checks.input_rank(
            self, input_shape, (4,), "(batch, height, width, channels)"
        )
        _checks.static_dims(self, input_shape, [1, 2, 3], "map size")
        if input_shape[1] % 2 or input_shape[2] % 2:
            raise ValueError(
                "PatchMerging merges 2x2 neighbourhoods, so the map height "
                "and width must be even. Received: input_shape="
                f"{tuple(input_shape)}"
            )

    def build(self, input_shape):
        self._check(input_shape)
        channels = input_shape[-1]
        policy = self.dtype_policy
        self.norm = keras.layers.LayerNormalization(
            epsilon=self.norm_epsilon, dtype=policy, name="norm"
        )
        self.norm.build((None, None, None, 4 * channels))
        self.reduction = keras.layers.Dense(
            2 * channels, use_bias=False, dtype=policy, name="reduction"
        )
        self.reduction.build((None, None, None, 4 * channels))

    def call(self, inputs):
        x = ops.concatenate(
            [
                inputs[:, 0::2, 0::2],
                inputs[:, 1::2, 0::2],
                inputs[:, 0::2, 1::2],
                inputs[:, 1::2, 1::2],
            ],
            axis=-1,
        )
        return self.reduction(self.norm(x))

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        batch, height, width, channels = input_shape
        return (batch, height // 2, width // 2, 2 * channels)

    def get_config(self):
        config = super().get_config()
        config.update({"norm_epsilon": self.norm_epsilon})
        return config


@keras.saving.register_keras_serializable(package="kvision")
class SwinBlock(keras.layers.Layer):
    """Swin Transformer block: pre-norm (shifted) window attention and MLP.

    Reference: Liu et al., *Swin Transformer* (arXiv:2103.14030), Eq. 3;
    with ``attention="lsa"`` the block of SL-Swin (Lee, Lee and Song,
    arXiv:2112.13492). On channels-last maps:

    ``x = x + DropPath(WindowAttention(LN(x)))``, then
    ``x = x + DropPath(MLP(LN(x)))``.

    Swin alternates blocks with ``shift_size=0`` and
    ``shift_size=window_size // 2``; :class:`kvision.models.SwinTransformer`
    also shrinks the window to the map (and drops the shift) when the map
    is no larger than the window.

    Args:
        num_heads: int, number of attention heads.
        window_size: int, side of the attention windows; divides the map.
        shift_size: int in ``[0, window_size)``, the cyclic window shift.
        mlp_ratio: float, MLP hidden width as a multiple of the channels
            (default 4; the small-data SL-Swin uses 2).
        attention: ``"mhsa"`` or ``"lsa"`` (see :class:`WindowAttention`).
        head_dim: int or ``None`` for ``channels // num_heads``.
        qkv_bias: bool, bias on the query/key/value projection.
        relative_position_bias: bool, Swin's learned relative position bias.
        dropout: float in [0, 1), dropout in the MLP and after the attention
            projection.
        attention_dropout: float in [0, 1), dropout on attention weights.
        drop_path_rate: float in [0, 1), stochastic depth rate.
        norm_epsilon: float, epsilon of both layer normalisations (default
            1e-5, PyTorch's default as in the official code).
        activation: the MLP's activation (default ``"gelu"``).
        seed: optional int seed for dropout and stochastic depth.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: maps ``(B, H, W, C)``.
        training: bool.
        return_attention_scores: bool; if True returns ``(outputs, scores)``
            with scores ``(B, num_windows, num_heads, w * w, w * w)`` laid
            out as :class:`WindowAttention` documents.

    Output shape: ``(B, H, W, C)``.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import SwinBlock
    >>> block = SwinBlock(num_heads=3, window_size=4, shift_size=2)
    >>> y, scores = block(
    ...     np.zeros((2, 8, 8, 96), "float32"), return_attention_scores=True
    ... )
    >>> tuple(y.shape), tuple(scores.shape)
    ((2, 8, 8, 96), (2, 4, 3, 16, 16))
    """

    def __init__(
        self,
        num_heads,
        window_size,
        shift_size=0,
        mlp_ratio=4.0,
        attention="mhsa",
        head_dim=None,
        qkv_bias=True,
        relative_position_bias=True,
        dropout=0.0,
        attention_dropout=0.0,
        drop_path_rate=0.0,
        norm_epsilon=1e-5,
        activation="gelu",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.window_size = _checks.positive_int("window_size", window_size)
        self.shift_size = shift_size
        if isinstance(mlp_ratio, bool) or not isinstance(
            mlp_ratio, (int, float)
        ):
            raise ValueError(
                f"`mlp_ratio` must be a number. Received: mlp_ratio="
                f"{mlp_ratio!r}"
            )
        if mlp_ratio <= 0:
            raise ValueError(
                f"`mlp_ratio` must be positive. Received: mlp_ratio="
                f"{mlp_ratio!r}"
            )
        self.mlp_ratio = float(mlp_ratio)
        self.attention = attention
        self.head_dim = _checks.optional_positive_int("head_dim", head_dim)
        self.qkv_bias = bool(qkv_bias)
        self.relative_position_bias = bool(relative_position_bias)
        self.dropout = _checks.rate("dropout", dropout)
        self.attention_dropout = _checks.rate(
            "attention_dropout", attention_dropout
        )
        self.drop_path_rate = _checks.rate("drop_path_rate", drop_path_rate)
        self.norm_epsilon = _checks.non_negative_float(
            "norm_epsilon", norm_epsilon
        )
        self.activation = activations.get(activation)
        self.seed = seed
        check_window_arguments(window_size, shift_size, attention)

    def build(self, input_shape):
        _checks.input_rank(
            self, input_shape, (4,), "(batch, height, width, channels)"
        )
        _checks.static_dims(self, input_shape, [3], "channel dimension")
        channels = input_shape[-1]
        policy = self.dtype_policy
        self.norm1 = keras.layers.LayerNormalization(
            epsilon=self.norm_epsilon, dtype=policy, name="norm1"
        )
        self.attn = WindowAttention(
            self.num_heads,
            self.window_size,
            shift_size=self.shift_size,
            head_dim=self.head_dim,
            qkv_bias=self.qkv_bias,
            relative_position_bias=self.relative_position_bias,
            attention=self.attention,
            attention_dropout=self.attention_dropout,
            dropout=self.dropout,
            seed=_seeds.child_seed(self.seed, "attention"),
            dtype=policy,
            name="attention",
        )
        self.norm2 = keras.layers.LayerNormalization(
            epsilon=self.norm_epsilon, dtype=policy, name="norm2"
        )
        build_residual_parts(self, int(channels * self.mlp_ratio), None)
        for layer in (self.norm1, self.attn, self.norm2, self.mlp):
            layer.build(input_shape)

    def call(self, inputs, training=None, return_attention_scores=False):
        y, scores = attend(
            self.attn, self.norm1(inputs), training, return_attention_scores
        )
        x = inputs + self.drop_path(y, training=training)
        y = self.mlp(self.norm2(x), training=training)
        x = x + self.drop_path(y, training=training)
        if return_attention_scores:
            return x, scores
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(
        self, inputs, training=None, return_attention_scores=False
    ):
        grid = (inputs.shape[1], inputs.shape[2])
        return window_attention_spec(
            self, inputs, grid, return_attention_scores
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "window_size": self.window_size,
                "shift_size": self.shift_size,
                "mlp_ratio": self.mlp_ratio,
                "attention": self.attention,
                "head_dim": self.head_dim,
                "qkv_bias": self.qkv_bias,
                "relative_position_bias": self.relative_position_bias,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "drop_path_rate": self.drop_path_rate,
                "norm_epsilon": self.norm_epsilon,
                "activation": activations.serialize(self.activation),
                "seed": self.seed,
            }
        )
        return config
