"""CaiT's talking heads and class attention, and T2T's soft split and
token transformer, against NumPy references written from the official
PyTorch code (facebookresearch/deit ``cait_models.py``, the SPT/LSA
repository's ``models/cait.py`` and ``models/t2t.py``)."""

import keras
import numpy as np
import pytest

from kvision import ops as kv_ops
from kvision.layers import ClassAttention
from kvision.layers import ClassAttentionBlock
from kvision.layers import TalkingHeadsAttention
from kvision.layers import TokensToToken
from kvision.layers import TransformerBlock
from tests import numpy_reference as ref
from tests.helpers import to_numpy
from tests.layers.parity import built
from tests.layers.parity import dense_params
from tests.layers.parity import norm_params
from tests.layers.parity import random_array

RTOL = 1e-4
ATOL = 1e-5


# --------------------------------------------------------------------------
# NumPy references


def heads_last_linear(scores, kernel, bias):
    """The official ``proj_l``/``proj_w``: ``nn.Linear`` over the head axis
    of ``attn.permute(0, 2, 3, 1)``, permuted back."""
    x = ref.as64(scores).transpose(0, 2, 3, 1) @ ref.as64(kernel)
    if bias is not None:
        x = x + bias
    return x.transpose(0, 3, 1, 2)


def split_heads(t, heads):
    batch, tokens, width = t.shape
    return t.reshape(batch, tokens, heads, width // heads).transpose(0, 2, 1, 3)


def merge_heads(t):
    batch, heads, tokens, dim = t.shape
    return t.transpose(0, 2, 1, 3).reshape(batch, tokens, heads * dim)


def scaled_logits(q, k, scale):
    scale = ref.as64(scale)
    if scale.ndim == 1:
        scale = scale[None, :, None, None]
    return np.einsum("bhid,bhjd->bhij", q, k) * scale


def talking_heads_reference(layer, x, scale, diagonal):
    """``Attention_talking_head.forward`` with the SPT/LSA repository's
    diagonal treatments; returns ``(outputs, mixed weights)``."""
    heads = layer.num_heads
    qkv = ref.dense(x, *dense_params(layer.qkv))
    q, k, v = (split_heads(t, heads) for t in np.split(qkv, 3, axis=-1))
    logits = scaled_logits(q, k, scale)
    n = logits.shape[-1]
    if diagonal == "official_spt":
        logits[:, :, np.arange(n), np.arange(n)] = -1e-9
    pre = to_numpy(layer.pre_mix_kernel), _maybe(layer.pre_mix_bias)
    post = to_numpy(layer.post_mix_kernel), _maybe(layer.post_mix_bias)
    logits = heads_last_linear(logits, *pre)
    if diagonal == "mask":
        logits[:, :, np.arange(n), np.arange(n)] = -np.inf
    weights = heads_last_linear(ref.softmax(logits), *post)
    out = merge_heads(weights @ v)
    return ref.dense(out, *dense_params(layer.projection)), weights


def class_attention_reference(layer, u, scale):
    """``Class_Attention.forward`` (official) or the SPT/LSA repository's
    ``Attention(x=cls, context=patches)``, with optional talking heads."""
    heads = layer.num_heads
    context = u if layer.key_tokens == "all" else u[:, 1:]
    q = split_heads(ref.dense(u[:, :1], *dense_params(layer.query)), heads)
    kv = ref.dense(context, *dense_params(layer.key_value))
    k, v = (split_heads(t, heads) for t in np.split(kv, 2, axis=-1))
    logits = scaled_logits(q, k, scale)
    if layer.talking_heads is not None:
        pre = to_numpy(layer.pre_mix_kernel), _maybe(layer.pre_mix_bias)
        logits = heads_last_linear(logits, *pre)
    weights = ref.softmax(logits)
    if layer.talking_heads is not None:
        post = to_numpy(layer.post_mix_kernel), _maybe(layer.post_mix_bias)
        weights = heads_last_linear(weights, *post)
    out = merge_heads(weights @ v)
    return ref.dense(out, *dense_params(layer.projection)), weights


def _maybe(variable):
    return None if variable is None else to_numpy(variable)


def class_scale(attn):
    if attn.temperature is not None:
        return to_numpy(attn.temperature)
    return (attn.query.kernel.shape[1] // attn.num_heads) ** -0.5


def class_block_reference(block, x):
    """``LayerScale_Block_CA.forward``: only the class token changes."""
    cls, patches = ref.as64(x[:, :1]), ref.as64(x[:, 1:])
    norm1 = norm_params(block.norm1)
    if block.normalize_patches:
        u = ref.layer_norm(x, *norm1)
    else:
        u = np.concatenate([ref.layer_norm(cls, *norm1), patches], axis=1)
    y, weights = class_attention_reference(
        block.attn, u, class_scale(block.attn)
    )
    gammas = [to_numpy(s.gamma) for s in block.scales] or [1.0, 1.0]
    cls = cls + gammas[0] * y
    y = ref.mlp(
        ref.layer_norm(cls, *norm_params(block.norm2)),
        *dense_params(block.mlp.fc1),
        *dense_params(block.mlp.fc2),
    )
    cls = cls + gammas[1] * y
    return np.concatenate([cls, patches], axis=1), weights


def unfold_reference(images, kernel_size, strides, padding):
    """``nn.Unfold`` window by window, each flattened (row, col, channel)."""
    x = np.pad(
        ref.as64(images),
        ((0, 0), (padding, padding), (padding, padding), (0, 0)),
    )
    batch, height, width, channels = x.shape
    k, s = kernel_size, strides
    out_h, out_w = (height - k) // s + 1, (width - k) // s + 1
    out = np.zeros((batch, out_h * out_w, k * k * channels))
    for i in range(out_h):
        for j in range(out_w):
            for ki in range(k):
                for kj in range(k):
                    start = (ki * k + kj) * channels
                    out[:, i * out_w + j, start : start + channels] = x[
                        :, i * s + ki, j * s + kj, :
                    ]
    return out, (out_h, out_w)


def token_transformer_reference(block, x):
    """The official T2T ``Token_transformer`` with one or more heads: the
    values carry the attention residual."""
    heads = block.num_heads
    in_dim = x.shape[-1]
    qkv = ref.dense(
        ref.layer_norm(x, *norm_params(block.norm1)), *dense_params(block.qkv)
    )
    q, k, v = (split_heads(t, heads) for t in np.split(qkv, 3, axis=-1))
    if block.temperature is not None:
        scale = to_numpy(block.temperature)
    else:
        scale = (in_dim // heads) ** -0.5
    logits = scaled_logits(q, k, scale)
    if block.attention == "lsa":
        n = logits.shape[-1]
        logits[:, :, np.arange(n), np.arange(n)] = -np.inf
    out = merge_heads(ref.softmax(logits) @ v)
    x = ref.dense(out, *dense_params(block.projection)) + merge_heads(v)
    y = ref.mlp(
        ref.layer_norm(x, *norm_params(block.norm2)),
        *dense_params(block.mlp.fc1),
        *dense_params(block.mlp.fc2),
    )
    return x + y


def tokens_to_token_reference(layer, images):
    k, s, p = layer.kernel_size, layer.strides, layer.padding
    if layer.shift_size:
        images = ref.shift_patches(images, layer.shift_size)
    x, grid = unfold_reference(images, k, s, p)
    for block in layer.token_transformers:
        x = token_transformer_reference(block, x)
        x = x.reshape(x.shape[0], *grid, -1)
        x, grid = unfold_reference(x, k, s, p)
    if layer.norm is not None:
        x = ref.layer_norm(x, *norm_params(layer.norm))
    return ref.dense(x, *dense_params(layer.projection))


def sinusoid_reference(length, dim):
    """``get_sinusoid_encoding`` of the T2T-ViT code."""
    table = np.array(
        [
            [pos / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)]
            for pos in range(length)
        ]
    )
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return table


# --------------------------------------------------------------------------
# TalkingHeadsAttention


@pytest.mark.parametrize(
    "kwargs, diagonal",
    [
        (dict(), "none"),
        (dict(talking_heads="matrix", head_dim=5, qkv_bias=False), "none"),
        (dict(attention="lsa", diagonal_mask="official_spt"), "official_spt"),
        (dict(attention="lsa", talking_heads="matrix"), "mask"),
    ],
    ids=["official", "spt_matrix", "lsa_official_spt", "lsa_mask"],
)
def test_talking_heads_matches_reference(kwargs, diagonal):
    x = random_array((2, 6, 8))
    layer = built(TalkingHeadsAttention(num_heads=4, **kwargs), x.shape)
    if layer.temperature is not None:
        scale = to_numpy(layer.temperature)
    else:
        scale = layer._head_dim**-0.5
    got, got_weights = layer(x, return_attention_scores=True)
    want, want_weights = talking_heads_reference(layer, x, scale, diagonal)
    np.testing.assert_allclose(
        to_numpy(got_weights), want_weights, rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(to_numpy(got), want, rtol=RTOL, atol=ATOL)


def test_talking_heads_mixing_is_a_map_over_the_head_axis():
    # With identity mixing and zero bias the layer is plain attention.
    x = random_array((2, 6, 8))
    layer = built(TalkingHeadsAttention(num_heads=2), x.shape)
    for kernel, bias in (
        (layer.pre_mix_kernel, layer.pre_mix_bias),
        (layer.post_mix_kernel, layer.post_mix_bias),
    ):
        kernel.assign(np.eye(2, dtype="float32"))
        bias.assign(np.zeros(2, "float32"))
    got = to_numpy(layer(x))
    want, _ = ref.self_attention(
        x,
        *dense_params(layer.qkv),
        *dense_params(layer.projection),
        2,
        layer._head_dim**-0.5,
    )
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    # Swapping the two heads before the softmax swaps the heads' weights.
    layer.pre_mix_kernel.assign(np.eye(2, dtype="float32")[::-1])
    _, swapped = layer(x, return_attention_scores=True)
    _, plain = ref.self_attention(
        x,
        *dense_params(layer.qkv),
        *dense_params(layer.projection),
        2,
        layer._head_dim**-0.5,
    )
    np.testing.assert_allclose(
        to_numpy(swapped), plain[:, ::-1], rtol=RTOL, atol=ATOL
    )


def test_talking_heads_parameterisations():
    x = random_array((1, 4, 8))
    linear = TalkingHeadsAttention(num_heads=4)
    linear.build(x.shape)
    matrix = TalkingHeadsAttention(num_heads=4, talking_heads="matrix")
    matrix.build(x.shape)
    assert linear.count_params() - matrix.count_params() == 2 * 4
    # Official init: near-zero mixing; the SPT/LSA repository: randn.
    assert np.abs(to_numpy(linear.pre_mix_kernel)).max() < 0.1
    assert np.abs(to_numpy(matrix.pre_mix_kernel)).max() > 0.1


def test_official_spt_diagonal_masks_nothing_but_the_real_mask_does():
    x = random_array((2, 6, 8))
    spt = built(
        TalkingHeadsAttention(
            num_heads=2, attention="lsa", diagonal_mask="official_spt"
        ),
        x.shape,
    )
    masked = TalkingHeadsAttention(num_heads=2, attention="lsa")
    masked.build(x.shape)
    masked.set_weights(spt.get_weights())
    # Without the post-softmax bias, masked weights are exactly zero.
    masked.post_mix_bias.assign(np.zeros(2, "float32"))
    spt.post_mix_bias.assign(np.zeros(2, "float32"))
    _, spt_weights = spt(x, return_attention_scores=True)
    _, mask_weights = masked(x, return_attention_scores=True)
    diagonal = np.arange(6)
    spt_diagonal = to_numpy(spt_weights)[:, :, diagonal, diagonal]
    assert np.abs(spt_diagonal).min() > 1e-6
    mask_diagonal = to_numpy(mask_weights)[:, :, diagonal, diagonal]
    np.testing.assert_array_equal(mask_diagonal, 0.0)


def test_transformer_block_with_talking_heads_reuses_the_layer():
    x = random_array((2, 6, 8))
    block = built(
        TransformerBlock(
            num_heads=2,
            mlp_dim=12,
            attention="talking_heads",
            attention_kwargs=dict(
                talking_heads="matrix",
                attention="lsa",
                diagonal_mask="official_spt",
            ),
            head_dim=3,
            qkv_bias=False,
            layer_scale_init_value=0.1,
        ),
        x.shape,
    )
    assert isinstance(block.attn, TalkingHeadsAttention)
    assert block.attn.qkv.bias is None
    got, got_scores = block(x, return_attention_scores=True)
    y, scores = talking_heads_reference(
        block.attn,
        ref.layer_norm(x, *norm_params(block.norm1)),
        to_numpy(block.attn.temperature),
        "official_spt",
    )
    gammas = [to_numpy(s.gamma) for s in block.scales]
    h = ref.as64(x) + gammas[0] * y
    want = h + gammas[1] * ref.mlp(
        ref.layer_norm(h, *norm_params(block.norm2)),
        *dense_params(block.mlp.fc1),
        *dense_params(block.mlp.fc2),
    )
    np.testing.assert_allclose(
        to_numpy(got_scores), scores, rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(to_numpy(got), want, rtol=RTOL, atol=ATOL)


def test_transformer_block_attention_input_residual():
    # x + (attn(LN(x)) + LN(x)): the SPT/LSA repository's T2T blocks.
    x = random_array((2, 5, 8))
    block = built(
        TransformerBlock(
            num_heads=2,
            mlp_dim=12,
            attention="lsa",
            attention_input_residual=True,
        ),
        x.shape,
    )
    normed = ref.layer_norm(x, *norm_params(block.norm1))
    y, _ = ref.self_attention(
        normed,
        *dense_params(block.attn.qkv),
        *dense_params(block.attn.projection),
        2,
        to_numpy(block.attn.temperature),
        mask_diagonal=True,
    )
    h = ref.as64(x) + y + normed
    want = h + ref.mlp(
        ref.layer_norm(h, *norm_params(block.norm2)),
        *dense_params(block.mlp.fc1),
        *dense_params(block.mlp.fc2),
    )
    np.testing.assert_allclose(to_numpy(block(x)), want, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------
# ClassAttention and ClassAttentionBlock


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(key_tokens="patches", talking_heads="matrix", attention="lsa"),
        dict(talking_heads="linear", head_dim=3, qkv_bias=False),
    ],
    ids=["official", "spt", "linear_heads"],
)
def test_class_attention_matches_reference(kwargs):
    u = random_array((2, 7, 8))
    layer = built(ClassAttention(num_heads=2, **kwargs), u.shape)
    got, got_weights = layer(u, return_attention_scores=True)
    want, want_weights = class_attention_reference(layer, u, class_scale(layer))
    keys = 7 if layer.key_tokens == "all" else 6
    assert tuple(got.shape) == (2, 1, 8)
    assert tuple(got_weights.shape) == (2, 2, 1, keys)
    np.testing.assert_allclose(
        to_numpy(got_weights), want_weights, rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(to_numpy(got), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("key_tokens", ["all", "patches"])
def test_class_token_is_a_value_only_with_all_keys(key_tokens):
    # A zero query gives uniform weights over the keys: the output is the
    # mean value, which includes the class token's only for "all".
    u = random_array((2, 5, 8))
    layer = built(ClassAttention(num_heads=2, key_tokens=key_tokens), u.shape)
    layer.query.kernel.assign(np.zeros(layer.query.kernel.shape, "float32"))
    layer.query.bias.assign(np.zeros(layer.query.bias.shape, "float32"))
    other = u.copy()
    other[:, 0] = random_array((2, 8), seed=5)
    same = np.allclose(to_numpy(layer(u)), to_numpy(layer(other)), atol=1e-6)
    assert same == (key_tokens == "patches")


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(
            key_tokens="patches",
            normalize_patches=False,
            talking_heads="matrix",
            attention="lsa",
            layer_scale_init_value=0.1,
        ),
        dict(layer_scale_init_value=None, key_tokens="all", head_dim=3),
    ],
    ids=["official", "spt", "no_layer_scale"],
)
def test_class_attention_block_matches_reference(kwargs):
    x = random_array((2, 7, 8))
    block = built(
        ClassAttentionBlock(num_heads=2, mlp_dim=12, **kwargs), x.shape
    )
    got, got_weights = block(x, return_attention_scores=True)
    want, want_weights = class_block_reference(block, x)
    np.testing.assert_allclose(
        to_numpy(got_weights), want_weights, rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(to_numpy(got), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("training", [False, True])
def test_class_attention_block_leaves_patch_tokens_unchanged(training):
    x = random_array((3, 9, 8))
    block = built(
        ClassAttentionBlock(
            num_heads=2, mlp_dim=12, dropout=0.5, drop_path_rate=0.5, seed=0
        ),
        x.shape,
    )
    got = to_numpy(block(x, training=training))
    np.testing.assert_array_equal(got[:, 1:], x[:, 1:])
    assert not np.allclose(got[:, :1], x[:, :1])


# --------------------------------------------------------------------------
# The soft split, the sinusoid table and TokensToToken


@pytest.mark.parametrize(
    "shape, kernel_size, strides, padding",
    [
        ((2, 8, 8, 3), 3, 2, 1),
        ((1, 7, 5, 2), 3, 2, 1),
        ((2, 6, 4, 1), 2, 2, 0),
    ],
)
def test_unfold_matches_reference(shape, kernel_size, strides, padding):
    images = random_array(shape)
    got = to_numpy(kv_ops.unfold(images, kernel_size, strides, padding))
    want, _ = unfold_reference(images, kernel_size, strides, padding)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)


def test_unfold_is_torch_unfold_up_to_the_channel_order():
    if keras.backend.backend() != "torch":
        pytest.skip("nn.Unfold is compared on the torch backend only")
    import torch

    images = random_array((2, 8, 6, 3))
    got = to_numpy(kv_ops.unfold(images, 3, 2, 1))
    unfold = torch.nn.Unfold(kernel_size=3, stride=2, padding=1)
    nchw = torch.from_numpy(images.transpose(0, 3, 1, 2))
    # (B, C * k * k, L) ordered (channel, row, col) -> (B, L, row, col, C)
    want = unfold(nchw).numpy().reshape(2, 3, 3, 3, -1)
    want = want.transpose(0, 4, 2, 3, 1).reshape(2, -1, 27)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)


def test_sinusoidal_positions_match_the_t2t_table():
    got = to_numpy(kv_ops.sinusoidal_positions(65, 256))
    np.testing.assert_allclose(got, sinusoid_reference(65, 256), atol=2e-5)


@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((2, 8, 8, 3), dict()),
        (
            (2, 8, 8, 3),
            dict(shift_size=1, attention="lsa", projection_norm=True),
        ),
        ((1, 8, 6, 3), dict(num_iterations=2, num_heads=2, qkv_bias=True)),
    ],
    ids=["t2t", "sl_t2t", "two_rounds_two_heads"],
)
def test_tokens_to_token_matches_reference(shape, kwargs):
    images = random_array(shape)
    layer = built(TokensToToken(embed_dim=6, token_dim=4, **kwargs), shape)
    got = to_numpy(layer(images))
    want = tokens_to_token_reference(layer, images)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "size, iterations, grid",
    [(32, 1, (8, 8)), (64, 2, (8, 8)), (24, 1, (6, 6)), (30, 1, (8, 8))],
)
def test_tokens_to_token_output_shapes(size, iterations, grid):
    layer = TokensToToken(
        embed_dim=16, token_dim=4, num_iterations=iterations, shift_size=1
    )
    shape = (None, size, size, 3)
    want = (None, grid[0] * grid[1], 16)
    assert layer.compute_output_shape(shape) == want
    assert tuple(layer(keras.Input(shape[1:])).shape) == want
    # The first token transformer sees 3x3 windows of the 15 shifted
    # channels; the projection, 3x3 windows of token_dim.
    assert layer.token_transformers[0].qkv.kernel.shape[0] == 9 * 15
    assert layer.projection.kernel.shape[0] == 9 * 4


def test_tokens_to_token_channels_first():
    nhwc = random_array((2, 8, 8, 3))
    layer = built(TokensToToken(embed_dim=6, token_dim=4), nhwc.shape)
    want = to_numpy(layer(nhwc))
    nchw_layer = TokensToToken(
        embed_dim=6, token_dim=4, data_format="channels_first"
    )
    nchw_layer.build((2, 3, 8, 8))
    nchw_layer.set_weights(layer.get_weights())
    got = to_numpy(nchw_layer(nhwc.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
