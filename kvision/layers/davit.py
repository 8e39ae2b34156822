"""DaViT's dual attention: channel group attention, the convolutional
position encoding, and the spatial and channel blocks built on them."""

import math

import keras
from keras import ops

from kvision import _checks
from kvision import _seeds
from kvision import activations
from kvision import ops as kv_ops
from kvision.layers.attention import attend
from kvision.layers.attention import build_attention_parts
from kvision.layers.convolution import DepthwiseConv2D
from kvision.layers.residual import build_residual_parts
from kvision.layers.windows import WindowAttention


def _map_shape(layer, input_shape):
    """Checks a channels-last map with static height, width and channels."""
    _checks.input_rank(
        layer, input_shape, (4,), "(batch, height, width, channels)"
    )
    _checks.static_dims(layer, input_shape, [1, 2, 3], "map size")
    return tuple(input_shape)


@keras.saving.register_keras_serializable(package="kvision")
class ChannelGroupAttention(keras.layers.Layer):
    """Channel group attention: channels attend to channels, image-wide.

    Reference: Ding et al., *DaViT: Dual Attention Vision Transformers*
    (arXiv:2204.03645), Section 3.2, in the form of the official code. The
    ``C`` channels are split into ``num_groups`` groups of ``Cg = C / G``;
    within a group, every channel is a "token" whose features are its
    values at all ``N`` spatial positions. With ``q, k, v`` of shape
    ``(N, Cg)`` per group (one fused projection, as in multi-head
    attention):

    ``A = softmax(kᵀ v · Cg**-0.5)`` (softmax over the last axis), a
    ``(Cg, Cg)`` matrix whose entries sum over all ``N`` positions;
    ``out = (A qᵀ)ᵀ``, i.e. ``out[n, i] = Σ_j A[i, j] q[n, j]``.

    The roles of ``q``, ``k`` and ``v`` are those of the official code (the
    paper writes the textbook ``softmax(qᵀk) vᵀ``); this order is kept so
    that weights port one to one. ``A`` is computed by
    :func:`kvision.ops.attention_probabilities` with ``kᵀ`` as the queries
    and ``vᵀ`` as the keys. Its size does not depend on ``N``: the cost is
    ``O(N · C²/G)``, linear in the number of tokens, and every output
    position sees a summary of the whole image.

    Args:
        num_groups: int, the number of channel groups (the official code's
            ``num_heads``); must divide the channel count.
        qkv_bias: bool, bias on the query/key/value projection (default
            True, what the released DaViT models use).
        attention_dropout: float in [0, 1), dropout on the channel
            attention weights (the official code has none).
        dropout: float in [0, 1), dropout after the output projection.
        seed: optional int seed for the dropout layers.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: tokens ``(B, N, C)`` or channels-last maps ``(B, H, W, C)``
            (all positions form one set of tokens); ``C`` static.
        training: bool, enables dropout.
        return_attention_scores: bool; if True the layer returns
            ``(outputs, scores)`` with ``scores`` of shape
            ``(B, num_groups, Cg, Cg)``: row ``i`` says how channel ``i``
            of a group gathers from the group's channels (before dropout).

    Output shape: the input's shape.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import ChannelGroupAttention
    >>> layer = ChannelGroupAttention(num_groups=3)
    >>> y, scores = layer(
    ...     np.zeros((2, 7, 7, 96), "float32"), return_attention_scores=True
    ... )
    >>> tuple(y.shape), tuple(scores.shape)
    ((2, 7, 7, 96), (2, 3, 32, 32))
    """

    def __init__(
        self,
        num_groups,
        qkv_bias=True,
        attention_dropout=0.0,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_groups = _checks.positive_int("num_groups", num_groups)
        self.qkv_bias = bool(qkv_bias)
        self.attention_dropout = _checks.rate(
            "attention_dropout", attention_dropout
        )
        self.dropout = _checks.rate("dropout", dropout)
        self.seed = seed

    def _group_size(self, input_shape):
        _checks.input_rank(
            self,
            input_shape,
            (3, 4),
            "(batch, tokens, channels) or (batch, height, width, channels)",
        )
        _checks.static_dims(self, input_shape, [-1], "channel dimension")
        channels = input_shape[-1]
        if channels % self.num_groups:
            raise ValueError(
                "The channel count must be divisible by `num_groups`. "
                f"Received: num_groups={self.num_groups} for "
                f"channels={channels}"
            )
        return channels // self.num_groups

    def build(self, input_shape):
        self._channels_per_group = self._group_size(input_shape)
        channels = input_shape[-1]
        build_attention_parts(self, channels, channels)

    def call(self, inputs, training=None, return_attention_scores=False):
        channels = inputs.shape[-1]
        groups, group_size = self.num_groups, self._channels_per_group
        # Maps and tokens alike: every position is one token.
        spatial = inputs.shape[1:-1]
        if None in spatial:
            lead = (ops.shape(inputs)[0], -1)
        else:
            lead = (-1, math.prod(spatial))
        tokens = ops.reshape(inputs, (*lead, channels))
        qkv = self.qkv(tokens)
        # (B, N, 3, G, Cg) -> (3, B, G, Cg, N): channels become the "tokens".
        qkv = ops.reshape(qkv, (*lead, 3, groups, group_size))
        qkv = ops.transpose(qkv, (2, 0, 3, 4, 1))
        query_t, key_t, value_t = qkv[0], qkv[1], qkv[2]
        scores = kv_ops.attention_probabilities(
            key_t, value_t, group_size**-0.5
        )
        weights = self.attention_drop(scores, training=training)
        # out[n, i] = sum_j A[i, j] q[n, j], per group.
        x = ops.einsum("bgij,bgjn->bngi", weights, query_t)
        x = ops.reshape(x, (*lead, channels))
        x = self.output_drop(self.projection(x), training=training)
        if None in spatial:
            x = ops.reshape(x, ops.shape(inputs))
        else:
            x = ops.reshape(x, (-1, *spatial, channels))
        if return_attention_scores:
            return x, scores
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(
        self, inputs, training=None, return_attention_scores=False
    ):
        outputs = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return outputs
        size = self._group_size(inputs.shape)
        scores = keras.KerasTensor(
            (inputs.shape[0], self.num_groups, size, size),
            dtype=self.compute_dtype,
        )
        return outputs, scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_groups": self.num_groups,
                "qkv_bias": self.qkv_bias,
                "attention_dropout": self.attention_dropout,
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kvision")
class ConvPositionEncoding(keras.layers.Layer):
    """Convolutional position encoding: ``x + DepthwiseConv(x)``.

    Reference: DaViT (arXiv:2204.03645), following the official code's
    ``ConvPosEnc`` (after CPVT, arXiv:2102.10882): a depthwise ``k×k``
    convolution with bias, stride 1 and "same" padding, added to its own
    input. The residual is part of the layer, so a DaViT block applies it
    as ``x = cpe(x)``. No normalisation or activation. Zero-padded borders
    let each position tell where it is, which replaces position embeddings.

    Args:
        kernel_size: odd int, the depthwise kernel side (default 3).
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: channels-last maps ``(B, H, W, C)`` with static ``C``.
    Output shape: the same as the input.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import ConvPositionEncoding
    >>> cpe = ConvPositionEncoding()
    >>> tuple(cpe(np.zeros((2, 7, 7, 96), "float32")).shape)
    (2, 7, 7, 96)
    """

    def __init__(self, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = _checks.positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(
                "`kernel_size` must be odd, so that 'same' padding is "
                f"symmetric. Received: kernel_size={kernel_size}"
            )

    def build(self, input_shape):
        _checks.input_rank(
            self, input_shape, (4,), "(batch, height, width, channels)"
        )
        _checks.static_dims(self, input_shape, [3], "channel dimension")
        self.depthwise = DepthwiseConv2D(
            self.kernel_size,
            padding="same",
            data_format="channels_last",
            dtype=self.dtype_policy,
            name="depthwise",
        )
        self.depthwise.build(input_shape)

    def call(self, inputs):
        return inputs + self.depthwise(inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"kernel_size": self.kernel_size})
        return config


class _DualAttentionBlock(keras.layers.Layer):
    """What DaViT's spatial and channel blocks share; they differ only in
    their attention (``_make_attention``)."""

    # The official blocks have no dropout in their MLP.
    dropout = 0.0

    def __init__(
        self,
        mlp_ratio=4.0,
        qkv_bias=True,
        drop_path_rate=0.0,
        norm_epsilon=1e-5,
        activation="gelu",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (
            isinstance(mlp_ratio, bool)
            or not isinstance(mlp_ratio, (int, float))
            or mlp_ratio <= 0
        ):
            raise ValueError(
                "`mlp_ratio` must be a positive number. "
                f"Received: mlp_ratio={mlp_ratio!r}"
            )
        self.mlp_ratio = mlp_ratio
        self.qkv_bias = bool(qkv_bias)
        self.drop_path_rate = _checks.rate("drop_path_rate", drop_path_rate)
        self.norm_epsilon = _checks.non_negative_float(
            "norm_epsilon", norm_epsilon
        )
        self.activation = activations.get(activation)
        self.seed = seed

    def _make_attention(self, channels):
        raise NotImplementedError

    def build(self, input_shape):
        shape = _map_shape(self, input_shape)
        channels = shape[-1]
        policy = self.dtype_policy
        self.cpe1, self.cpe2 = (
            ConvPositionEncoding(3, dtype=policy, name=name)
            for name in ("cpe1", "cpe2")
        )
        self.norm1, self.norm2 = (
            keras.layers.LayerNormalization(
                epsilon=self.norm_epsilon, dtype=policy, name=name
            )
            for name in ("norm1", "norm2")
        )
        self.attn = self._make_attention(channels)
        build_residual_parts(self, int(channels * self.mlp_ratio), None)
        for layer in (
            self.cpe1,
            self.cpe2,
            self.norm1,
            self.norm2,
            self.attn,
            self.mlp,
        ):
            layer.build(shape)

    def call(self, inputs, training=None, return_attention_scores=False):
        x = self.cpe1(inputs)
        y, scores = attend(
            self.attn, self.norm1(x), training, return_attention_scores
        )
        x = x + self.drop_path(y, training=training)
        x = self.cpe2(x)
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
        _map_shape(self, inputs.shape)
        outputs = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return outputs
        _, scores = self.attn.compute_output_spec(
            inputs, return_attention_scores=True
        )
        return outputs, scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "mlp_ratio": self.mlp_ratio,
                "qkv_bias": self.qkv_bias,
                "drop_path_rate": self.drop_path_rate,
                "norm_epsilon": self.norm_epsilon,
                "activation": activations.serialize(self.activation),
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kvision")
class DaViTSpatialBlock(_DualAttentionBlock):
    """DaViT's spatial block: window attention between position encodings.

    Reference: DaViT (arXiv:2204.03645), the official ``SpatialBlock``::

        x = cpe1(x)
        x = x + DropPath(WindowAttention(LN(x)))
        x = cpe2(x)
        x = x + DropPath(MLP(LN(x)))

    with :class:`ConvPositionEncoding` (its own residual) and
    :class:`WindowAttention` as DaViT has it: plain multi-head attention
    inside ``window_size × window_size`` windows, **no relative position
    bias, no shift, no mask**. A map whose height or width is not a
    multiple of the window is zero-padded at the bottom and right after the
    LayerNorm and cropped back after the attention (the padded positions
    take part as keys, as in the official code). One DropPath serves both
    branches (independent draws).

    Args:
        num_heads: int, attention heads; must divide the channel count.
        window_size: int, side of the attention windows (default 7).
        mlp_ratio: positive number, MLP hidden width over the channel
            count (default 4).
        qkv_bias: bool, bias on the query/key/value projection (default
            True).
        drop_path_rate: float in [0, 1), stochastic depth of both branches.
        norm_epsilon: float, epsilon of both LayerNorms (default 1e-5,
            PyTorch's, as in the official code).
        activation: the MLP's activation (default ``"gelu"``, exact).
        seed: optional int seed for stochastic depth and dropout.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: channels-last maps ``(B, H, W, C)``, static ``H, W, C``.
        training: bool.
        return_attention_scores: bool; if True returns ``(outputs,
            scores)`` with ``scores`` of shape ``(B, num_windows,
            num_heads, window_size**2, window_size**2)`` (see
            :class:`WindowAttention`).

    Output shape: ``(B, H, W, C)``.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import DaViTSpatialBlock
    >>> block = DaViTSpatialBlock(num_heads=3, window_size=7)
    >>> y, scores = block(
    ...     np.zeros((2, 10, 10, 96), "float32"), return_attention_scores=True
    ... )
    >>> tuple(y.shape), tuple(scores.shape)
    ((2, 10, 10, 96), (2, 4, 3, 49, 49))
    """

    def __init__(
        self,
        num_heads,
        window_size=7,
        mlp_ratio=4.0,
        qkv_bias=True,
        drop_path_rate=0.0,
        norm_epsilon=1e-5,
        activation="gelu",
        seed=None,
        **kwargs,
    ):
        super().__init__(
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            drop_path_rate=drop_path_rate,
            norm_epsilon=norm_epsilon,
            activation=activation,
            seed=seed,
            **kwargs,
        )
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.window_size = _checks.positive_int("window_size", window_size)

    def _make_attention(self, channels):
        if channels % self.num_heads:
            raise ValueError(
                "The channel count must be divisible by `num_heads`. "
                f"Received: num_heads={self.num_heads} for "
                f"channels={channels}"
            )
        return WindowAttention(
            self.num_heads,
            self.window_size,
            shift_size=0,
            qkv_bias=self.qkv_bias,
            relative_position_bias=False,
            pad_to_window=True,
            seed=_seeds.child_seed(self.seed, "attention"),
            dtype=self.dtype_policy,
            name="attention",
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_heads": self.num_heads, "window_size": self.window_size}
        )
        return config


@keras.saving.register_keras_serializable(package="kvision")
class DaViTChannelBlock(_DualAttentionBlock):
    """DaViT's channel block: channel group attention between position
    encodings.

    Reference: DaViT (arXiv:2204.03645), the official ``ChannelBlock``::

        x = cpe1(x)
        x = x + DropPath(ChannelGroupAttention(LN(x)))
        x = cpe2(x)
        x = x + DropPath(MLP(LN(x)))

    with :class:`ConvPositionEncoding` (its own residual) and
    :class:`ChannelGroupAttention`, whose attention spans the whole map.

    Args:
        num_groups: int, channel groups of the attention (the official
            code's ``num_heads``); must divide the channel count.
        mlp_ratio: positive number, MLP hidden width over the channel
            count (default 4).
        qkv_bias: bool, bias on the query/key/value projection (default
            True, what the released models use).
        drop_path_rate: float in [0, 1), stochastic depth of both branches.
        norm_epsilon: float, epsilon of both LayerNorms (default 1e-5).
        activation: the MLP's activation (default ``"gelu"``, exact).
        seed: optional int seed for stochastic depth and dropout.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: channels-last maps ``(B, H, W, C)``, static ``H, W, C``.
        training: bool.
        return_attention_scores: bool; if True returns ``(outputs,
            scores)`` with ``scores`` of shape ``(B, num_groups, Cg, Cg)``,
            ``Cg = C / num_groups``.

    Output shape: ``(B, H, W, C)``.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import DaViTChannelBlock
    >>> block = DaViTChannelBlock(num_groups=3)
    >>> y, scores = block(
    ...     np.zeros((2, 10, 10, 96), "float32"), return_attention_scores=True
    ... )
    >>> tuple(y.shape), tuple(scores.shape)
    ((2, 10, 10, 96), (2, 3, 32, 32))
    """

    def __init__(
        self,
        num_groups,
        mlp_ratio=4.0,
        qkv_bias=True,
        drop_path_rate=0.0,
        norm_epsilon=1e-5,
        activation="gelu",
        seed=None,
        **kwargs,
    ):
        super().__init__(
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            drop_path_rate=drop_path_rate,
            norm_epsilon=norm_epsilon,
            activation=activation,
            seed=seed,
            **kwargs,
        )
        self.num_groups = _checks.positive_int("num_groups", num_groups)

    def _make_attention(self, channels):
        if channels % self.num_groups:
            raise ValueError(
                "The channel count must be divisible by `num_groups`. "
                f"Received: num_groups={self.num_groups} for "
                f"channels={channels}"
            )
        return ChannelGroupAttention(
            self.num_groups,
            qkv_bias=self.qkv_bias,
            seed=_seeds.child_seed(self.seed, "attention"),
            dtype=self.dtype_policy,
            name="attention",
        )

    def get_config(self):
        config = super().get_config()
        config.update({"num_groups": self.num_groups})
        return config
