"""Multi-head self-attention and Locality Self-Attention, on one core."""

import keras
from keras import ops

from kvision import _checks
from kvision import _seeds
from kvision import ops as kv_ops


def attention_output_spec(layer, inputs, return_attention_scores):
    """Symbolic outputs of a layer that may also return attention scores."""
    outputs = keras.KerasTensor(inputs.shape, dtype=layer.compute_dtype)
    if not return_attention_scores:
        return outputs
    batch, tokens = inputs.shape[0], inputs.shape[1]
    scores = keras.KerasTensor(
        (batch, layer.num_heads, tokens, tokens), dtype=layer.compute_dtype
    )
    return outputs, scores


def attend(attention, inputs, training, return_attention_scores):
    """Calls a block's ``attention`` layer: ``(outputs, scores)``, the
    scores ``None`` unless asked for. A block asks for them only when its
    own caller does, so that otherwise the attention layer takes its fused
    path (:func:`kvision.ops.fused_attention`) and never materialises
    the ``(B, heads, N, N)`` weights."""
    if return_attention_scores:
        return attention(
            inputs, training=training, return_attention_scores=True
        )
    return attention(inputs, training=training), None


def head_layout(layer, channels, what="The embedding width"):
    """``(head_dim, inner_dim)`` of an attention layer with ``num_heads``
    and an optional ``head_dim`` over ``channels`` input channels.

    Without ``head_dim`` the channels are split evenly between the heads,
    so they must divide; ``what`` names the channels in the error.
    """
    if layer.head_dim is None and channels % layer.num_heads:
        raise ValueError(
            f"{what} must be divisible by `num_heads` when `head_dim` is "
            f"not given. Received: num_heads={layer.num_heads} for "
            f"{channels} channels"
        )
    head_dim = layer.head_dim or channels // layer.num_heads
    return head_dim, layer.num_heads * head_dim


def build_attention_parts(layer, channels, inner_dim, qkv=True):
    """Builds the pieces every attention layer here has, under the weight
    names saved files expect: ``qkv`` from ``channels`` to three times
    ``inner_dim`` (the concatenated heads; skipped when ``qkv=False``),
    ``projection`` from ``inner_dim`` back to ``channels``, and the
    attention and output dropouts, seeded from ``layer.seed``.
    """
    policy = layer.dtype_policy
    if qkv:
        layer.qkv = keras.layers.Dense(
            3 * inner_dim, use_bias=layer.qkv_bias, dtype=policy, name="qkv"
        )
        # A Dense kernel depends on the last axis only.
        layer.qkv.build((None, channels))
    layer.projection = keras.layers.Dense(
        channels, dtype=policy, name="projection"
    )
    layer.projection.build((None, inner_dim))
    for attribute, rate, name in (
        ("attention_drop", layer.attention_dropout, "attention_dropout"),
        ("output_drop", layer.dropout, "output_dropout"),
    ):
        dropout = keras.layers.Dropout(
            rate,
            seed=_seeds.child_seed(layer.seed, name),
            dtype=policy,
            name=name,
        )
        setattr(layer, attribute, dropout)


@keras.saving.register_keras_serializable(package="kvision")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head self-attention with its attention weights exposed.

    Reference: Vaswani et al., *Attention Is All You Need* (2017), as used by
    ViT (Dosovitskiy et al., arXiv:2010.11929). Queries, keys and values come
    from one fused projection (the layout of the SL-ViT code and of timm;
    Google's ViT code has three separate projections), heads are
    scaled by ``1 / sqrt(head_dim)``, and an output projection maps back to
    the input width. When the weights are asked for
    (``return_attention_scores=True``) or attention dropout is active, they
    are computed by :func:`kvision.ops.attention_probabilities`, the single
    attention core every attention layer here shares; otherwise the layer
    calls :func:`kvision.ops.fused_attention`, the backend's fused kernel,
    which gives the same outputs and gradients without materialising the
    ``(B, heads, N, N)`` weights. :class:`LocalitySelfAttention` inherits
    both paths.

    Args:
        num_heads: int, number of attention heads.
        head_dim: int or ``None`` (default) for ``embed_dim // num_heads``, in
            which case ``embed_dim`` must be divisible by ``num_heads``.
        qkv_bias: bool, whether the query/key/value projection has a bias
            (default True, as in ViT-B/16).
        attention_dropout: float in [0, 1), dropout on the attention weights.
        dropout: float in [0, 1), dropout after the output projection.
        seed: optional int seed for the dropout layers.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: tokens ``(B, N, embed_dim)``.
        training: bool, enables dropout.
        return_attention_scores: bool; if True the layer returns
            ``(outputs, scores)`` with ``scores`` of shape
            ``(B, num_heads, N, N)``: the softmax weights before dropout.

    Output shape: ``(B, N, embed_dim)``.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import MultiHeadSelfAttention
    >>> mhsa = MultiHeadSelfAttention(num_heads=4)
    >>> y, scores = mhsa(
    ...     np.zeros((2, 17, 64), "float32"), return_attention_scores=True
    ... )
    >>> tuple(y.shape), tuple(scores.shape)
    ((2, 17, 64), (2, 4, 17, 17))
    """

    # LocalitySelfAttention switches these on.
    _mask_diagonal = False
    _learnable_temperature = False

    def __init__(
        self,
        num_heads,
        head_dim=None,
        qkv_bias=True,
        attention_dropout=0.0,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.head_dim = _checks.optional_positive_int("head_dim", head_dim)
        self.qkv_bias = bool(qkv_bias)
        self.attention_dropout = _checks.rate(
            "attention_dropout", attention_dropout
        )
        self.dropout = _checks.rate("dropout", dropout)
        self.seed = seed

    def build(self, input_shape):
        _checks.input_rank(self, input_shape, (3,), "(batch, tokens, channels)")
        _checks.static_dims(self, input_shape, [-1], "channel dimension")
        embed_dim = input_shape[-1]
        self._head_dim, inner_dim = head_layout(self, embed_dim)
        if self._mask_diagonal:
            _checks.static_dims(self, input_shape, [1], "number of tokens")
            if input_shape[1] < 2:
                raise ValueError(
                    f"{type(self).__name__} masks each token's attention to "
                    "itself, so it needs at least 2 tokens. "
                    f"Received: input_shape={tuple(input_shape)}"
                )
        build_attention_parts(self, embed_dim, inner_dim)
        standard_scale = self._head_dim**-0.5
        if self._learnable_temperature:
            self.temperature = self.add_weight(
                name="temperature",
                shape=(self.num_heads,),
                initializer=keras.initializers.Constant(standard_scale),
            )
            self._scale = None
        else:
            self._scale = standard_scale

    def call(self, inputs, training=None, return_attention_scores=False):
        num_tokens = inputs.shape[1] or ops.shape(inputs)[1]
        qkv = self.qkv(inputs)
        qkv = ops.reshape(
            qkv, (-1, num_tokens, 3, self.num_heads, self._head_dim)
        )
        scale = self.temperature if self._scale is None else self._scale
        dropping = training and self.attention_dropout > 0
        if not return_attention_scores and not dropping:
            # Nobody needs the weights: the backend's fused kernel.
            x = kv_ops.fused_attention(
                qkv[:, :, 0],
                qkv[:, :, 1],
                qkv[:, :, 2],
                scale,
                mask_diagonal=self._mask_diagonal,
            )
        else:
            # (B, N, 3, heads, head_dim) -> (3, B, heads, N, head_dim)
            qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))
            query, key, value = qkv[0], qkv[1], qkv[2]
            scores = kv_ops.attention_probabilities(
                query, key, scale, mask_diagonal=self._mask_diagonal
            )
            weights = self.attention_drop(scores, training=training)
            x = ops.einsum("bhqk,bhkd->bqhd", weights, value)
        x = ops.reshape(x, (-1, num_tokens, self.num_heads * self._head_dim))
        x = self.output_drop(self.projection(x), training=training)
        if return_attention_scores:
            return x, scores
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(
        self, inputs, training=None, return_attention_scores=False
    ):
        return attention_output_spec(self, inputs, return_attention_scores)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "head_dim": self.head_dim,
                "qkv_bias": self.qkv_bias,
                "attention_dropout": self.attention_dropout,
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kvision")
class LocalitySelfAttention(MultiHeadSelfAttention):
    """Locality Self-Attention (LSA): diagonal masking + learned temperature.

    Reference: Lee, Lee and Song, *Vision Transformer for Small-Size
    Datasets* (arXiv:2112.13492), Section 3.2. Following the official code:

    - every token's attention to itself is masked before the softmax (the
      class token included), so the diagonal of the attention matrix is
      exactly zero and a token must attend to others;
    - the logits are multiplied by a learnable **per-head** temperature
      initialised to ``1 / sqrt(head_dim)`` (a trainable Keras weight named
      ``temperature``, saved and trained like any other);
    - the query/key/value projection has no bias by default.

    Everything else, including the attention core, is
    :class:`MultiHeadSelfAttention`'s.

    Args:
        num_heads: int, number of attention heads.
        head_dim: int or ``None`` for ``embed_dim // num_heads``.
        qkv_bias: bool (default False, as in the official small-data ViT).
        attention_dropout: float in [0, 1), dropout on attention weights.
        dropout: float in [0, 1), dropout after the output projection.
        seed: optional int seed for the dropout layers.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: tokens ``(B, N, embed_dim)`` with a static ``N >= 2``.
        training: bool, enables dropout.
        return_attention_scores: bool; if True returns ``(outputs, scores)``
            with ``scores`` of shape ``(B, num_heads, N, N)``.

    Output shape: ``(B, N, embed_dim)``.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from kvision.layers import LocalitySelfAttention
    >>> lsa = LocalitySelfAttention(num_heads=12, head_dim=16)
    >>> x = np.random.default_rng(0).normal(size=(2, 65, 192))
    >>> y, scores = lsa(x.astype("float32"), return_attention_scores=True)
    >>> scores = keras.ops.convert_to_numpy(scores)
    >>> scores.shape, float(scores[0, 0, 3, 3])
    ((2, 12, 65, 65), 0.0)
    """

    _mask_diagonal = True
    _learnable_temperature = True

    def __init__(
        self,
        num_heads,
        head_dim=None,
        qkv_bias=False,
        attention_dropout=0.0,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            num_heads,
            head_dim=head_dim,
            qkv_bias=qkv_bias,
            attention_dropout=attention_dropout,
            dropout=dropout,
            seed=seed,
            **kwargs,
        )
