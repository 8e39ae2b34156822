"""The pre-norm transformer encoder block."""

import keras

from kvision import _checks
from kvision import _seeds
from kvision import activations
from kvision.layers.attention import LocalitySelfAttention
from kvision.layers.attention import MultiHeadSelfAttention
from kvision.layers.attention import attend
from kvision.layers.attention import attention_output_spec
from kvision.layers.cait import TalkingHeadsAttention
from kvision.layers.residual import add_residual
from kvision.layers.residual import build_residual_parts

ATTENTIONS = {
    "mhsa": MultiHeadSelfAttention,
    "lsa": LocalitySelfAttention,
    "talking_heads": TalkingHeadsAttention,
}
# Attention arguments the block sets from its own.
_BLOCK_ATTENTION_ARGUMENTS = {
    "num_heads",
    "head_dim",
    "attention_dropout",
    "dropout",
    "seed",
    "dtype",
    "name",
}


@keras.saving.register_keras_serializable(package="kvision")
class TransformerBlock(keras.layers.Layer):
    """Pre-norm transformer block: ``x + attn(LN(x))``, then ``x + MLP(LN(x))``.

    Reference: ViT (arXiv:2010.11929); with ``attention="lsa"`` the block of
    the small-dataset ViT (SL-ViT, arXiv:2112.13492); optional LayerScale as
    in CaiT (arXiv:2103.17239); with ``attention="talking_heads"`` CaiT's
    self-attention block. Each residual branch goes through an optional
    :class:`LayerScale` and a shared :class:`DropPath` (stochastic depth), as
    in the official code.

    This is the MetaFormer skeleton (arXiv:2111.11418) on token sequences,
    with attention as the token mixer; :class:`MetaFormerBlock` runs it on
    feature maps with any mixer (``token_mixer="attention"``).

    Args:
        num_heads: int, number of attention heads.
        mlp_dim: int, hidden width of the MLP.
        attention: ``"mhsa"`` (:class:`MultiHeadSelfAttention`), ``"lsa"``
            (:class:`LocalitySelfAttention`) or ``"talking_heads"``
            (:class:`TalkingHeadsAttention`).
        attention_kwargs: dict or ``None``, further keyword arguments of the
            attention layer, e.g. ``{"attention": "lsa", "talking_heads":
            "matrix"}`` for talking heads.
        attention_input_residual: bool; if True the attention branch also
            carries its own (normalised) input,
            ``x + DropPath(attn(LN(x)) + LN(x))``. Off in every paper; on in
            the SPT/LSA repository's T2T blocks, whose attention adds its
            input to its output (see :class:`~kvision.models.T2TViT`).
        head_dim: int or ``None`` for ``embed_dim // num_heads``.
        qkv_bias: bool, or ``None`` for the attention class' default (True
            for ``"mhsa"``, False for ``"lsa"``).
        dropout: float in [0, 1), dropout in the MLP and after the attention
            projection.
        attention_dropout: float in [0, 1), dropout on attention weights.
        drop_path_rate: float in [0, 1), stochastic depth rate.
        layer_scale_init_value: float, or ``None`` (default) for no
            LayerScale.
        norm_epsilon: float, epsilon of both layer normalisations, or
            ``None`` (default) for the official code's: 1e-5 (PyTorch's
            ``nn.LayerNorm``) with ``attention="lsa"`` as in the SL-ViT
            code, 1e-6 otherwise as in ViT-B/16 and CaiT.
        activation: the MLP's activation (default ``"gelu"``).
        seed: optional int seed for dropout and stochastic depth.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: tokens ``(B, N, embed_dim)``.
        training: bool.
        return_attention_scores: bool; if True returns ``(outputs, scores)``
            with ``scores`` of shape ``(B, num_heads, N, N)``.

    Output shape: ``(B, N, embed_dim)``.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import TransformerBlock
    >>> block = TransformerBlock(num_heads=12, mlp_dim=384, attention="lsa")
    >>> y, scores = block(
    ...     np.zeros((2, 65, 192), "float32"), return_attention_scores=True
    ... )
    >>> tuple(y.shape), tuple(scores.shape)
    ((2, 65, 192), (2, 12, 65, 65))
    """

    def __init__(
        self,
        num_heads,
        mlp_dim,
        attention="mhsa",
        attention_kwargs=None,
        attention_input_residual=False,
        head_dim=None,
        qkv_bias=None,
        dropout=0.0,
        attention_dropout=0.0,
        drop_path_rate=0.0,
        layer_scale_init_value=None,
        norm_epsilon=None,
        activation="gelu",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.mlp_dim = _checks.positive_int("mlp_dim", mlp_dim)
        self.attention = _checks.one_of("attention", attention, set(ATTENTIONS))
        if attention_kwargs is not None and not isinstance(
            attention_kwargs, dict
        ):
            raise ValueError(
                "`attention_kwargs` must be a dict or None. "
                f"Received: attention_kwargs={attention_kwargs!r}"
            )
        self.attention_kwargs = (
            None if attention_kwargs is None else dict(attention_kwargs)
        )
        owned = set(self.attention_kwargs or ()) & _BLOCK_ATTENTION_ARGUMENTS
        if owned:
            raise ValueError(
                f"`attention_kwargs` sets {sorted(owned)}, which the block "
                "passes itself: use the block's own arguments. "
                f"Received: attention_kwargs={attention_kwargs!r}"
            )
        self.attention_input_residual = bool(attention_input_residual)
        self.head_dim = _checks.optional_positive_int("head_dim", head_dim)
        self.qkv_bias = None if qkv_bias is None else bool(qkv_bias)
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
        if norm_epsilon is None:
            norm_epsilon = 1e-5 if attention == "lsa" else 1e-6
        self.norm_epsilon = _checks.non_negative_float(
            "norm_epsilon", norm_epsilon
        )
        self.activation = activations.get(activation)
        self.seed = seed

    def build(self, input_shape):
        _checks.input_rank(self, input_shape, (3,), "(batch, tokens, channels)")
        policy = self.dtype_policy
        attention_kwargs = dict(self.attention_kwargs or {})
        if self.qkv_bias is not None:
            attention_kwargs["qkv_bias"] = self.qkv_bias
        self.norm1 = keras.layers.LayerNormalization(
            epsilon=self.norm_epsilon, dtype=policy, name="norm1"
        )
        self.attn = ATTENTIONS[self.attention](
            self.num_heads,
            head_dim=self.head_dim,
            attention_dropout=self.attention_dropout,
            dropout=self.dropout,
            seed=_seeds.child_seed(self.seed, "attention"),
            dtype=policy,
            name="attention",
            **attention_kwargs,
        )
        self.norm2 = keras.layers.LayerNormalization(
            epsilon=self.norm_epsilon, dtype=policy, name="norm2"
        )
        build_residual_parts(self, self.mlp_dim, self.layer_scale_init_value)
        for layer in (
            self.norm1,
            self.attn,
            self.norm2,
            self.mlp,
            *self.scales,
        ):
            layer.build(input_shape)

    def _residual(self, x, branch, index, training):
        return add_residual(self, x, branch, index, training)

    def call(self, inputs, training=None, return_attention_scores=False):
        normed = self.norm1(inputs)
        y, scores = attend(self.attn, normed, training, return_attention_scores)
        if self.attention_input_residual:
            y = y + normed
        x = self._residual(inputs, y, 0, training)
        y = self.mlp(self.norm2(x), training=training)
        x = self._residual(x, y, 1, training)
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
                "mlp_dim": self.mlp_dim,
                "attention": self.attention,
                "attention_kwargs": self.attention_kwargs,
                "attention_input_residual": self.attention_input_residual,
                "head_dim": self.head_dim,
                "qkv_bias": self.qkv_bias,
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
