"""DaViT's layers against NumPy references written from the official code
(dingmyu/davit, ``timm/models/davit.py``): ChannelAttention, ConvPosEnc,
SpatialBlock (with its padding) and ChannelBlock."""

import keras
import numpy as np
import pytest

from kvision.layers import ChannelGroupAttention
from kvision.layers import ConvPositionEncoding
from kvision.layers import DaViTChannelBlock
from kvision.layers import DaViTSpatialBlock
from tests import numpy_reference as ref
from tests.helpers import to_numpy
from tests.layers.parity import built
from tests.layers.parity import dense_params
from tests.layers.parity import mlp_params
from tests.layers.parity import norm_params
from tests.layers.parity import random_array

RTOL = 1e-4
ATOL = 1e-5


# --------------------------------------------------------------------------
# References


def official_channel_attention(x, qkv, proj, groups):
    """The official ``ChannelAttention.forward`` on tokens ``(B, N, C)``.

    ``qkv(x).reshape(B, N, 3, G, C // G).permute(2, 0, 3, 1, 4)``; then
    ``k = k * scale``, ``A = softmax(kᵀ @ v)`` over the last axis and
    ``x = (A @ qᵀ)ᵀ``; the groups are merged back and projected.
    Returns ``(outputs, A)``.
    """
    batch, tokens, channels = x.shape
    size = channels // groups
    y = ref.dense(x, *qkv).reshape(batch, tokens, 3, groups, size)
    q, k, v = y.transpose(2, 0, 3, 1, 4)
    k = k * size**-0.5
    attention = ref.softmax(np.swapaxes(k, -1, -2) @ v, axis=-1)
    out = np.swapaxes(attention @ np.swapaxes(q, -1, -2), -1, -2)
    out = out.transpose(0, 2, 1, 3).reshape(batch, tokens, channels)
    return ref.dense(out, *proj), attention


def textbook_channel_attention(x, qkv, proj, groups):
    """``softmax(qᵀk / √Cg)`` applied to ``v``: the order the official code
    does *not* use (a role swap must not pass the parity test)."""
    batch, tokens, channels = x.shape
    size = channels // groups
    y = ref.dense(x, *qkv).reshape(batch, tokens, 3, groups, size)
    q, k, v = y.transpose(2, 0, 3, 1, 4)
    attention = ref.softmax(np.swapaxes(q, -1, -2) @ k * size**-0.5, axis=-1)
    out = np.swapaxes(attention @ np.swapaxes(v, -1, -2), -1, -2)
    out = out.transpose(0, 2, 1, 3).reshape(batch, tokens, channels)
    return ref.dense(out, *proj)


def official_conv_position_encoding(x, cpe):
    """``ConvPosEnc``: ``x + depthwise_conv3x3(x)`` (padding 1, bias)."""
    kernel = to_numpy(cpe.depthwise.kernel)
    bias = to_numpy(cpe.depthwise.bias)
    return ref.as64(x) + ref.depthwise_conv2d_same(x, kernel, bias)


def official_window_attention(x, attention, window):
    """``SpatialBlock``'s attention part on a normalised map ``(B, H, W, C)``.

    Pads bottom and right to multiples of the window (zeros, after the
    LayerNorm), cuts windows batch-major, runs plain multi-head attention
    in each (``q * head_dim**-0.5``, no bias table, no mask), puts the
    windows back and crops. Returns ``(outputs, probabilities)`` with the
    probabilities as ``(B, windows, heads, w², w²)``.
    """
    batch, height, width, channels = x.shape
    pad_b, pad_r = (-height) % window, (-width) % window
    x = np.pad(x, ((0, 0), (0, pad_b), (0, pad_r), (0, 0)))
    hp, wp = height + pad_b, width + pad_r
    windows = x.reshape(batch, hp // window, window, wp // window, window, -1)
    windows = windows.transpose(0, 1, 3, 2, 4, 5).reshape(
        -1, window**2, channels
    )
    heads = attention.num_heads
    out, probabilities = ref.self_attention(
        windows,
        *dense_params(attention.qkv),
        *dense_params(attention.projection),
        heads,
        (channels // heads) ** -0.5,
    )
    out = out.reshape(batch, hp // window, wp // window, window, window, -1)
    out = out.transpose(0, 1, 3, 2, 4, 5).reshape(batch, hp, wp, -1)
    count = (hp // window) * (wp // window)
    probabilities = probabilities.reshape(
        batch, count, heads, *([window**2] * 2)
    )
    return out[:, :height, :width], probabilities


def official_block(x, block, attention):
    """``x = cpe0(x); x = x + attn(LN(x)); x = cpe1(x); x = x + MLP(LN(x))``."""
    x = official_conv_position_encoding(x, block.cpe1)
    y, scores = attention(ref.layer_norm(x, *norm_params(block.norm1)))
    x = x + y
    x = official_conv_position_encoding(x, block.cpe2)
    y = ref.mlp(
        ref.layer_norm(x, *norm_params(block.norm2)), *mlp_params(block.mlp)
    )
    return x + y, scores


def channel_params(layer):
    return dense_params(layer.qkv), dense_params(layer.projection)


# --------------------------------------------------------------------------
# ChannelGroupAttention


@pytest.mark.parametrize(
    "shape, groups, qkv_bias",
    [
        ((2, 6, 8), 1, True),
        ((2, 6, 8), 2, False),
        ((2, 9, 12), 3, True),
        # Maps: every position is a token.
        ((2, 3, 4, 8), 4, True),
    ],
)
def test_channel_group_attention_matches_official_code(shape, groups, qkv_bias):
    x = random_array(shape)
    layer = built(
        ChannelGroupAttention(num_groups=groups, qkv_bias=qkv_bias), shape
    )
    assert (layer.qkv.bias is not None) == qkv_bias
    outputs, scores = layer(x, return_attention_scores=True)
    tokens = x.reshape(shape[0], -1, shape[-1])
    want, want_scores = official_channel_attention(
        tokens, *channel_params(layer), groups
    )
    size = shape[-1] // groups
    assert tuple(scores.shape) == (shape[0], groups, size, size)
    np.testing.assert_allclose(to_numpy(scores), want_scores, RTOL, ATOL)
    np.testing.assert_allclose(
        to_numpy(outputs), want.reshape(shape), RTOL, ATOL
    )


def test_channel_group_attention_keeps_the_official_roles():
    # The reference distinguishes the official order from the textbook one.
    x = random_array((2, 6, 8))
    layer = built(ChannelGroupAttention(num_groups=2), x.shape)
    outputs = to_numpy(layer(x))
    textbook = textbook_channel_attention(x, *channel_params(layer), 2)
    assert not np.allclose(outputs, textbook, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("tokens", [1, 4, 49, 196])
def test_channel_attention_size_does_not_grow_with_tokens(tokens):
    # The attention is (groups, Cg, Cg) whatever N: cost linear in N.
    x = random_array((2, tokens, 12))
    layer = ChannelGroupAttention(num_groups=3)
    outputs, scores = layer(x, return_attention_scores=True)
    assert tuple(outputs.shape) == (2, tokens, 12)
    assert tuple(scores.shape) == (2, 3, 4, 4)
    np.testing.assert_allclose(to_numpy(scores).sum(-1), 1.0, atol=1e-5)


def test_channel_attention_takes_any_number_of_tokens_symbolically():
    layer = ChannelGroupAttention(num_groups=2)
    outputs, scores = layer(
        keras.Input((None, 8)), return_attention_scores=True
    )
    assert tuple(outputs.shape) == (None, None, 8)
    assert tuple(scores.shape) == (None, 2, 4, 4)
    model = keras.Model(layer.input, [outputs, scores])
    for tokens in (3, 10):
        _, got = model(random_array((1, tokens, 8)))
        assert tuple(got.shape) == (1, 2, 4, 4)


def test_channel_attention_mixes_information_from_every_position():
    # Changing one position changes the output at every other position
    # (global context), unlike attention inside a window.
    x = random_array((1, 4, 4, 8))
    layer = built(ChannelGroupAttention(num_groups=2), x.shape)
    changed = x.copy()
    changed[0, 3, 3] += 5.0
    delta = np.abs(to_numpy(layer(changed)) - to_numpy(layer(x)))
    assert (delta.max(axis=-1)[0] > 1e-4).all()


# --------------------------------------------------------------------------
# ConvPositionEncoding


def test_position_encoding_with_zero_kernel_and_bias_is_the_identity():
    x = random_array((2, 5, 6, 4))
    layer = ConvPositionEncoding()
    layer.build(x.shape)
    layer.depthwise.kernel.assign(np.zeros(layer.depthwise.kernel.shape))
    layer.depthwise.bias.assign(np.zeros(layer.depthwise.bias.shape))
    np.testing.assert_array_equal(to_numpy(layer(x)), x)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_position_encoding_matches_official_code(kernel_size):
    x = random_array((2, 5, 6, 4))
    layer = built(ConvPositionEncoding(kernel_size), x.shape)
    assert tuple(layer.depthwise.kernel.shape) == (kernel_size,) * 2 + (4, 1)
    want = official_conv_position_encoding(x, layer)
    np.testing.assert_allclose(to_numpy(layer(x)), want, RTOL, ATOL)


# --------------------------------------------------------------------------
# Blocks


@pytest.mark.parametrize(
    "shape, window",
    [
        ((2, 4, 4, 8), 2),  # windows tile the map
        ((2, 5, 7, 8), 3),  # padded to 6x9: bottom row, right two columns
        ((1, 2, 3, 8), 4),  # smaller than one window
    ],
)
def test_spatial_block_pads_and_crops_like_the_official_code(shape, window):
    x = random_array(shape)
    block = built(DaViTSpatialBlock(num_heads=2, window_size=window), shape)
    outputs, scores = block(x, return_attention_scores=True)
    want, want_scores = official_block(
        x,
        block,
        lambda y: official_window_attention(y, block.attn, window),
    )
    windows = -(-shape[1] // window) * -(-shape[2] // window)
    assert tuple(outputs.shape) == shape
    assert tuple(scores.shape) == (shape[0], windows, 2, window**2, window**2)
    np.testing.assert_allclose(to_numpy(scores), want_scores, RTOL, ATOL)
    np.testing.assert_allclose(to_numpy(outputs), want, RTOL, ATOL)


def test_spatial_block_attention_has_no_bias_table_and_no_shift():
    block = DaViTSpatialBlock(num_heads=2, window_size=7)
    block.build((None, 14, 14, 16))
    assert block.attn.shift_size == 0
    assert not block.attn.relative_position_bias
    assert block.attn.pad_to_window
    assert not any("relative" in w.path for w in block.weights)


def test_channel_block_matches_official_code():
    shape = (2, 3, 5, 8)
    x = random_array(shape)
    block = built(DaViTChannelBlock(num_groups=2, mlp_ratio=2), shape)
    outputs, scores = block(x, return_attention_scores=True)

    def attention(y):
        out, a = official_channel_attention(
            y.reshape(2, -1, 8), *channel_params(block.attn), 2
        )
        return out.reshape(shape), a

    want, want_scores = official_block(x, block, attention)
    assert block.mlp.hidden_dim == 16
    np.testing.assert_allclose(to_numpy(scores), want_scores, RTOL, ATOL)
    np.testing.assert_allclose(to_numpy(outputs), want, RTOL, ATOL)


def test_blocks_drop_paths_only_while_training():
    x = random_array((2, 4, 4, 8))
    for block in (
        DaViTSpatialBlock(2, window_size=2, drop_path_rate=0.5, seed=1),
        DaViTChannelBlock(2, drop_path_rate=0.5, seed=1),
    ):
        first = to_numpy(block(x, training=False))
        np.testing.assert_array_equal(first, to_numpy(block(x)))
        assert block.drop_path.rate == 0.5
