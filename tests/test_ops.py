"""kvision.ops against NumPy references and hand-checked values."""

import keras
import numpy as np
import pytest
from keras import ops

from kvision import ops as kv_ops
from tests import numpy_reference as ref
from tests.helpers import to_numpy


def arange_images(shape):
    # Every pixel and channel distinct (and exact in float32), so a pixel
    # taken from the wrong place cannot go unnoticed.
    return np.arange(1, np.prod(shape) + 1, dtype="float32").reshape(shape)


# --------------------------------------------------------------------------
# patchify


@pytest.mark.parametrize(
    "shape, patch_size",
    [
        ((2, 4, 6, 3), 2),
        ((2, 6, 9, 5), 3),
        ((1, 8, 4, 2), 4),
    ],
)
def test_patchify_matches_einops_layout(shape, patch_size):
    images = arange_images(shape)
    got = to_numpy(kv_ops.patchify(ops.convert_to_tensor(images), patch_size))
    np.testing.assert_array_equal(got, ref.patchify(images, patch_size))


def test_patchify_first_patch_by_hand():
    # 1 image, 4x4, 2 channels, patch 2: the first token is the top-left
    # 2x2 window read row by row, channels innermost.
    images = arange_images((1, 4, 4, 2))
    got = to_numpy(kv_ops.patchify(ops.convert_to_tensor(images), 2))
    top_left = [images[0, 0, 0], images[0, 0, 1], images[0, 1, 0]]
    top_left.append(images[0, 1, 1])
    np.testing.assert_array_equal(got[0, 0], np.concatenate(top_left))
    # The second token is the window to its right, not the one below.
    np.testing.assert_array_equal(got[0, 1, :2], images[0, 0, 2])


# --------------------------------------------------------------------------
# shift_images


@pytest.mark.parametrize("directions", ["diagonal", "cardinal"])
@pytest.mark.parametrize(
    "shape, shift",
    [((2, 5, 7, 3), 1), ((2, 6, 8, 2), 2)],
)
def test_shift_images_matches_official_code(shape, shift, directions):
    images = arange_images(shape)
    got = kv_ops.shift_images(ops.convert_to_tensor(images), shift, directions)
    want = ref.shift_patches(images, shift, directions)
    np.testing.assert_array_equal(to_numpy(got), want)


def test_shift_images_diagonal_by_hand():
    # One 3x3 single-channel image, shift 1. The official "left-up" crop
    # shows the image moved one pixel right and down, and so on.
    image = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], "float32")
    got = kv_ops.shift_images(ops.convert_to_tensor(image[None, ..., None]), 1)
    got = to_numpy(got)[0]
    expected = [
        image,
        [[0, 0, 0], [0, 1, 2], [0, 4, 5]],  # left-up crop
        [[0, 0, 0], [2, 3, 0], [5, 6, 0]],  # right-up crop
        [[0, 4, 5], [0, 7, 8], [0, 0, 0]],  # left-bottom crop
        [[5, 6, 0], [8, 9, 0], [0, 0, 0]],  # right-bottom crop
    ]
    for channel, want in enumerate(expected):
        np.testing.assert_array_equal(got[..., channel], want)


def test_shift_images_cardinal_by_hand():
    image = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], "float32")
    got = kv_ops.shift_images(
        ops.convert_to_tensor(image[None, ..., None]), 1, "cardinal"
    )
    got = to_numpy(got)[0]
    expected = [
        image,
        [[0, 1, 2], [0, 4, 5], [0, 7, 8]],  # left crop
        [[2, 3, 0], [5, 6, 0], [8, 9, 0]],  # right crop
        [[0, 0, 0], [1, 2, 3], [4, 5, 6]],  # top crop
        [[4, 5, 6], [7, 8, 9], [0, 0, 0]],  # bottom crop
    ]
    for channel, want in enumerate(expected):
        np.testing.assert_array_equal(got[..., channel], want)


def test_shift_images_keeps_channel_blocks_in_order():
    # RGB -> 15 channels: [original RGB, copy 1 RGB, ..., copy 4 RGB].
    images = arange_images((1, 4, 4, 3))
    got = to_numpy(kv_ops.shift_images(ops.convert_to_tensor(images), 1))
    assert got.shape == (1, 4, 4, 15)
    np.testing.assert_array_equal(got[..., :3], images)
    # The right-bottom copy at (0, 0) is the original's pixel (1, 1).
    np.testing.assert_array_equal(got[0, 0, 0, 12:], images[0, 1, 1])


# --------------------------------------------------------------------------
# channel layout


def test_to_channels_last_transposes_channels_first():
    images = arange_images((2, 3, 4, 5))  # NCHW
    got = to_numpy(
        kv_ops.to_channels_last(ops.convert_to_tensor(images), "channels_first")
    )
    np.testing.assert_array_equal(got, images.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_channels_last_round_trip(data_format):
    images = arange_images((2, 3, 4, 5))
    x = kv_ops.to_channels_last(ops.convert_to_tensor(images), data_format)
    back = to_numpy(kv_ops.from_channels_last(x, data_format))
    np.testing.assert_array_equal(back, images)


def test_channels_last_is_identity_for_channels_last():
    images = arange_images((2, 3, 4, 5))
    got = kv_ops.to_channels_last(
        ops.convert_to_tensor(images), "channels_last"
    )
    np.testing.assert_array_equal(to_numpy(got), images)


# --------------------------------------------------------------------------
# drop_path


def _drop_path(x, rate, seed):
    generator = keras.random.SeedGenerator(seed)
    return to_numpy(kv_ops.drop_path(ops.convert_to_tensor(x), rate, generator))


def _dropped_samples(x, y, rate):
    """Checks whole-sample masking; returns which samples were dropped."""
    flat_x = x.reshape(len(x), -1)
    flat_y = y.reshape(len(y), -1)
    dropped = np.all(flat_y == 0.0, axis=1)
    kept = np.all(np.isclose(flat_y, flat_x / (1.0 - rate), rtol=1e-6), axis=1)
    assert np.all(dropped ^ kept), "samples must be all dropped or all kept"
    return dropped


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5])
def test_drop_path_drops_whole_samples_at_the_rate(rate):
    n = 4000
    # Strictly positive inputs, so a kept value can never read as dropped.
    x = np.random.default_rng(0).uniform(0.5, 1.5, (n, 3, 2)).astype("float32")
    y = _drop_path(x, rate, seed=11)
    dropped = _dropped_samples(x, y, rate)
    # Binomial standard deviation is below 0.008 here; 0.03 is ~4 sigma.
    assert abs(dropped.mean() - rate) < 0.03


def test_drop_path_same_seed_same_mask():
    x = np.ones((64, 4), "float32")
    first = _drop_path(x, 0.5, seed=7)
    np.testing.assert_array_equal(first, _drop_path(x, 0.5, seed=7))
    assert not np.array_equal(first, _drop_path(x, 0.5, seed=8))


def test_drop_path_generator_advances_between_calls():
    # Repeated calls in a training loop must not reuse one mask.
    x = np.ones((64, 4), "float32")
    generator = keras.random.SeedGenerator(3)
    first = to_numpy(kv_ops.drop_path(ops.convert_to_tensor(x), 0.5, generator))
    second = to_numpy(
        kv_ops.drop_path(ops.convert_to_tensor(x), 0.5, generator)
    )
    assert not np.array_equal(first, second)


def test_drop_path_rate_zero_is_identity():
    x = np.random.default_rng(0).normal(size=(8, 3, 2)).astype("float32")
    np.testing.assert_array_equal(_drop_path(x, 0.0, seed=1), x)


# --------------------------------------------------------------------------
# attention_probabilities


def _query_key(batch=2, heads=3, tokens=5, head_dim=4, seed=0):
    rng = np.random.default_rng(seed)
    shape = (batch, heads, tokens, head_dim)
    q = rng.normal(size=shape).astype("float32")
    k = rng.normal(size=shape).astype("float32")
    return q, k


def _probabilities(q, k, scale, **kwargs):
    return to_numpy(
        kv_ops.attention_probabilities(
            ops.convert_to_tensor(q), ops.convert_to_tensor(k), scale, **kwargs
        )
    )


@pytest.mark.parametrize("mask_diagonal", [False, True])
def test_attention_rows_sum_to_one(mask_diagonal):
    q, k = _query_key()
    p = _probabilities(q, k, 0.5, mask_diagonal=mask_diagonal)
    assert p.shape == (2, 3, 5, 5)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-6)
    assert np.all(p >= 0.0)


def test_attention_scalar_scale_matches_reference():
    q, k = _query_key()
    p = _probabilities(q, k, 4**-0.5)
    want = ref.attention_probabilities(q, k, 4**-0.5)
    np.testing.assert_allclose(p, want, rtol=1e-5, atol=1e-6)


def test_attention_per_head_scale_matches_reference():
    q, k = _query_key()
    # Very different temperatures so that a scale applied to the wrong head
    # (or broadcast along the wrong axis) changes the result.
    scale = np.array([0.1, 1.0, 3.0], "float32")
    p = _probabilities(q, k, ops.convert_to_tensor(scale))
    want = ref.attention_probabilities(q, k, scale)
    np.testing.assert_allclose(p, want, rtol=1e-5, atol=1e-6)


def test_attention_mask_diagonal_matches_reference_and_is_exactly_zero():
    q, k = _query_key(tokens=6)
    # Queries equal to keys make the diagonal the largest logit: masking it
    # is the only way for it to come out zero.
    scale = np.array([0.5, 1.0, 2.0], "float32")
    p = _probabilities(q, q, ops.convert_to_tensor(scale), mask_diagonal=True)
    diagonal = p[..., np.arange(6), np.arange(6)]
    assert np.all(diagonal == 0.0)
    want = ref.attention_probabilities(q, q, scale, mask_diagonal=True)
    np.testing.assert_allclose(p, want, rtol=1e-5, atol=1e-6)


def test_attention_float16_inputs_give_finite_float16():
    # Q.K = 60 * 60 * 32 = 115200 overflows float16 (max 65504); the logits
    # must be formed in float32 for the softmax to stay finite.
    q = np.full((1, 2, 4, 32), 60.0, "float16")
    p = kv_ops.attention_probabilities(
        ops.convert_to_tensor(q), ops.convert_to_tensor(q), 32**-0.5
    )
    assert keras.backend.standardize_dtype(p.dtype) == "float16"
    p = to_numpy(p)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.astype("float64"), 0.25, rtol=1e-3)


def test_attention_float16_matches_reference():
    q, k = _query_key()
    p = _probabilities(
        q.astype("float16"), k.astype("float16"), 0.5, mask_diagonal=True
    )
    assert p.dtype == np.float16
    want = ref.attention_probabilities(
        q.astype("float16"), k.astype("float16"), 0.5, mask_diagonal=True
    )
    np.testing.assert_allclose(p.astype("float64"), want, atol=2e-3)
