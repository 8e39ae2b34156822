"""ConvNeXtStem, ConvNeXtDownsampling and ConvNeXtBlock against NumPy."""

import numpy as np
import pytest

from kvision.layers import ConvNeXtBlock
from kvision.layers import ConvNeXtDownsampling
from kvision.layers import ConvNeXtStem
from tests import numpy_reference as ref
from tests.helpers import to_numpy
from tests.layers.parity import built
from tests.layers.parity import norm_params

RTOL = 1e-4
ATOL = 1e-5


def random_images(shape, data_format="channels_last", seed=0):
    """Returns (layer input, the same images in NHWC)."""
    nhwc = np.random.default_rng(seed).normal(size=shape).astype("float32")
    if data_format == "channels_first":
        return nhwc.transpose(0, 3, 1, 2), nhwc
    return nhwc, nhwc


def as_nhwc(y, data_format):
    y = to_numpy(y)
    return y.transpose(0, 2, 3, 1) if data_format == "channels_first" else y


def conv_params(conv):
    return to_numpy(conv.kernel), to_numpy(conv.bias)


# --------------------------------------------------------------------------
# Stem and downsampling


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_convnext_stem_matches_reference(data_format):
    x, nhwc = random_images((2, 8, 12, 3), data_format)
    stem = built(ConvNeXtStem(filters=4, data_format=data_format), x.shape)
    got = as_nhwc(stem(x), data_format)
    # 4x4 stride-4 patchify conv, then LayerNorm over channels.
    y = ref.patch_conv2d(nhwc, *conv_params(stem.conv))
    want = ref.layer_norm(y, *norm_params(stem.norm))
    assert got.shape == (2, 2, 3, 4)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "shape, data_format",
    [
        ((2, 8, 8, 4), "channels_last"),
        # Odd sizes: the stride-2 conv floors them, as in PyTorch.
        ((2, 5, 7, 4), "channels_last"),
        ((2, 8, 8, 4), "channels_first"),
    ],
)
def test_convnext_downsampling_matches_reference(shape, data_format):
    x, nhwc = random_images(shape, data_format)
    down = built(
        ConvNeXtDownsampling(filters=7, data_format=data_format), x.shape
    )
    got = as_nhwc(down(x), data_format)
    # LayerNorm first, then the 2x2 stride-2 conv.
    y = ref.layer_norm(nhwc, *norm_params(down.norm))
    want = ref.patch_conv2d(y, *conv_params(down.conv))
    assert got.shape == (2, shape[1] // 2, shape[2] // 2, 7)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_convnext_norm_epsilon_is_official():
    stem = ConvNeXtStem(filters=4)
    stem.build((None, 8, 12, 3))
    down = ConvNeXtDownsampling(filters=7)
    down.build((None, 8, 8, 4))
    block = ConvNeXtBlock()
    block.build((None, 8, 8, 4))
    for norm in (stem.norm, down.norm, block.norm):
        assert norm.epsilon == pytest.approx(1e-6)


# --------------------------------------------------------------------------
# Block


def convnext_block_reference(block, x):
    """x + gamma * MLP(LN(DepthwiseConv(x))), with the official layout."""
    y = ref.depthwise_conv2d_same(x, *conv_params(block.depthwise))
    y = ref.layer_norm(y, *norm_params(block.norm))
    y = ref.mlp(
        y,
        to_numpy(block.mlp.fc1.kernel),
        to_numpy(block.mlp.fc1.bias),
        to_numpy(block.mlp.fc2.kernel),
        to_numpy(block.mlp.fc2.bias),
    )
    if block.layer_scale is not None:
        y = y * to_numpy(block.layer_scale.gamma)
    return ref.as64(x) + y


@pytest.mark.parametrize(
    "kwargs, data_format",
    [
        ({}, "channels_last"),
        ({"layer_scale_init_value": None}, "channels_last"),
        (
            {
                "kernel_size": 3,
                "mlp_ratio": 2,
                "drop_path_rate": 0.5,
                "seed": 0,
            },
            "channels_first",
        ),
    ],
)
def test_convnext_block_inference_matches_reference(kwargs, data_format):
    # 8x8 is larger than the 7x7 kernel, so padding and interior both count.
    x, nhwc = random_images((2, 8, 8, 4), data_format)
    block = built(ConvNeXtBlock(data_format=data_format, **kwargs), x.shape)
    if kwargs.get("layer_scale_init_value", 1e-6) is None:
        assert block.layer_scale is None
    got = as_nhwc(block(x, training=False), data_format)
    want = convnext_block_reference(block, nhwc)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_convnext_block_defaults():
    block = ConvNeXtBlock()
    block.build((None, 8, 8, 4))
    assert tuple(block.depthwise.kernel.shape) == (7, 7, 4, 1)
    # Inverted bottleneck: C -> 4C -> C.
    assert tuple(block.mlp.fc1.kernel.shape) == (4, 16)
    assert tuple(block.mlp.fc2.kernel.shape) == (16, 4)
    np.testing.assert_array_equal(
        to_numpy(block.layer_scale.gamma), np.full(4, 1e-6, "float32")
    )


def test_convnext_block_starts_near_identity():
    # With LayerScale at 1e-6 the residual branch is negligible at init.
    x, _ = random_images((2, 8, 8, 4))
    block = ConvNeXtBlock()
    y = to_numpy(block(x))
    np.testing.assert_allclose(y, x, atol=1e-4)
    assert not np.array_equal(y, x)
