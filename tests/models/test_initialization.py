"""Models start from their official code's initialisation."""

import math

import keras
import numpy as np
import pytest

from kvision import layers
from kvision.models import create_model
from kvision.models.initialization import initialize_weights
from tests.helpers import to_numpy


def weights_of(model, path):
    found = [w for w in model.weights if w.path == path]
    assert found, sorted(w.path for w in model.weights)
    return to_numpy(found[0])


def test_sl_vit_is_xavier_normal_with_std_one_tokens():
    model = create_model("sl_vit_32px", depth=2)
    # qkv: Linear(192, 3 * 192); MLP: Linear(192, 384).
    qkv = weights_of(model, "block_0/attention/qkv/kernel")
    assert qkv.std() == pytest.approx(math.sqrt(2 / (192 + 576)), rel=0.05)
    fc1 = weights_of(model, "block_0/mlp/fc1/kernel")
    assert fc1.std() == pytest.approx(math.sqrt(2 / (192 + 384)), rel=0.05)
    # SPT's projection is a Linear over 4 * 4 * 15 = 240 inputs.
    spt = weights_of(model, "spt/projection/kernel")
    assert spt.std() == pytest.approx(math.sqrt(2 / (240 + 192)), rel=0.05)
    assert np.all(weights_of(model, "block_0/mlp/fc1/bias") == 0)
    for path in ("class_token/token", "position_embedding/embedding"):
        assert weights_of(model, path).std() == pytest.approx(1.0, rel=0.1)


def test_vit_patch_embedding_is_drawn_as_the_official_linear():
    model = create_model("vit_32px", depth=1)
    # Linear(4 * 4 * 3, 192), although Keras holds it as a 4x4 convolution.
    kernel = weights_of(model, "patch_embedding/projection/kernel")
    assert kernel.std() == pytest.approx(math.sqrt(2 / (48 + 192)), rel=0.05)


def test_convnext_is_normal_002_with_zero_biases():
    model = create_model("convnext_32px")
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            kernel = to_numpy(layer.kernel)
            if kernel.size >= 1000:
                assert kernel.std() == pytest.approx(0.02, rel=0.1)
            assert np.all(to_numpy(layer.bias) == 0)


def test_mixer_is_lecun_normal_with_a_zero_head():
    model = create_model("mixer_32px", depth=1)
    head = model.get_layer("head")
    assert np.all(to_numpy(head.kernel) == 0)
    assert np.all(to_numpy(head.bias) == 0)
    # The channel MLP's first layer: fan-in 128.
    fc1 = weights_of(model, "block_0/channel_mixing/fc1/kernel")
    assert fc1.std() == pytest.approx(math.sqrt(1 / 128), rel=0.05)
    assert np.abs(fc1).max() <= 2 * math.sqrt(1 / 128) / 0.8796 + 1e-6
    headless = create_model("mixer_32px", depth=1, include_top=False)
    assert "head" not in [layer.name for layer in headless.layers]


def test_schemes_hold_for_weights_created_without_values():
    # Built for shapes only, then given values when a scope closes: the
    # official scheme must survive (nothing is drawn at build time).
    with keras.StatelessScope(initialize_variables=False):
        model = create_model("mixer_32px", depth=1)
        fc1 = [w for w in model.weights if w.path.endswith("fc1/kernel")][0]
        assert fc1._value is None
    with keras.StatelessScope():
        pass
    assert np.all(to_numpy(model.get_layer("head").kernel) == 0)
    fc1 = weights_of(model, "block_0/channel_mixing/fc1/kernel")
    assert fc1.std() == pytest.approx(math.sqrt(1 / 128), rel=0.05)
    assert np.all(weights_of(model, "block_0/channel_mixing/fc1/bias") == 0)


def test_convmixer_keeps_pytorch_defaults():
    model = create_model("convmixer_256_8", depth=1)
    # A depthwise 5x5 kernel has one input channel per group: fan-in 25.
    depthwise = model.get_layer("block_0").depthwise
    bound = 1 / math.sqrt(25)
    kernel, bias = to_numpy(depthwise.kernel), to_numpy(depthwise.bias)
    assert np.abs(kernel).max() <= bound
    assert kernel.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    assert np.abs(bias).max() <= bound and np.any(bias != 0)
    pointwise = to_numpy(model.get_layer("block_0").pointwise.kernel)
    assert np.abs(pointwise).max() <= 1 / math.sqrt(256)


def test_keras_scheme_changes_nothing_and_parameters_stay():
    keras.utils.set_random_seed(0)
    untouched = create_model("convmixer_256_8", depth=1, weight_init="keras")
    keras.utils.set_random_seed(0)
    drawn = create_model("convmixer_256_8", depth=1)
    assert untouched.count_params() == drawn.count_params()
    kernel = to_numpy(untouched.get_layer("block_0").depthwise.kernel)
    assert not np.allclose(
        kernel, to_numpy(drawn.get_layer("block_0").depthwise.kernel)
    )


def test_initialisation_is_seeded():
    def first_kernel():
        keras.utils.set_random_seed(3)
        model = create_model("sl_vit_32px", depth=1)
        return weights_of(model, "block_0/attention/qkv/kernel")

    np.testing.assert_array_equal(first_kernel(), first_kernel())


def test_bad_scheme():
    with pytest.raises(ValueError, match="weight_init='he'"):
        create_model("convnext_32px", weight_init="he")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="weight_init='glorot'"):
        initialize_weights(model, "glorot")


@pytest.mark.parametrize("attention, epsilon", [("lsa", 1e-5), ("mhsa", 1e-6)])
def test_transformer_block_epsilon_follows_the_official_code(
    attention, epsilon
):
    block = layers.TransformerBlock(2, 8, attention=attention)
    assert block.norm_epsilon == epsilon
    explicit = layers.TransformerBlock(
        2, 8, attention=attention, norm_epsilon=1e-3
    )
    assert explicit.norm_epsilon == 1e-3
    clone = layers.TransformerBlock.from_config(block.get_config())
    assert clone.norm_epsilon == epsilon


def test_registered_vits_keep_their_epsilons():
    for name, epsilon in (("sl_vit_32px", 1e-5), ("vit_b16", 1e-6)):
        model = create_model(name, depth=1, input_shape=(32, 32, 3))
        block = model.get_layer("block_0")
        assert block.norm_epsilon == epsilon
        assert block.norm1.epsilon == epsilon
