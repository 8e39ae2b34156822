"""Swin (window attention, PatchMerging, SwinBlock) against NumPy references.

The shifted-window reference does not roll, partition or build region
masks: it runs full attention over all tokens of the image and allows a pair
only if the two tokens share a window of the rolled map and the roll did not
wrap one of them around the image edge relative to the other (their
displacement in the rolled map equals their displacement in the image, i.e.
they come from the same original region).
"""

import numpy as np
import pytest

from kvision import ops as kv_ops
from kvision.layers import PatchMerging
from kvision.layers import SwinBlock
from kvision.layers import WindowAttention
from kvision.layers import windows
from tests import numpy_reference as ref
from tests.helpers import to_numpy
from tests.layers.parity import built
from tests.layers.parity import dense_params
from tests.layers.parity import mlp_params
from tests.layers.parity import norm_params
from tests.layers.parity import random_array

RTOL = 1e-4
ATOL = 1e-5


def bias_index(window_size):
    """Table row of every token pair, by explicit loops over positions."""
    w = window_size
    index = np.zeros((w * w, w * w), "int64")
    for i in range(w * w):
        for j in range(w * w):
            (row_i, col_i), (row_j, col_j) = divmod(i, w), divmod(j, w)
            index[i, j] = (row_i - row_j + w - 1) * (2 * w - 1) + (
                col_i - col_j + w - 1
            )
    return index


def split_heads(x, heads):
    """``(..., N, heads * d) -> (..., heads, N, d)``."""
    x = x.reshape(*x.shape[:-1], heads, -1)
    return np.swapaxes(x, -2, -3)


def attention(tokens, layer, logit_bias, allowed):
    """Masked multi-head attention over ``tokens (B, N, C)``.

    ``logit_bias`` is ``(heads, N, N)``; ``allowed`` a boolean ``(N, N)``
    (pairs outside it get probability exactly zero). Returns the projected
    outputs and the probabilities ``(B, heads, N, N)``.
    """
    heads = layer.num_heads
    qkv = ref.dense(tokens, *dense_params(layer.qkv))
    q, k, v = (split_heads(t, heads) for t in np.split(qkv, 3, axis=-1))
    if layer.attention == "lsa":
        scale = ref.as64(to_numpy(layer.temperature))[:, None, None]
        allowed = allowed & ~np.eye(len(allowed), dtype=bool)
    else:
        scale = q.shape[-1] ** -0.5
    logits = np.einsum("bhid,bhjd->bhij", q, k) * scale + logit_bias
    logits = np.where(allowed, logits, -np.inf)
    probabilities = ref.softmax(logits)
    out = np.einsum("bhij,bhjd->bhid", probabilities, v)
    out = np.swapaxes(out, 1, 2).reshape(*tokens.shape[:2], -1)
    return ref.dense(out, *dense_params(layer.projection)), probabilities


def table(layer):
    return ref.as64(to_numpy(layer.relative_position_bias_table))


def per_window_reference(x, layer):
    """Unshifted windows, each an independent attention (padding included).

    Returns outputs ``(B, H, W, C)`` and scores ``(B, nW, heads, N, N)``.
    """
    w = layer.window_size
    batch, height, width, channels = x.shape
    padded_h, padded_w = -(-height // w) * w, -(-width // w) * w
    x = np.pad(
        ref.as64(x),
        ((0, 0), (0, padded_h - height), (0, padded_w - width), (0, 0)),
    )
    if layer.relative_position_bias:
        bias = table(layer)[bias_index(w)].transpose(2, 0, 1)
    else:
        bias = np.zeros((layer.num_heads, w * w, w * w))
    allowed = np.ones((w * w, w * w), bool)
    out = np.zeros_like(x)
    scores = []
    for top in range(0, padded_h, w):
        for left in range(0, padded_w, w):
            window = x[:, top : top + w, left : left + w]
            y, p = attention(
                window.reshape(batch, w * w, channels), layer, bias, allowed
            )
            out[:, top : top + w, left : left + w] = y.reshape(
                batch, w, w, channels
            )
            scores.append(p)
    return out[:, :height, :width], np.stack(scores, axis=1)


def shifted_reference(x, layer):
    """Full attention restricted to same rolled window and same region.

    Returns outputs ``(B, H, W, C)`` and the full probabilities
    ``(B, heads, H*W, H*W)`` over the image's row-major tokens.
    """
    w, s = layer.window_size, layer.shift_size
    batch, height, width, channels = x.shape
    rows, cols = np.divmod(np.arange(height * width), width)
    # Where each image token lands after rolling the map by -s.
    rolled_rows, rolled_cols = (rows - s) % height, (cols - s) % width
    same_window = (rolled_rows[:, None] // w == rolled_rows[None] // w) & (
        rolled_cols[:, None] // w == rolled_cols[None] // w
    )
    d_rows = rolled_rows[:, None] - rolled_rows[None]
    d_cols = rolled_cols[:, None] - rolled_cols[None]
    same_region = (d_rows == rows[:, None] - rows[None]) & (
        d_cols == cols[:, None] - cols[None]
    )
    allowed = same_window & same_region
    # Inside a window the rolled displacement is the relative position.
    index = (d_rows + w - 1) * (2 * w - 1) + (d_cols + w - 1)
    index = np.clip(index, 0, (2 * w - 1) ** 2 - 1)  # pairs masked anyway
    bias = table(layer)[index].transpose(2, 0, 1)
    tokens = ref.as64(x).reshape(batch, height * width, channels)
    y, p = attention(tokens, layer, bias, allowed)
    return y.reshape(x.shape), p


def layer_and_input(shape, seed=0, **kwargs):
    x = random_array(shape, seed)
    layer = built(WindowAttention(**kwargs), x.shape)
    return layer, x


def call(layer, x):
    y, scores = layer(x, return_attention_scores=True)
    return to_numpy(y), to_numpy(scores)


# --------------------------------------------------------------------------
# Index, mask and partition helpers


@pytest.mark.parametrize("window_size", [1, 2, 3, 7])
def test_relative_position_index_matches_formula(window_size):
    index = windows.relative_position_index(window_size)
    np.testing.assert_array_equal(index, bias_index(window_size))
    # Every relative offset is used, and only offsets that exist.
    assert set(index.ravel()) == set(range((2 * window_size - 1) ** 2))


def test_shifted_window_mask_separates_the_corner_window_in_four():
    mask = windows.shifted_window_mask(8, 8, 4, 2)
    assert mask.shape == (4, 16, 16)
    assert set(np.unique(mask)) == {0.0, -100.0}
    # The top-left window of the rolled map never wrapped: no mask.
    assert np.all(mask[0] == 0.0)
    # The bottom-right one holds four 2x2 regions: 4 allowed per token.
    assert np.all((mask[3] == 0.0).sum(-1) == 4)
    assert np.all((mask[1] == 0.0).sum(-1) == 8)


def test_window_partition_layout_and_inverse():
    x = random_array((2, 4, 6, 3))
    windows_ = to_numpy(kv_ops.window_partition(x, 2))
    assert windows_.shape == (2, 6, 4, 3)
    # Window 4 is grid row 1, column 1: rows 2-3, columns 2-3, row-major.
    want = x[:, 2:4, 2:4].reshape(2, 4, 3)
    np.testing.assert_array_equal(windows_[:, 4], want)
    back = to_numpy(kv_ops.window_reverse(windows_, 2, 4, 6))
    np.testing.assert_array_equal(back, x)


# --------------------------------------------------------------------------
# The layer against the references


@pytest.mark.parametrize("attention_kind", ["mhsa", "lsa"])
def test_unshifted_windows_are_independent_attentions(attention_kind):
    layer, x = layer_and_input(
        (2, 4, 6, 8), num_heads=2, window_size=2, attention=attention_kind
    )
    y, scores = call(layer, x)
    want_y, want_scores = per_window_reference(x, layer)
    assert scores.shape == (2, 6, 2, 4, 4)
    np.testing.assert_allclose(scores, want_scores, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(y, want_y, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((2, 8, 8, 8), dict(num_heads=2, window_size=4, shift_size=2)),
        (
            (1, 8, 12, 6),
            dict(num_heads=3, window_size=4, shift_size=1, head_dim=4),
        ),
        (
            (2, 8, 8, 8),
            dict(num_heads=2, window_size=4, shift_size=2, attention="lsa"),
        ),
    ],
    ids=["square", "wide", "lsa"],
)
def test_shifted_windows_equal_masked_full_attention(shape, kwargs):
    layer, x = layer_and_input(shape, **kwargs)
    y, scores = call(layer, x)
    want_y, full = shifted_reference(x, layer)
    np.testing.assert_allclose(y, want_y, rtol=RTOL, atol=ATOL)

    # Scores are per window of the rolled map: map each back to the image.
    w, s = layer.window_size, layer.shift_size
    _, height, width, _ = shape
    grid_w = width // w
    for k in range(scores.shape[1]):
        top, left = (k // grid_w) * w, (k % grid_w) * w
        rolled = [(top + t // w, left + t % w) for t in range(w * w)]
        image = [
            ((r + s) % height) * width + (c + s) % width for r, c in rolled
        ]
        np.testing.assert_allclose(
            scores[:, k], full[:, :, image][..., image], rtol=RTOL, atol=ATOL
        )


def test_lsa_diagonal_is_zero_in_every_window():
    layer, x = layer_and_input(
        (2, 8, 8, 8), num_heads=2, window_size=4, shift_size=2, attention="lsa"
    )
    _, scores = call(layer, x)
    diagonal = scores[..., np.arange(16), np.arange(16)]
    assert diagonal.shape == (2, 4, 2, 16)
    assert np.all(diagonal == 0.0)
    np.testing.assert_allclose(scores.sum(-1), 1.0, rtol=1e-5)


def test_lsa_temperature_is_a_trainable_per_head_weight():
    layer = WindowAttention(3, 2, head_dim=5, attention="lsa")
    layer.build((None, 4, 4, 6))
    assert tuple(layer.temperature.shape) == (3,)
    np.testing.assert_allclose(to_numpy(layer.temperature), [5**-0.5] * 3)
    assert any(w is layer.temperature for w in layer.trainable_weights)


def test_padding_pads_bottom_right_and_crops():
    layer, x = layer_and_input(
        (2, 3, 5, 8),
        num_heads=2,
        window_size=2,
        pad_to_window=True,
        relative_position_bias=False,
    )
    y, scores = call(layer, x)
    assert y.shape == x.shape
    assert scores.shape == (2, 6, 2, 4, 4)
    want_y, want_scores = per_window_reference(x, layer)
    np.testing.assert_allclose(scores, want_scores, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(y, want_y, rtol=RTOL, atol=ATOL)


def test_padding_is_a_no_op_on_divisible_maps():
    layer, x = layer_and_input(
        (1, 4, 4, 8), num_heads=2, window_size=2, shift_size=1
    )
    padded = WindowAttention(2, 2, shift_size=1, pad_to_window=True)
    padded.build(x.shape)
    padded.set_weights(layer.get_weights())
    np.testing.assert_array_equal(call(padded, x)[0], call(layer, x)[0])


def test_relative_position_table_shape_and_no_index_weight():
    layer = WindowAttention(3, 4)
    layer.build((None, 8, 8, 12))
    assert tuple(layer.relative_position_bias_table.shape) == (49, 3)
    # The index is a constant rebuilt from the config, not a weight.
    assert len(layer.weights) == 5
    assert not layer.non_trainable_weights


# --------------------------------------------------------------------------
# PatchMerging and the block


def test_patch_merging_uses_swin_channel_order():
    x = random_array((2, 4, 6, 3))
    layer = built(PatchMerging(), x.shape)
    # By hand: the 2x2 neighbourhood at (2i, 2j) in the official order
    # top-left, bottom-left, top-right, bottom-right.
    merged = np.zeros((2, 2, 3, 12))
    for i in range(2):
        for j in range(3):
            r, c = 2 * i, 2 * j
            merged[:, i, j] = np.concatenate(
                [
                    x[:, r, c],
                    x[:, r + 1, c],
                    x[:, r, c + 1],
                    x[:, r + 1, c + 1],
                ],
                axis=-1,
            )
    normed = ref.layer_norm(merged, *norm_params(layer.norm))
    want = ref.dense(normed, to_numpy(layer.reduction.kernel))
    assert layer.reduction.bias is None
    assert tuple(layer.reduction.kernel.shape) == (12, 6)
    np.testing.assert_allclose(to_numpy(layer(x)), want, rtol=RTOL, atol=ATOL)


def test_patch_merging_is_not_space_to_depth():
    # A row-major space-to-depth puts the top-right neighbour second.
    x = np.zeros((1, 2, 2, 1), "float32")
    x[0, 0, 1, 0] = 1.0  # top-right
    layer = PatchMerging()
    layer.build(x.shape)
    layer.reduction.kernel.assign(np.eye(4, 2, k=-2, dtype="float32"))
    normed = ref.layer_norm(np.array([0.0, 0.0, 1.0, 0.0]), 1.0, 0.0, 1e-5)
    np.testing.assert_allclose(
        to_numpy(layer(x))[0, 0, 0], normed[2:], rtol=RTOL, atol=ATOL
    )


def test_swin_block_matches_pre_norm_reference():
    x = random_array((2, 8, 8, 8))
    block = built(
        SwinBlock(num_heads=2, window_size=4, shift_size=2, mlp_ratio=2),
        x.shape,
    )
    y, scores = block(x, return_attention_scores=True)
    attention_out, _ = shifted_reference(
        ref.layer_norm(x, *norm_params(block.norm1)), block.attn
    )
    h = ref.as64(x) + attention_out
    want = h + ref.mlp(
        ref.layer_norm(h, *norm_params(block.norm2)), *mlp_params(block.mlp)
    )
    np.testing.assert_allclose(to_numpy(y), want, rtol=RTOL, atol=1e-4)
    assert tuple(scores.shape) == (2, 4, 2, 16, 16)
