"""CaiT's attention: talking heads, class attention and the class block."""

import keras
from keras import ops

from kvision import _checks
from kvision import _seeds
from kvision import activations
from kvision import ops as kv_ops
from kvision.layers.attention import attend
from kvision.layers.attention import build_attention_parts
from kvision.layers.attention import head_layout
from kvision.layers.residual import add_residual
from kvision.layers.residual import build_residual_parts

# How the heads are mixed: "linear" is the official CaiT's nn.Linear over
# the head axis (with bias, truncated-normal 0.02 initialisation, so the
# mixing starts near zero); "matrix" is the SPT/LSA repository's bias-free
# (heads, heads) matrix drawn from a standard normal.
TALKING_HEADS = ("linear", "matrix")
# "official_spt" writes this value on the diagonal of the logits, as the
# SPT/LSA repository's CaiT does. It replaces each token's logit to itself
# by (almost) zero, which masks nothing.
OFFICIAL_SPT_DIAGONAL = -1e-9
DIAGONAL_MASKS = ("none", "official_spt", "mask")


def _add_head_mixing(layer, name, mode):
    """Creates one (heads -> heads) mixing kernel and, if linear, a bias."""
    heads = layer.num_heads
    if mode == "linear":
        initializer = keras.initializers.TruncatedNormal(stddev=0.02)
    else:
        initializer = keras.initializers.RandomNormal(stddev=1.0)
    kernel = layer.add_weight(
        name=f"{name}_kernel", shape=(heads, heads), initializer=initializer
    )
    bias = None
    if mode == "linear":
        bias = layer.add_weight(
            name=f"{name}_bias", shape=(heads,), initializer="zeros"
        )
    return kernel, bias


def mix_heads(scores, kernel, bias=None):
    """Talking heads: ``out[:, g] = sum_h scores[:, h] * kernel[h, g] + b[g]``.

    ``scores`` is ``(B, heads, N, M)``; ``kernel`` is ``(heads, heads)`` in
    the ``(in, out)`` layout of a Keras ``Dense`` kernel.
    """
    kernel = ops.cast(kernel, scores.dtype)
    mixed = ops.einsum("bhqk,hg->bgqk", scores, kernel)
    if bias is not None:
        mixed = mixed + ops.reshape(ops.cast(bias, scores.dtype), (-1, 1, 1))
    return mixed


class _HeadsAttention(keras.layers.Layer):
    """What CaiT's two attentions share: heads, temperature, head mixing."""

    def __init__(
        self,
        num_heads,
        head_dim=None,
        qkv_bias=True,
        talking_heads=None,
        attention="mhsa",
        attention_dropout=0.0,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.head_dim = _checks.optional_positive_int("head_dim", head_dim)
        self.qkv_bias = bool(qkv_bias)
        if talking_heads is not None:
            _checks.one_of("talking_heads", talking_heads, set(TALKING_HEADS))
        self.talking_heads = talking_heads
        self.attention = _checks.one_of("attention", attention, {"mhsa", "lsa"})
        self.attention_dropout = _checks.rate(
            "attention_dropout", attention_dropout
        )
        self.dropout = _checks.rate("dropout", dropout)
        self.seed = seed

    def _build_common(self, input_shape, qkv):
        _checks.input_rank(self, input_shape, (3,), "(batch, tokens, channels)")
        _checks.static_dims(self, input_shape, [-1], "channel dimension")
        embed_dim = input_shape[-1]
        self._head_dim, self._inner_dim = head_layout(self, embed_dim)
        build_attention_parts(self, embed_dim, self._inner_dim, qkv=qkv)
        standard_scale = self._head_dim**-0.5
        self.temperature = None
        if self.attention == "lsa":
            self.temperature = self.add_weight(
                name="temperature",
                shape=(self.num_heads,),
                initializer=keras.initializers.Constant(standard_scale),
            )
        self._scale = standard_scale
        self.pre_mix_kernel = self.pre_mix_bias = None
        self.post_mix_kernel = self.post_mix_bias = None
        if self.talking_heads is not None:
            self.pre_mix_kernel, self.pre_mix_bias = _add_head_mixing(
                self, "pre_softmax_mix", self.talking_heads
            )
            self.post_mix_kernel, self.post_mix_bias = _add_head_mixing(
                self, "post_softmax_mix", self.talking_heads
            )

    def _split_heads(self, x, tokens):
        """``(B, N, heads * d)`` -> ``(B, heads, N, d)``."""
        x = ops.reshape(x, (-1, tokens, self.num_heads, self._head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def _attend(self, query, key, value, training, diagonal=None):
        """Weights and output of every head: ``(B, heads, N, M)`` and
        ``(B, N, embed_dim)``; ``diagonal`` is ``None`` or a mask mode."""
        scale = self._scale if self.temperature is None else self.temperature
        transform = None
        if diagonal == "official_spt" or self.talking_heads is not None:

            def transform(logits):
                if diagonal == "official_spt":
                    eye = ops.eye(logits.shape[-1], dtype="bool")
                    self_logit = ops.cast(OFFICIAL_SPT_DIAGONAL, "float32")
                    logits = ops.where(eye, self_logit, logits)
                if self.talking_heads is None:
                    return logits
                return mix_heads(logits, self.pre_mix_kernel, self.pre_mix_bias)

        scores = kv_ops.attention_probabilities(
            query,
            key,
            scale,
            mask_diagonal=diagonal == "mask",
            logits_transform=transform,
        )
        if self.talking_heads is not None:
            scores = mix_heads(scores, self.post_mix_kernel, self.post_mix_bias)
        weights = self.attention_drop(scores, training=training)
        x = ops.einsum("bhqk,bhkd->bqhd", weights, value)
        tokens = query.shape[2] or ops.shape(query)[2]
        x = ops.reshape(x, (-1, tokens, self._inner_dim))
        x = self.output_drop(self.projection(x), training=training)
        return x, scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "head_dim": self.head_dim,
                "qkv_bias": self.qkv_bias,
                "talking_heads": self.talking_heads,
                "attention": self.attention,
                "attention_dropout": self.attention_dropout,
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kvision")
class TalkingHeadsAttention(_HeadsAttention):
    """CaiT's self-attention, whose heads exchange information.

    Reference: Touvron et al., *Going deeper with Image Transformers* (CaiT,
    arXiv:2103.17239), after Shazeer et al., *Talking-Heads Attention*
    (arXiv:2003.02436); with ``attention="lsa"``, the SL-CaiT of Lee, Lee
    and Song (arXiv:2112.13492).

    Queries, keys and values come from one fused projection; the logits
    ``Q Kᵀ · scale`` of every head are mixed across heads by a learned
    ``(heads, heads)`` map before the softmax, and the probabilities are
    mixed again by a second map after it; the result weights the values,
    and an output projection maps back to the input width. The softmax is
    :func:`kvision.ops.attention_probabilities` with the pre-softmax mixing
    as its ``logits_transform``.

    Two parameterisations of the mixing (``talking_heads``):

    - ``"linear"`` (official CaiT): a dense map with bias over the head
      axis, truncated-normal (0.02) kernel and zero bias, so the attention
      starts close to uniform and the layer's output close to zero;
    - ``"matrix"`` (the SPT/LSA repository's CaiT, derived from
      lucidrains' vit-pytorch): a bias-free matrix drawn from a standard
      normal, ``heads * heads`` parameters per map instead of
      ``heads * (heads + 1)``.

    ``attention="lsa"`` makes the softmax temperature a learned per-head
    scale, initialised to ``1 / sqrt(head_dim)``, and chooses a diagonal
    treatment (``diagonal_mask``):

    - ``"mask"`` (LSA proper, the default with ``"lsa"``): each token's
      attention to itself gets probability zero. The mask acts on the
      logits after the pre-softmax mixing, so the softmax can still zero
      them; the post-softmax mixing's bias (``"linear"`` only) can make the
      diagonal of the returned weights non-zero again;
    - ``"official_spt"``: what the SPT/LSA repository's SL-CaiT does, and
      what its paper measured: the diagonal logits are *set* to ``-1e-9``
      before the mixing. That is not a mask (the self-logit becomes about
      zero, not minus infinity), so SL-CaiT's gain comes from SPT and the
      learned temperature;
    - ``"none"``: no diagonal treatment (the default with ``"mhsa"``).

    Args:
        num_heads: int, number of attention heads.
        head_dim: int or ``None`` for ``embed_dim // num_heads`` (official
            CaiT); the SPT/LSA repository's CaiT uses 64 with 4 heads on a
            192-wide model.
        qkv_bias: bool, whether the query/key/value projection has a bias
            (official CaiT: True; the SPT/LSA repository: False).
        talking_heads: ``"linear"`` or ``"matrix"``, see above.
        attention: ``"mhsa"`` (fixed scale) or ``"lsa"`` (learned per-head
            temperature).
        diagonal_mask: ``None`` (``"mask"`` with ``"lsa"``, ``"none"``
            with ``"mhsa"``), ``"none"``, ``"official_spt"`` or ``"mask"``.
        attention_dropout: float in [0, 1), dropout on the mixed weights.
        dropout: float in [0, 1), dropout after the output projection.
        seed: optional int seed for the dropout layers.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: tokens ``(B, N, embed_dim)``.
        training: bool, enables dropout.
        return_attention_scores: bool; if True the layer returns
            ``(outputs, scores)`` with ``scores`` of shape
            ``(B, num_heads, N, N)``: the weights that multiply the values,
            i.e. the softmax probabilities *after* the post-softmax mixing
            (before dropout). They need not be positive nor sum to one.

    Output shape: ``(B, N, embed_dim)``.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import TalkingHeadsAttention
    >>> layer = TalkingHeadsAttention(num_heads=4)
    >>> y, scores = layer(
    ...     np.zeros((2, 64, 192), "float32"), return_attention_scores=True
    ... )
    >>> tuple(y.shape), tuple(scores.shape)
    ((2, 64, 192), (2, 4, 64, 64))
    """

    def __init__(
        self,
        num_heads,
        head_dim=None,
        qkv_bias=True,
        talking_heads="linear",
        attention="mhsa",
        diagonal_mask=None,
        attention_dropout=0.0,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        _checks.one_of("talking_heads", talking_heads, set(TALKING_HEADS))
        super().__init__(
            num_heads,
            head_dim=head_dim,
            qkv_bias=qkv_bias,
            talking_heads=talking_heads,
            attention=attention,
            attention_dropout=attention_dropout,
            dropout=dropout,
            seed=seed,
            **kwargs,
        )
        if diagonal_mask is not None:
            _checks.one_of("diagonal_mask", diagonal_mask, set(DIAGONAL_MASKS))
        self.diagonal_mask = diagonal_mask
        if diagonal_mask is None:
            diagonal_mask = "mask" if self.attention == "lsa" else "none"
        self._diagonal = diagonal_mask

    def build(self, input_shape):
        self._build_common(input_shape, qkv=True)
        if self._diagonal != "none":
            _checks.static_dims(self, input_shape, [1], "number of tokens")
        if self._diagonal == "mask" and input_shape[1] < 2:
            raise ValueError(
                "`diagonal_mask='mask'` removes each token's attention to "
                "itself, so it needs at least 2 tokens. Received: "
                f"input_shape={tuple(input_shape)}"
            )

    def call(self, inputs, training=None, return_attention_scores=False):
        tokens = inputs.shape[1] or ops.shape(inputs)[1]
        qkv = self.qkv(inputs)
        # (B, N, 3, heads, head_dim) -> (3, B, heads, N, head_dim)
        qkv = ops.reshape(qkv, (-1, tokens, 3, self.num_heads, self._head_dim))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))
        x, scores = self._attend(
            qkv[0], qkv[1], qkv[2], training, diagonal=self._diagonal
        )
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
        batch, tokens = inputs.shape[0], inputs.shape[1]
        scores = keras.KerasTensor(
            (batch, self.num_heads, tokens, tokens), dtype=self.compute_dtype
        )
        return outputs, scores

    def get_config(self):
        config = super().get_config()
        config["diagonal_mask"] = self.diagonal_mask
        return config


@keras.saving.register_keras_serializable(package="kvision")
class ClassAttention(_HeadsAttention):
    """CaiT's class attention: the class token queries the image tokens.

    Reference: Touvron et al., *Going deeper with Image Transformers* (CaiT,
    arXiv:2103.17239), Section 3. Only the class token (the first token)
    forms a query; keys and values come from the class and patch tokens
    (``key_tokens="all"``, official CaiT) or from the patch tokens only
    (``key_tokens="patches"``: the SPT/LSA repository's CaiT, whose class
    token does not see itself). The layer returns the class token's update
    only; :class:`ClassAttentionBlock` adds it to the class token and passes
    the patch tokens through unchanged.

    The official CaiT has separate query, key and value projections and no
    head mixing in class attention; the SPT/LSA repository applies the
    same talking heads as in its self-attention (``talking_heads``) and,
    with LSA, a learned per-head temperature (there is no diagonal to mask:
    the single query is not among the keys in its layout).

    Args:
        num_heads: int, number of attention heads.
        head_dim: int or ``None`` for ``embed_dim // num_heads``.
        qkv_bias: bool, bias on the query, key and value projections.
        key_tokens: ``"all"`` (class + patch tokens, official) or
            ``"patches"`` (patch tokens only, the SPT/LSA repository).
        talking_heads: ``None`` (official), ``"linear"`` or ``"matrix"``
            (see :class:`TalkingHeadsAttention`).
        attention: ``"mhsa"`` (fixed scale) or ``"lsa"`` (learned per-head
            temperature initialised to ``1 / sqrt(head_dim)``).
        attention_dropout: float in [0, 1), dropout on attention weights.
        dropout: float in [0, 1), dropout after the output projection.
        seed: optional int seed for the dropout layers.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: ``(B, 1 + N, embed_dim)``, the class token first (already
            normalised by the calling block).
        training: bool, enables dropout.
        return_attention_scores: bool; if True returns ``(outputs, scores)``
            with ``scores`` of shape ``(B, num_heads, 1, M)``, ``M = 1 + N``
            for ``key_tokens="all"`` and ``N`` for ``"patches"``: the
            weights that multiply the values (after the post-softmax mixing
            when there are talking heads).

    Output shape: ``(B, 1, embed_dim)``, the class token's update.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import ClassAttention
    >>> layer = ClassAttention(num_heads=4)
    >>> y, scores = layer(
    ...     np.zeros((2, 65, 192), "float32"), return_attention_scores=True
    ... )
    >>> tuple(y.shape), tuple(scores.shape)
    ((2, 1, 192), (2, 4, 1, 65))
    """

    def __init__(
        self,
        num_heads,
        head_dim=None,
        qkv_bias=True,
        key_tokens="all",
        talking_heads=None,
        attention="mhsa",
        attention_dropout=0.0,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            num_heads,
            head_dim=head_dim,
            qkv_bias=qkv_bias,
            talking_heads=talking_heads,
            attention=attention,
            attention_dropout=attention_dropout,
            dropout=dropout,
            seed=seed,
            **kwargs,
        )
        self.key_tokens = _checks.one_of(
            "key_tokens", key_tokens, {"all", "patches"}
        )

    def _key_count(self, input_shape):
        tokens = input_shape[1]
        if tokens is None:
            return None
        return tokens if self.key_tokens == "all" else tokens - 1

    def build(self, input_shape):
        self._build_common(input_shape, qkv=False)
        minimum = 1 if self.key_tokens == "all" else 2
        if input_shape[1] is not None and input_shape[1] < minimum:
            raise ValueError(
                f"ClassAttention with key_tokens={self.key_tokens!r} needs "
                f"at least {minimum} tokens (the class token first). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        policy = self.dtype_policy
        self.query = keras.layers.Dense(
            self._inner_dim, use_bias=self.qkv_bias, dtype=policy, name="query"
        )
        self.key_value = keras.layers.Dense(
            2 * self._inner_dim,
            use_bias=self.qkv_bias,
            dtype=policy,
            name="key_value",
        )
        self.query.build(input_shape)
        self.key_value.build(input_shape)

    def call(self, inputs, training=None, return_attention_scores=False):
        context = inputs if self.key_tokens == "all" else inputs[:, 1:]
        keys = self._key_count(inputs.shape) or ops.shape(context)[1]
        query = self._split_heads(self.query(inputs[:, :1]), 1)
        kv = self.key_value(context)
        # (B, M, 2, heads, head_dim) -> (2, B, heads, M, head_dim)
        kv = ops.reshape(kv, (-1, keys, 2, self.num_heads, self._head_dim))
        kv = ops.transpose(kv, (2, 0, 3, 1, 4))
        x, scores = self._attend(query, kv[0], kv[1], training)
        if return_attention_scores:
            return x, scores
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1, input_shape[-1])

    def compute_output_spec(
        self, inputs, training=None, return_attention_scores=False
    ):
        shape = self.compute_output_shape(inputs.shape)
        outputs = keras.KerasTensor(shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return outputs
        scores = keras.KerasTensor(
            (inputs.shape[0], self.num_heads, 1, self._key_count(inputs.shape)),
            dtype=self.compute_dtype,
        )
        return outputs, scores

    def get_config(self):
        config = super().get_config()
        config["key_tokens"] = self.key_tokens
        return config


@keras.saving.register_keras_serializable(package="kvision")
class ClassAttentionBlock(keras.layers.Layer):
    """CaiT's class-attention stage block: only the class token is updated.

    Reference: Touvron et al., *Going deeper with Image Transformers* (CaiT,
    arXiv:2103.17239), Section 3 (``LayerScale_Block_CA`` in the official
    code). With ``u`` the input tokens (class token first) and ``c`` the
    class token::

        c = c + DropPath(gamma_1 * ClassAttention(LN_1(u)))
        c = c + DropPath(gamma_2 * MLP(LN_2(c)))

    and the output is ``[c, patch tokens]``: the patch tokens pass through
    unchanged (the same tensor values). ``gamma`` is a per-channel
    :class:`LayerScale`.

    With ``normalize_patches=False`` only the class token goes through
    ``LN_1``; the keys and values see the raw patch tokens, as in the
    SPT/LSA repository's CaiT (its pre-norm wraps the query input only).

    Args:
        num_heads: int, number of attention heads.
        mlp_dim: int, hidden width of the MLP (official CaiT: 4x the width;
            the SPT/LSA repository: 2x).
        head_dim: int or ``None`` for ``embed_dim // num_heads``.
        qkv_bias: bool, bias on the query, key and value projections.
        key_tokens: ``"all"`` or ``"patches"`` (see :class:`ClassAttention`).
        normalize_patches: bool, whether the patch tokens are layer
            normalised before the key/value projection (official: True).
        talking_heads: ``None``, ``"linear"`` or ``"matrix"``.
        attention: ``"mhsa"`` or ``"lsa"`` (learned per-head temperature).
        dropout: float in [0, 1), dropout in the MLP and after the attention
            projection.
        attention_dropout: float in [0, 1), dropout on attention weights.
        drop_path_rate: float in [0, 1), stochastic depth rate (official:
            0 in the class-attention stage).
        layer_scale_init_value: float, or ``None`` for no LayerScale.
        norm_epsilon: float, epsilon of both layer normalisations.
        activation: the MLP's activation (default ``"gelu"``).
        seed: optional int seed for dropout and stochastic depth.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: tokens ``(B, 1 + N, embed_dim)``, the class token first.
        training: bool.
        return_attention_scores: bool; if True returns ``(outputs, scores)``
            with ``scores`` of shape ``(B, num_heads, 1, M)`` (see
            :class:`ClassAttention`).

    Output shape: ``(B, 1 + N, embed_dim)``.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from kvision.layers import ClassAttentionBlock
    >>> block = ClassAttentionBlock(num_heads=4, mlp_dim=768)
    >>> x = np.random.default_rng(0).normal(size=(2, 65, 192))
    >>> y, scores = block(x.astype("float32"), return_attention_scores=True)
    >>> tuple(y.shape), tuple(scores.shape)
    ((2, 65, 192), (2, 4, 1, 65))
    >>> bool(np.allclose(keras.ops.convert_to_numpy(y)[:, 1:], x[:, 1:]))
    True
    """

    def __init__(
        self,
        num_heads,
        mlp_dim,
        head_dim=None,
        qkv_bias=True,
        key_tokens="all",
        normalize_patches=True,
        talking_heads=None,
        attention="mhsa",
        dropout=0.0,
        attention_dropout=0.0,
        drop_path_rate=0.0,
        layer_scale_init_value=1e-5,
        norm_epsilon=1e-6,
        activation="gelu",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # The attention validates its own arguments when built; these are
        # checked here so that a wrong block fails at construction.
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.mlp_dim = _checks.positive_int("mlp_dim", mlp_dim)
        self.head_dim = _checks.optional_positive_int("head_dim", head_dim)
        self.qkv_bias = bool(qkv_bias)
        self.key_tokens = _checks.one_of(
            "key_tokens", key_tokens, {"all", "patches"}
        )
        self.normalize_patches = bool(normalize_patches)
        if talking_heads is not None:
            _checks.one_of("talking_heads", talking_heads, set(TALKING_HEADS))
        self.talking_heads = talking_heads
        self.attention = _checks.one_of("attention", attention, {"mhsa", "lsa"})
        self.dropout = _checks.rate("dropout", dropout)
        self.attention_dropout = _checks.rate(
            "attention_dropout", attention_dropout
        )
        self.drop_path_rate = _checks.rate("drop_path_rate", drop_path_rate)
        if layer_scale_init_value is not None:
            layer_scale_init_value = _checks.non_negative_float(
                "layer_scale_init_value", layer_scale_init_value
            )
        self.layer_scale_init_value = layer_scale_init_value
        self.norm_epsilon = _checks.non_negative_float(
            "norm_epsilon", norm_epsilon
        )
        self.activation = activations.get(activation)
        self.seed = seed

    def build(self, input_shape):
        _checks.input_rank(self, input_shape, (3,), "(batch, tokens, channels)")
        policy = self.dtype_policy
        self.norm1 = keras.layers.LayerNormalization(
            epsilon=self.norm_epsilon, dtype=policy, name="norm1"
        )
        self.attn = ClassAttention(
            self.num_heads,
            head_dim=self.head_dim,
            qkv_bias=self.qkv_bias,
            key_tokens=self.key_tokens,
            talking_heads=self.talking_heads,
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
        build_residual_parts(self, self.mlp_dim, self.layer_scale_init_value)
        class_shape = (input_shape[0], 1, input_shape[-1])
        self.norm1.build(input_shape)
        self.attn.build(input_shape)
        for layer in (self.norm2, self.mlp, *self.scales):
            layer.build(class_shape)

    def _residual(self, x, branch, index, training):
        return add_residual(self, x, branch, index, training)

    def call(self, inputs, training=None, return_attention_scores=False):
        class_token, patches = inputs[:, :1], inputs[:, 1:]
        if self.normalize_patches:
            normed = self.norm1(inputs)
        else:
            normed = ops.concatenate([self.norm1(class_token), patches], 1)
        y, scores = attend(self.attn, normed, training, return_attention_scores)
        x = self._residual(class_token, y, 0, training)
        y = self.mlp(self.norm2(x), training=training)
        x = self._residual(x, y, 1, training)
        outputs = ops.concatenate([x, patches], axis=1)
        if return_attention_scores:
            return outputs, scores
        return outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(
        self, inputs, training=None, return_attention_scores=False
    ):
        outputs = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return outputs
        tokens = inputs.shape[1]
        if tokens is not None and self.key_tokens == "patches":
            tokens -= 1
        scores = keras.KerasTensor(
            (inputs.shape[0], self.num_heads, 1, tokens),
            dtype=self.compute_dtype,
        )
        return outputs, scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim,
                "head_dim": self.head_dim,
                "qkv_bias": self.qkv_bias,
                "key_tokens": self.key_tokens,
                "normalize_patches": self.normalize_patches,
                "talking_heads": self.talking_heads,
                "attention": self.attention,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "drop_path_rate": self.drop_path_rate,
                "layer_scale_init_value": self.layer_scale_init_value,
                "norm_epsilon": self.norm_epsilon,
                "activation": activations.serialize(self.activation),
                "seed": self.seed,
            }
        )
        return config
