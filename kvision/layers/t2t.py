"""Tokens-to-Token ViT's progressive tokenization (the T2T module)."""

import keras
from keras import ops

from kvision import _checks
from kvision import activations
from kvision import ops as kv_ops
from kvision.layers.mlp import MLP


@keras.saving.register_keras_serializable(package="kvision")
class SinusoidalPositions(keras.initializers.Initializer):
    """Initializer filling a ``(length, dim)`` weight with sine/cosine
    positions (:func:`kvision.ops.sinusoidal_positions`).

    T2T-ViT (arXiv:2101.11986) adds this table, frozen, to its tokens: use
    it with ``PositionEmbedding(initializer=SinusoidalPositions(),
    trainable=False)``.

    Example:

    >>> import keras
    >>> from kvision.layers.t2t import SinusoidalPositions
    >>> table = SinusoidalPositions()((65, 256))
    >>> tuple(table.shape), float(keras.ops.convert_to_numpy(table)[0, 1])
    ((65, 256), 1.0)
    """

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(
                "SinusoidalPositions fills (length, dim) weights. "
                f"Received: shape={tuple(shape)}"
            )
        dtype = dtype or keras.config.floatx()
        return kv_ops.sinusoidal_positions(shape[0], shape[1], dtype=dtype)

    def get_config(self):
        return {}


class _TokenTransformer(keras.layers.Layer):
    """T2T's one-block token transformer, from ``in_dim`` to ``token_dim``.

    ``y = proj(attn(LN_1(x))) + v`` (the values, merged over heads, carry
    the residual because the input and output widths differ), then
    ``y + MLP(LN_2(y))``. As in the official code the attention scale is
    ``(in_dim // heads) ** -0.5``, from the input width rather than the
    query width.
    """

    def __init__(
        self,
        token_dim,
        num_heads,
        mlp_dim,
        attention,
        qkv_bias,
        norm_epsilon,
        activation,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.token_dim = token_dim
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.attention = attention
        self.qkv_bias = qkv_bias
        self.norm_epsilon = norm_epsilon
        self.activation = activation

    def build(self, input_shape):
        in_dim = input_shape[-1]
        policy = self.dtype_policy
        self._head_dim = self.token_dim // self.num_heads
        self.norm1 = keras.layers.LayerNormalization(
            epsilon=self.norm_epsilon, dtype=policy, name="norm1"
        )
        self.qkv = keras.layers.Dense(
            3 * self.token_dim, use_bias=self.qkv_bias, dtype=policy, name="qkv"
        )
        self.projection = keras.layers.Dense(
            self.token_dim, dtype=policy, name="projection"
        )
        self.norm2 = keras.layers.LayerNormalization(
            epsilon=self.norm_epsilon, dtype=policy, name="norm2"
        )
        self.mlp = MLP(
            self.mlp_dim, activation=self.activation, dtype=policy, name="mlp"
        )
        out_shape = tuple(input_shape[:-1]) + (self.token_dim,)
        self.norm1.build(input_shape)
        self.qkv.build(input_shape)
        for layer in (self.projection, self.norm2, self.mlp):
            layer.build(out_shape)
        self._scale = max(in_dim // self.num_heads, 1) ** -0.5
        self.temperature = None
        if self.attention == "lsa":
            self.temperature = self.add_weight(
                name="temperature",
                shape=(self.num_heads,),
                initializer=keras.initializers.Constant(self._scale),
            )

    def call(self, inputs):
        tokens = inputs.shape[1]
        qkv = self.qkv(self.norm1(inputs))
        qkv = ops.reshape(qkv, (-1, tokens, 3, self.num_heads, self._head_dim))
        # (B, N, heads, head_dim) each: the fused kernels' layout. Nothing
        # reads this layer's weights, so it never materialises them.
        query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        scale = self._scale if self.temperature is None else self.temperature
        x = kv_ops.fused_attention(
            query, key, value, scale, mask_diagonal=self.attention == "lsa"
        )
        x = ops.reshape(x, (-1, tokens, self.token_dim))
        value = ops.reshape(value, (-1, tokens, self.token_dim))
        x = self.projection(x) + value
        return x + self.mlp(self.norm2(x))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.token_dim,)


@keras.saving.register_keras_serializable(package="kvision")
class TokensToToken(keras.layers.Layer):
    """Tokens-to-Token (T2T) module: soft splits and token transformers.

    Reference: Yuan et al., *Tokens-to-Token ViT* (arXiv:2101.11986),
    Section 3.1; with ``shift_size`` and ``attention="lsa"`` the SL-T2T of
    Lee, Lee and Song (arXiv:2112.13492).

    Instead of cutting the image into disjoint patches once, T2T tokenises
    it progressively. A *soft split* unfolds overlapping
    ``kernel_size`` windows ``strides`` apart (zero ``padding``), so
    neighbouring tokens share pixels (:func:`kvision.ops.unfold`). Each of
    ``num_iterations`` rounds then

    1. runs a one-block *token transformer* on the tokens (``num_heads``
       heads of total width ``token_dim``, MLP ratio ``mlp_ratio``; its
       attention residual is the values, because the input and output
       widths differ, and its attention scale is ``(in_dim // num_heads)
       ** -0.5`` from the input width, as in the official code);
    2. *re-structures* the tokens into a ``(h, w, token_dim)`` map;
    3. soft-splits that map again.

    The last split's tokens (``kernel_size**2 * token_dim`` wide) are
    projected to ``embed_dim``. With the defaults a 32x32 image becomes
    16x16 tokens, then 8x8 tokens of width ``embed_dim``.

    SL-T2T shifts the image before the first split: the four diagonal
    shifts of Shifted Patch Tokenization by ``shift_size`` pixels
    (:func:`kvision.ops.shift_images`, 3 -> 15 channels), and makes each
    token transformer a Locality Self-Attention (learned per-head
    temperature, diagonal masked).

    ``projection_norm=True`` layer-normalises the last split before the
    projection. The SPT/LSA repository creates that LayerNorm but never
    applies it, so its parameter count includes ``2 * kernel_size**2 *
    token_dim`` parameters that do nothing; kvision either applies it
    (``True``: the same parameter count) or leaves it out (``False``, the
    official T2T-ViT and the function the SPT/LSA paper measured).

    Args:
        embed_dim: int, width of the output tokens.
        token_dim: int, width of the tokens inside the module.
        num_iterations: int >= 1, token-transformer rounds (the SPT/LSA
            repository: 1 at 32 px, 2 at 64 px; T2T-ViT on ImageNet: 2).
        num_heads: int, heads of each token transformer; divides
            ``token_dim``.
        mlp_ratio: float > 0, MLP width of each token transformer relative to
            ``token_dim``.
        kernel_size: int, window side of every soft split.
        strides: int, step of every soft split.
        padding: int >= 0, zero padding of every soft split.
        shift_size: int >= 1 or ``None`` (default: no shift), the SPT shift
            applied to the image before the first split.
        attention: ``"mhsa"`` or ``"lsa"``, the token transformers'
            attention.
        qkv_bias: bool, bias on the token transformers' query/key/value
            projection (official: False).
        projection_norm: bool, see above.
        norm_epsilon: float, epsilon of every layer normalisation.
        activation: the token transformers' MLP activation.
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None``
            for Keras' global setting.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: images ``(B, H, W, C)`` (or ``(B, C, H, W)``).
    Output shape: ``(B, h * w, embed_dim)`` after ``num_iterations + 1``
    splits (each maps a side ``n`` to ``(n + 2 * padding - kernel_size) //
    strides + 1``).

    Example:

    >>> import numpy as np
    >>> from kvision.layers import TokensToToken
    >>> t2t = TokensToToken(embed_dim=256, token_dim=64)
    >>> tuple(t2t(np.zeros((2, 32, 32, 3), "float32")).shape)
    (2, 64, 256)
    """

    def __init__(
        self,
        embed_dim,
        token_dim=64,
        num_iterations=1,
        num_heads=1,
        mlp_ratio=1.0,
        kernel_size=3,
        strides=2,
        padding=1,
        shift_size=None,
        attention="mhsa",
        qkv_bias=False,
        projection_norm=False,
        norm_epsilon=1e-5,
        activation="gelu",
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.embed_dim = _checks.positive_int("embed_dim", embed_dim)
        self.token_dim = _checks.positive_int("token_dim", token_dim)
        self.num_iterations = _checks.positive_int(
            "num_iterations", num_iterations
        )
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        if token_dim % num_heads:
            raise ValueError(
                "`token_dim` must be divisible by `num_heads`. Received: "
                f"token_dim={token_dim}, num_heads={num_heads}"
            )
        if (
            isinstance(mlp_ratio, bool)
            or not isinstance(mlp_ratio, (int, float))
            or mlp_ratio <= 0
        ):
            raise ValueError(
                "`mlp_ratio` must be a positive number. "
                f"Received: mlp_ratio={mlp_ratio!r}"
            )
        self.mlp_ratio = float(mlp_ratio)
        self.kernel_size = _checks.positive_int("kernel_size", kernel_size)
        self.strides = _checks.positive_int("strides", strides)
        if isinstance(padding, bool) or not isinstance(padding, int):
            raise ValueError(
                f"`padding` must be an integer. Received: padding={padding!r}"
            )
        if padding < 0:
            raise ValueError(
                f"`padding` must be non-negative. Received: padding={padding}"
            )
        self.padding = padding
        self.shift_size = _checks.optional_positive_int(
            "shift_size", shift_size
        )
        self.attention = _checks.one_of("attention", attention, {"mhsa", "lsa"})
        self.qkv_bias = bool(qkv_bias)
        self.projection_norm = bool(projection_norm)
        self.norm_epsilon = _checks.non_negative_float(
            "norm_epsilon", norm_epsilon
        )
        self.activation = activations.get(activation)
        self.data_format = _checks.data_format(data_format)

    def _split_size(self, size):
        return (size + 2 * self.padding - self.kernel_size) // self.strides + 1

    def _grids(self, input_shape):
        """The ``(h, w)`` token grid after each of the splits."""
        shape = _checks.nhwc_shape(self, input_shape)
        _checks.static_dims(self, shape, [1, 2], "image size")
        grids = []
        height, width = shape[1], shape[2]
        for _ in range(self.num_iterations + 1):
            height, width = self._split_size(height), self._split_size(width)
            if height < 1 or width < 1:
                raise ValueError(
                    f"TokensToToken: the image ({shape[1]}x{shape[2]}) is "
                    f"too small for {self.num_iterations + 1} splits of "
                    f"kernel_size={self.kernel_size}, strides={self.strides}"
                    f", padding={self.padding}. Received: "
                    f"input_shape={tuple(input_shape)}"
                )
            grids.append((height, width))
        return shape, grids

    def build(self, input_shape):
        shape, grids = self._grids(input_shape)
        if self.attention == "lsa":
            for height, width in grids[:-1]:
                if height * width < 2:
                    raise ValueError(
                        "TokensToToken with attention='lsa' masks each "
                        "token's attention to itself, so every token "
                        "transformer needs at least 2 tokens; a split gives "
                        f"{height}x{width}. Received: "
                        f"input_shape={tuple(input_shape)}"
                    )
        self._grid_sizes = grids
        policy = self.dtype_policy
        channels = shape[3] * (5 if self.shift_size else 1)
        window = self.kernel_size**2
        self.token_transformers = []
        in_dim = window * channels
        for i, (height, width) in enumerate(grids[:-1]):
            block = _TokenTransformer(
                self.token_dim,
                self.num_heads,
                max(int(self.token_dim * self.mlp_ratio), 1),
                self.attention,
                self.qkv_bias,
                self.norm_epsilon,
                self.activation,
                dtype=policy,
                name=f"token_transformer{i}",
            )
            block.build((None, height * width, in_dim))
            self.token_transformers.append(block)
            in_dim = window * self.token_dim
        self.norm = None
        if self.projection_norm:
            self.norm = keras.layers.LayerNormalization(
                epsilon=self.norm_epsilon, dtype=policy, name="norm"
            )
            self.norm.build((None, None, in_dim))
        self.projection = keras.layers.Dense(
            self.embed_dim, dtype=policy, name="projection"
        )
        self.projection.build((None, None, in_dim))

    def _split(self, images):
        return kv_ops.unfold(
            images, self.kernel_size, self.strides, self.padding
        )

    def call(self, inputs):
        x = kv_ops.to_channels_last(inputs, self.data_format)
        if self.shift_size:
            x = kv_ops.shift_images(x, self.shift_size)
        x = self._split(x)
        for block, (height, width) in zip(
            self.token_transformers, self._grid_sizes[:-1], strict=True
        ):
            x = block(x)
            x = ops.reshape(x, (-1, height, width, self.token_dim))
            x = self._split(x)
        if self.norm is not None:
            x = self.norm(x)
        return self.projection(x)

    def compute_output_shape(self, input_shape):
        _, grids = self._grids(input_shape)
        height, width = grids[-1]
        return (input_shape[0], height * width, self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "embed_dim": self.embed_dim,
                "token_dim": self.token_dim,
                "num_iterations": self.num_iterations,
                "num_heads": self.num_heads,
                "mlp_ratio": self.mlp_ratio,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "shift_size": self.shift_size,
                "attention": self.attention,
                "qkv_bias": self.qkv_bias,
                "projection_norm": self.projection_norm,
                "norm_epsilon": self.norm_epsilon,
                "activation": activations.serialize(self.activation),
                "data_format": self.data_format,
            }
        )
        return config
