"""TransformerBlock against a NumPy pre-norm transformer block."""

import numpy as np
import pytest

from kvision.layers import TransformerBlock
from tests import numpy_reference as ref
from tests.helpers import to_numpy
from tests.layers.parity import dense_params
from tests.layers.parity import norm_params

RTOL = 1e-4
ATOL = 1e-5


def transformer_reference(block, x):
    """``x + s1 * attn(LN1(x))``, then ``x + s2 * MLP(LN2(x))``."""
    attn = block.attn
    if block.attention == "lsa":
        scale, mask = to_numpy(attn.temperature), True
    else:
        head_dim = attn.qkv.kernel.shape[1] // (3 * attn.num_heads)
        scale, mask = head_dim**-0.5, False
    y, scores = ref.self_attention(
        ref.layer_norm(x, *norm_params(block.norm1)),
        *dense_params(attn.qkv),
        *dense_params(attn.projection),
        attn.num_heads,
        scale,
        mask_diagonal=mask,
    )
    gammas = [to_numpy(s.gamma) for s in block.scales] or [1.0, 1.0]
    x = ref.as64(x) + gammas[0] * y
    y = ref.mlp(
        ref.layer_norm(x, *norm_params(block.norm2)),
        *dense_params(block.mlp.fc1),
        *dense_params(block.mlp.fc2),
    )
    return x + gammas[1] * y, scores


@pytest.mark.parametrize("layer_scale_init_value", [None, 1e-2])
@pytest.mark.parametrize("attention", ["mhsa", "lsa"])
def test_transformer_block_inference_matches_reference(
    attention, layer_scale_init_value
):
    x = np.random.default_rng(0).normal(size=(2, 6, 8)).astype("float32")
    # Dropout and stochastic depth are on, to check inference ignores them.
    block = TransformerBlock(
        num_heads=2,
        mlp_dim=12,
        attention=attention,
        layer_scale_init_value=layer_scale_init_value,
        dropout=0.3,
        attention_dropout=0.3,
        drop_path_rate=0.3,
        seed=0,
    )
    block.build(x.shape)
    ref.randomize_weights(block, seed=1)
    assert len(block.scales) == (0 if layer_scale_init_value is None else 2)

    outputs, scores = block(x, training=False, return_attention_scores=True)
    want, want_scores = transformer_reference(block, x)
    np.testing.assert_allclose(
        to_numpy(scores), want_scores, rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(to_numpy(outputs), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "attention, has_bias", [("mhsa", True), ("lsa", False)]
)
def test_transformer_block_qkv_bias_follows_attention_kind(attention, has_bias):
    block = TransformerBlock(num_heads=2, mlp_dim=12, attention=attention)
    block.build((None, 6, 8))
    assert (block.attn.qkv.bias is not None) == has_bias
    assert tuple(block.mlp.fc1.kernel.shape) == (8, 12)


def test_transformer_block_layer_scale_starts_at_init_value():
    block = TransformerBlock(
        num_heads=2, mlp_dim=12, layer_scale_init_value=0.1
    )
    block.build((None, 6, 8))
    for scale in block.scales:
        np.testing.assert_allclose(to_numpy(scale.gamma), np.full(8, 0.1))
