"""MLP, MixerBlock, ConvMixerStem and ConvMixerBlock against NumPy."""

import numpy as np
import pytest

from kvision.layers import MLP
from kvision.layers import ConvMixerBlock
from kvision.layers import ConvMixerStem
from kvision.layers import MixerBlock
from tests import numpy_reference as ref
from tests.helpers import to_numpy
from tests.layers.parity import batch_norm_params
from tests.layers.parity import built
from tests.layers.parity import mlp_params
from tests.layers.parity import norm_params
from tests.layers.parity import random_array

RTOL = 1e-4
ATOL = 1e-5

ACTIVATIONS = {"gelu": ref.gelu, "relu": ref.relu}


# --------------------------------------------------------------------------
# MLP


@pytest.mark.parametrize("output_dim", [None, 3])
def test_mlp_matches_reference(output_dim):
    x = random_array((2, 6, 4))
    layer = built(MLP(hidden_dim=7, output_dim=output_dim), x.shape)
    got = to_numpy(layer(x))
    assert got.shape == (2, 6, output_dim or 4)
    want = ref.mlp(x, *mlp_params(layer))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_mlp_default_gelu_is_the_exact_erf_form():
    # Large pre-activations make the tanh approximation differ by ~1e-3.
    x = random_array((2, 6, 4)) * 3.0
    layer = built(MLP(hidden_dim=7), x.shape, seed=3)
    got = to_numpy(layer(x))
    np.testing.assert_allclose(
        got, ref.mlp(x, *mlp_params(layer)), rtol=RTOL, atol=ATOL
    )
    tanh_form = ref.mlp(x, *mlp_params(layer), activation=ref.gelu_tanh)
    assert not np.allclose(got, tanh_form, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------
# MixerBlock


def mixer_reference(block, x, activation=ref.gelu_tanh):
    """Tolstikhin et al., Eq. 1: token MLP on transposed tokens, then the
    channel MLP, each with its own pre-norm and residual."""
    y = ref.layer_norm(x, *norm_params(block.token_norm))
    y = np.swapaxes(y, 1, 2)  # (B, C, N): the MLP now runs over tokens
    y = ref.mlp(y, *mlp_params(block.token_mlp), activation=activation)
    x = ref.as64(x) + np.swapaxes(y, 1, 2)
    y = ref.layer_norm(x, *norm_params(block.channel_norm))
    return x + ref.mlp(y, *mlp_params(block.channel_mlp), activation=activation)


def test_mixer_block_matches_reference():
    # Different sizes everywhere, so that a token/channel mix-up cannot
    # broadcast its way through.
    x = random_array((2, 6, 4))
    block = MixerBlock(
        tokens_mlp_dim=5, channels_mlp_dim=7, drop_path_rate=0.3, seed=0
    )
    built(block, x.shape)
    got = to_numpy(block(x, training=False))
    np.testing.assert_allclose(
        got, mixer_reference(block, x), rtol=RTOL, atol=ATOL
    )


def test_mixer_token_mlp_runs_across_tokens():
    block = MixerBlock(tokens_mlp_dim=5, channels_mlp_dim=7)
    block.build((None, 6, 4))
    assert tuple(block.token_mlp.fc1.kernel.shape) == (6, 5)
    assert tuple(block.token_mlp.fc2.kernel.shape) == (5, 6)
    assert tuple(block.channel_mlp.fc1.kernel.shape) == (4, 7)
    assert tuple(block.channel_mlp.fc2.kernel.shape) == (7, 4)


def test_mixer_token_mixing_moves_information_between_tokens():
    # Changing one token changes the others' outputs only through the
    # token-mixing MLP.
    x = random_array((2, 6, 4))
    block = built(MixerBlock(tokens_mlp_dim=5, channels_mlp_dim=7), x.shape)
    x2 = x.copy()
    x2[0, 0, 0] += 1.0
    y1, y2 = to_numpy(block(x)), to_numpy(block(x2))
    assert not np.allclose(y1[0, 1:], y2[0, 1:])


def test_mixer_norms_are_separate():
    block = MixerBlock(tokens_mlp_dim=5, channels_mlp_dim=7)
    block.build((None, 6, 4))
    assert block.token_norm is not block.channel_norm
    token_vars = {id(w) for w in block.token_norm.weights}
    assert not token_vars & {id(w) for w in block.channel_norm.weights}
    assert block.token_norm.epsilon == pytest.approx(1e-6)


def test_mixer_block_default_activation_is_official_tanh_gelu():
    # The official Flax code calls flax.linen.gelu (tanh approximation);
    # the two forms differ by up to ~5e-4, well above the tolerance here.
    x = random_array((2, 6, 4)) * 3.0
    block = built(MixerBlock(tokens_mlp_dim=5, channels_mlp_dim=7), x.shape)
    got = to_numpy(block(x))
    want = mixer_reference(block, x, activation=ref.gelu_tanh)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    exact = mixer_reference(block, x, activation=ref.gelu)
    assert not np.allclose(got, exact, rtol=RTOL, atol=ATOL)


def test_mixer_block_exact_gelu_on_request():
    x = random_array((2, 6, 4)) * 3.0
    block = MixerBlock(tokens_mlp_dim=5, channels_mlp_dim=7, activation="gelu")
    built(block, x.shape)
    got = to_numpy(block(x))
    want = mixer_reference(block, x, activation=ref.gelu)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert block.get_config()["activation"] == "gelu"


# --------------------------------------------------------------------------
# ConvMixer


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_convmixer_stem_inference_matches_reference(data_format):
    nhwc = random_array((2, 8, 12, 3))
    x = nhwc if data_format == "channels_last" else nhwc.transpose(0, 3, 1, 2)
    stem = ConvMixerStem(filters=4, patch_size=2, data_format=data_format)
    built(stem, x.shape)
    got = to_numpy(stem(x, training=False))
    if data_format == "channels_first":
        got = got.transpose(0, 2, 3, 1)

    # conv (kernel = stride = p) -> GELU -> BatchNorm with moving statistics
    y = ref.patch_conv2d(
        nhwc, to_numpy(stem.conv.kernel), to_numpy(stem.conv.bias)
    )
    want = ref.batch_norm_inference(ref.gelu(y), *batch_norm_params(stem.norm))
    assert got.shape == (2, 4, 6, 4)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def convmixer_block_reference(block, x, activation):
    """z' = BN(act(DepthwiseConv(z))) + z; z = BN(act(PointwiseConv(z')))."""
    y = ref.depthwise_conv2d_same(
        x, to_numpy(block.depthwise.kernel), to_numpy(block.depthwise.bias)
    )
    y = ref.batch_norm_inference(
        activation(y), *batch_norm_params(block.depthwise_norm)
    )
    x = ref.as64(x) + y
    y = ref.dense(
        x, to_numpy(block.pointwise.kernel), to_numpy(block.pointwise.bias)
    )
    return ref.batch_norm_inference(
        activation(y), *batch_norm_params(block.pointwise_norm)
    )


@pytest.mark.parametrize(
    "kernel_size, activation, data_format",
    [
        (3, "gelu", "channels_last"),
        # An even kernel checks which side "same" pads.
        (4, "relu", "channels_first"),
    ],
)
def test_convmixer_block_inference_matches_reference(
    kernel_size, activation, data_format
):
    nhwc = random_array((2, 8, 8, 4))
    x = nhwc if data_format == "channels_last" else nhwc.transpose(0, 3, 1, 2)
    block = ConvMixerBlock(
        kernel_size, activation=activation, data_format=data_format
    )
    built(block, x.shape)
    assert tuple(block.depthwise.kernel.shape) == (
        kernel_size,
        kernel_size,
        4,
        1,
    )
    got = to_numpy(block(x, training=False))
    if data_format == "channels_first":
        got = got.transpose(0, 2, 3, 1)
    want = convmixer_block_reference(block, nhwc, ACTIVATIONS[activation])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_convmixer_batch_norm_defaults_follow_official_pytorch():
    # PyTorch BatchNorm2d: momentum 0.1 (Keras 0.9), eps 1e-5.
    stem = ConvMixerStem(filters=4, patch_size=2)
    stem.build((None, 8, 12, 3))
    block = ConvMixerBlock(kernel_size=3)
    block.build((None, 8, 8, 4))
    for bn in (stem.norm, block.depthwise_norm, block.pointwise_norm):
        assert bn.momentum == pytest.approx(0.9)
        assert bn.epsilon == pytest.approx(1e-5)
