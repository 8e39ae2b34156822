"""PatchEmbedding and ShiftedPatchTokenization against NumPy references."""

import numpy as np
import pytest

from kvision.layers import PatchEmbedding
from kvision.layers import ShiftedPatchTokenization
from tests import numpy_reference as ref
from tests.helpers import to_numpy
from tests.layers.parity import random_array

RTOL = 1e-4
ATOL = 1e-5


def spt_reference(layer, images, shift, directions):
    norm = layer.norm
    norm_params = (to_numpy(norm.gamma), to_numpy(norm.beta), norm.epsilon)
    projection = (
        to_numpy(layer.projection.kernel),
        to_numpy(layer.projection.bias),
    )
    return ref.shifted_patch_tokens(
        images,
        shift,
        layer.patch_size,
        norm_params,
        projection,
        directions=directions,
    )


def built_spt(input_shape, seed=1, **kwargs):
    layer = ShiftedPatchTokenization(**kwargs)
    layer.build(input_shape)
    ref.randomize_weights(layer, seed)
    return layer


# --------------------------------------------------------------------------
# Images mode


def test_spt_default_is_diagonal_with_half_patch_shift():
    # Non-square image, patch 4: the default shift is 4 // 2 = 2.
    images = random_array((2, 8, 12, 3))
    layer = built_spt(images.shape, patch_size=4, embed_dim=8)
    got = to_numpy(layer(images))
    assert got.shape == (2, 2 * 3, 8)
    want = spt_reference(layer, images, shift=2, directions="diagonal")
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_spt_flattened_patch_has_five_copies():
    layer = built_spt((2, 8, 12, 3), patch_size=4, embed_dim=8)
    # 4 * 4 pixels * (3 original + 4 * 3 shifted) channels.
    assert tuple(layer.projection.kernel.shape) == (4 * 4 * 15, 8)
    assert tuple(layer.norm.gamma.shape) == (4 * 4 * 15,)


def test_spt_layer_norm_epsilon_is_pytorch_default():
    # The official code uses nn.LayerNorm(patch_dim), epsilon 1e-5.
    layer = built_spt((2, 8, 12, 3), patch_size=4, embed_dim=8)
    assert layer.norm.epsilon == pytest.approx(1e-5)


def test_spt_cardinal_one_pixel_variant():
    images = random_array((2, 4, 6, 3))
    layer = built_spt(
        images.shape,
        patch_size=2,
        embed_dim=6,
        shift_size=1,
        directions="cardinal",
    )
    got = to_numpy(layer(images))
    want = spt_reference(layer, images, shift=1, directions="cardinal")
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    # The diagonal reference must not also match: the directions matter.
    other = spt_reference(layer, images, shift=1, directions="diagonal")
    assert not np.allclose(got, other, rtol=RTOL, atol=ATOL)


def test_spt_channels_first_matches_channels_last_reference():
    nhwc = random_array((2, 4, 6, 3))
    nchw = nhwc.transpose(0, 3, 1, 2)
    layer = built_spt(
        nchw.shape, patch_size=2, embed_dim=6, data_format="channels_first"
    )
    got = to_numpy(layer(nchw))
    want = spt_reference(layer, nhwc, shift=1, directions="diagonal")
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------
# Tokens mode (the paper's pooling layer)


@pytest.mark.parametrize(
    "grid, token_grid",
    [((4, 4), None), ((2, 4), (2, 4))],
)
def test_spt_pooling_without_class_token(grid, token_grid):
    grid_h, grid_w = grid
    tokens = random_array((2, grid_h * grid_w, 5))
    layer = built_spt(
        tokens.shape, patch_size=2, embed_dim=7, token_grid=token_grid
    )
    got = to_numpy(layer(tokens))
    assert got.shape == (2, (grid_h // 2) * (grid_w // 2), 7)
    # 'b (h w) d -> b h w d': tokens are laid out row by row on the grid.
    images = tokens.reshape(2, grid_h, grid_w, 5)
    want = spt_reference(layer, images, shift=1, directions="diagonal")
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_spt_pooling_with_class_token():
    tokens = random_array((2, 1 + 4 * 4, 5))
    layer = built_spt(
        tokens.shape, patch_size=2, embed_dim=7, has_class_token=True
    )
    got = to_numpy(layer(tokens))
    assert got.shape == (2, 1 + 2 * 2, 7)

    class_token, visual = tokens[:, :1], tokens[:, 1:]
    want_class = ref.dense(
        class_token,
        to_numpy(layer.class_projection.kernel),
        to_numpy(layer.class_projection.bias),
    )
    images = visual.reshape(2, 4, 4, 5)
    want_visual = spt_reference(layer, images, shift=1, directions="diagonal")
    np.testing.assert_allclose(got[:, :1], want_class, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got[:, 1:], want_visual, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------
# PatchEmbedding


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_patch_embedding_is_linear_projection_of_flattened_patches(
    data_format,
):
    nhwc = random_array((2, 4, 6, 3))
    images = (
        nhwc if data_format == "channels_last" else nhwc.transpose(0, 3, 1, 2)
    )
    layer = PatchEmbedding(patch_size=2, embed_dim=6, data_format=data_format)
    layer.build(images.shape)
    ref.randomize_weights(layer, seed=2)
    got = to_numpy(layer(images))

    # ViT's definition: flatten each (p, p, C) patch and multiply by a
    # (p * p * C, D) matrix; the conv kernel is that matrix reshaped.
    kernel = to_numpy(layer.projection.kernel)
    want = ref.dense(
        ref.patchify(nhwc, 2),
        kernel.reshape(-1, 6),
        to_numpy(layer.projection.bias),
    )
    assert got.shape == (2, 2 * 3, 6)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
