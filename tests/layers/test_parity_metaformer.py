"""PoolingMixer and MetaFormerBlock against NumPy references.

The references follow the official PoolFormer code: average pooling that
does not count the padding (``count_include_pad=False``) minus the input,
and ``GroupNorm(1, C)``, which normalises each sample over H, W and C.
"""

import keras
import numpy as np
import pytest

from kvision.layers import MetaFormerBlock
from kvision.layers import PoolingMixer
from tests import numpy_reference as ref
from tests.helpers import to_numpy
from tests.layers.parity import built
from tests.layers.parity import dense_params
from tests.layers.parity import mlp_params
from tests.layers.parity import norm_params
from tests.layers.parity import random_array

RTOL = 1e-4
ATOL = 1e-5


def average_pool_without_padding(x, pool_size):
    """Each position's mean over the part of its window inside the image."""
    x = ref.as64(x)
    radius = pool_size // 2
    height, width = x.shape[1], x.shape[2]
    out = np.empty_like(x)
    for i in range(height):
        for j in range(width):
            rows = slice(max(i - radius, 0), min(i + radius + 1, height))
            cols = slice(max(j - radius, 0), min(j + radius + 1, width))
            out[:, i, j, :] = x[:, rows, cols, :].mean(axis=(1, 2))
    return out


def pooling_mixer(x, pool_size=3):
    return average_pool_without_padding(x, pool_size) - ref.as64(x)


def group_norm_one_group(x, gamma, beta, epsilon):
    """GroupNorm(1, C): statistics over (H, W, C) of each sample."""
    x = ref.as64(x)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    variance = x.var(axis=(1, 2, 3), keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


# --------------------------------------------------------------------------
# PoolingMixer


@pytest.mark.parametrize(
    "pool_size, size", [(3, (1, 1)), (3, (2, 3)), (3, (5, 7)), (5, (4, 6))]
)
def test_pooling_mixer_matches_reference(pool_size, size):
    x = random_array((2, *size, 3))
    got = to_numpy(PoolingMixer(pool_size)(x))
    want = pooling_mixer(x, pool_size)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_pooling_mixer_border_counts():
    # A ramp: at a corner the 3x3 window holds 4 pixels, at an edge 6.
    x = np.arange(20, dtype="float32").reshape(1, 4, 5, 1)
    got = to_numpy(PoolingMixer()(x))[0, :, :, 0]
    assert got[0, 0] == pytest.approx(np.mean([0, 1, 5, 6]) - 0)
    assert got[0, 2] == pytest.approx(np.mean([1, 2, 3, 6, 7, 8]) - 2)
    assert got[2, 2] == pytest.approx(12 - 12)


def test_pooling_mixer_channels_first():
    x = random_array((2, 5, 7, 3))
    mixer = PoolingMixer(data_format="channels_first")
    got = to_numpy(mixer(x.transpose(0, 3, 1, 2))).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, pooling_mixer(x), rtol=RTOL, atol=ATOL)


CONSTANTS = [0.1, 1.0 / 3.0, -7.3, 123.456, 1e-3, 3.0e5]


def test_pooling_mixer_is_exactly_zero_on_constant_input():
    # Summing 6 or 9 copies of 0.1 and dividing does not give 0.1 back in
    # float32; the mixer must still return exactly 0 (eager and compiled).
    rng = np.random.default_rng(0)
    per_channel = rng.normal(size=(1, 1, 1, 4)) * 10.0 ** rng.uniform(
        -3, 3, size=(1, 1, 1, 4)
    )
    images = [np.full((1, 5, 7, 4), c) for c in CONSTANTS]
    images.append(np.broadcast_to(per_channel, (1, 5, 7, 4)))
    x = np.concatenate(images).astype("float32")
    mixer = PoolingMixer()
    assert np.all(to_numpy(mixer(x)) == 0.0)
    inputs = keras.Input((5, 7, 4))
    model = keras.Model(inputs, PoolingMixer()(inputs))
    assert np.all(model.predict(x, verbose=0) == 0.0)


def test_a_constant_image_passes_a_pooling_block_untouched_by_mixing():
    # GroupNorm maps a constant image to its per-channel shift beta, a
    # constant per channel, which the mixer sends to exactly 0.
    x = np.full((2, 4, 5, 8), 2.5, "float32")
    block = built(MetaFormerBlock(), x.shape)
    y = to_numpy(block.norm1(x))
    assert np.ptp(y[0, :, :, 3]) == 0.0 and np.ptp(y[0, 0, 0]) > 0.0
    assert np.all(to_numpy(block.mixer(y)) == 0.0)


# --------------------------------------------------------------------------
# GroupNorm with one group


def test_default_norm_is_group_norm_over_height_width_and_channels():
    # Channels with very different offsets: a per-position LayerNorm over
    # channels and GroupNorm(1) give clearly different results.
    x = random_array((2, 3, 5, 4)) + np.array([0.0, 3.0, -2.0, 8.0])
    block = built(MetaFormerBlock(), x.shape)
    norm = block.norm1
    assert isinstance(norm, keras.layers.GroupNormalization)
    assert norm.groups == 1 and norm.epsilon == pytest.approx(1e-5)
    got = to_numpy(norm(x))
    want = group_norm_one_group(x, *norm_params(norm))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    channels_only = ref.layer_norm(x, *norm_params(norm))
    assert not np.allclose(got, channels_only, rtol=1e-2, atol=1e-2)


def test_layer_norm_option_normalises_channels_only():
    x = random_array((2, 3, 5, 4)) + np.array([0.0, 3.0, -2.0, 8.0])
    block = built(MetaFormerBlock(norm="layer"), x.shape)
    got = to_numpy(block.norm1(x))
    want = ref.layer_norm(x, *norm_params(block.norm1))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert block.norm1.epsilon == pytest.approx(1e-5)


# --------------------------------------------------------------------------
# MetaFormerBlock, each token mixer


def _attention(block, y):
    attention = block.mixer
    batch, height, width, channels = y.shape
    tokens = y.reshape(batch, height * width, channels)
    out, _ = ref.self_attention(
        tokens,
        *dense_params(attention.qkv),
        *dense_params(attention.projection),
        attention.num_heads,
        (channels // attention.num_heads) ** -0.5,
    )
    return out.reshape(y.shape)


def _spatial_mlp(block, y):
    batch, height, width, channels = y.shape
    tokens = y.reshape(batch, height * width, channels).transpose(0, 2, 1)
    mixed = ref.mlp(tokens, *mlp_params(block.mixer))
    return mixed.transpose(0, 2, 1).reshape(y.shape)


def _depthwise(block, y):
    kernel, bias = to_numpy(block.mixer.kernel), to_numpy(block.mixer.bias)
    return ref.depthwise_conv2d_same(y, kernel, bias)


MIXERS = {
    "pooling": lambda block, y: pooling_mixer(y),
    "attention": _attention,
    "spatial_mlp": _spatial_mlp,
    "depthwise_conv": _depthwise,
    "identity": lambda block, y: y,
}


def metaformer_reference(block, x):
    """x + ls1 * mixer(GN(x)), then x + ls2 * MLP(GN(x))."""
    ls1, ls2 = (to_numpy(scale.gamma) for scale in block.scales)
    y = group_norm_one_group(x, *norm_params(block.norm1))
    x = ref.as64(x) + ls1 * MIXERS[block.token_mixer](block, y)
    y = group_norm_one_group(x, *norm_params(block.norm2))
    return x + ls2 * ref.mlp(y, *mlp_params(block.mlp))


@pytest.mark.parametrize("token_mixer", sorted(MIXERS))
def test_block_matches_reference(token_mixer):
    # H, W, C and the token count all differ, so a transposition or a
    # mixed-up axis cannot broadcast its way through.
    x = random_array((2, 3, 5, 4))
    block = MetaFormerBlock(
        token_mixer, num_heads=2, drop_path_rate=0.2, seed=0
    )
    built(block, x.shape)
    got = to_numpy(block(x, training=False))
    want = metaformer_reference(block, x)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_attention_block_returns_the_mixers_scores():
    x = random_array((2, 3, 5, 4))
    block = built(MetaFormerBlock("attention", num_heads=2), x.shape)
    _, scores = block(x, return_attention_scores=True)
    scores = to_numpy(scores)
    assert scores.shape == (2, 2, 15, 15)
    y = group_norm_one_group(x, *norm_params(block.norm1)).reshape(2, 15, 4)
    _, want = ref.self_attention(
        y,
        *dense_params(block.mixer.qkv),
        *dense_params(block.mixer.projection),
        2,
        2**-0.5,
    )
    np.testing.assert_allclose(scores, want, rtol=RTOL, atol=ATOL)


def test_defaults_follow_the_official_code():
    block = MetaFormerBlock("attention")
    block.build((None, 4, 4, 64))
    assert block.mixer.num_heads == 2  # 32-wide heads
    assert block.mixer.qkv.bias is None
    assert block.mlp.fc1.units == 256
    np.testing.assert_allclose(to_numpy(block.scales[0].gamma), 1e-5)
    spatial = MetaFormerBlock("spatial_mlp")
    spatial.build((None, 3, 5, 8))
    assert tuple(spatial.mixer.fc1.kernel.shape) == (15, 15)


def test_a_layer_instance_as_token_mixer_round_trips():
    conv = keras.layers.Conv2D(
        4, 3, padding="same", data_format="channels_last"
    )
    block = MetaFormerBlock(conv)
    x = random_array((2, 3, 5, 4))
    y = to_numpy(block(x))
    assert block.mixer is conv
    config = block.get_config()
    assert config["token_mixer"]["class_name"] == "Conv2D"
    assert "build_config" not in config["token_mixer"]
    clone = MetaFormerBlock.from_config(config)
    clone.build(x.shape)
    assert isinstance(clone.mixer, keras.layers.Conv2D)
    assert clone.mixer is not conv
    clone.set_weights(block.get_weights())
    np.testing.assert_allclose(to_numpy(clone(x)), y, rtol=1e-6, atol=1e-6)
