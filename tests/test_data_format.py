"""Keras' global image data format never changes what a layer or model does.

Every image layer works on its own ``data_format`` (resolved once, at
construction, from the global setting when ``None``); its inner
convolutions and pooling must not follow the global setting. Models are
channels-last whatever the global setting is.
"""

import keras
import numpy as np
import pytest

from kvision import data
from kvision import models
from tests import helpers
from tests.layer_cases import CASES

IMAGE_CASES = [case for case in CASES if len(case.input_shape) == 3]


@pytest.fixture
def channels_first_globally():
    before = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    yield
    keras.config.set_image_data_format(before)


def _run(case, x, **overrides):
    layer = case.make(**overrides)
    outputs, _ = helpers.call(layer, x, case)
    return layer, helpers.to_numpy(outputs)


def _reference(case, x):
    """The layer's output and weights under the default global setting."""
    assert keras.config.image_data_format() == "channels_last"
    layer, outputs = _run(case, x)
    return layer.get_weights(), outputs


def _same_layer(case, x, weights, **overrides):
    layer = case.make(**overrides)
    helpers.call(layer, x, case)  # builds it
    layer.set_weights(weights)
    outputs, _ = helpers.call(layer, x, case)
    return layer, helpers.to_numpy(outputs)


def test_there_are_image_cases():
    names = {case.cls.__name__ for case in IMAGE_CASES}
    assert {"PatchEmbedding", "ConvMixerBlock", "ConvNeXtStem"} <= names


@pytest.mark.parametrize("case", IMAGE_CASES, ids=lambda c: c.id)
def test_image_layer_ignores_the_global_data_format(case):
    # A layer with a `data_format` gets its case's (channels-last unless
    # the case says otherwise); a layer without one is channels-last only.
    x = helpers.random_input(case)
    weights, want = _reference(case, x)
    overrides = {}
    if "data_format" in helpers.init_parameters(case.cls):
        overrides["data_format"] = case.kwargs.get(
            "data_format", "channels_last"
        )
    keras.config.set_image_data_format("channels_first")
    try:
        layer, got = _same_layer(case, x, weights, **overrides)
    finally:
        keras.config.set_image_data_format("channels_last")
    if overrides:
        assert layer.data_format == overrides["data_format"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# DepthwiseConv2D's shifted path is channels-last only by design, and a
# case that fixes its layout explicitly has no `None` to resolve.
NONE_CASES = [
    case
    for case in IMAGE_CASES
    if "data_format" in helpers.init_parameters(case.cls)
    and "data_format" not in case.kwargs
    and case.kwargs.get("implementation") != "shifted"
]


@pytest.mark.parametrize("case", NONE_CASES, ids=lambda c: c.id)
def test_none_follows_the_global_setting_on_nchw_input(
    case, channels_first_globally
):
    # Reference in NHWC with an explicit layout, then the same weights with
    # `data_format=None` resolved to channels-first, fed NCHW.
    x = helpers.random_input(case)
    layer, want = _run(case, x, data_format="channels_last")
    weights = layer.get_weights()
    nchw = np.transpose(x, (0, 3, 1, 2))
    layer, got = _same_layer(case, nchw, weights)
    assert layer.data_format == "channels_first"
    if got.ndim == 4:
        got = np.transpose(got, (0, 2, 3, 1))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# One tiny configuration per existing family, with and without the head.
SMALL_MODELS = {
    "vit_32px": dict(depth=1, embed_dim=16, num_heads=2, head_dim=8),
    "sl_vit_32px": dict(depth=1, embed_dim=16, num_heads=2, head_dim=8),
    "convmixer_256_8": dict(depth=1, dim=8),
    "mixer_32px": dict(
        depth=1, hidden_dim=16, tokens_mlp_dim=8, channels_mlp_dim=16
    ),
    "convnext_32px": dict(depths=(1, 1), dims=(8, 16)),
}
HEADS = {
    "top": dict(),
    "avg": dict(include_top=False, pooling="avg"),
    "max": dict(include_top=False, pooling="max"),
}


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("name", sorted(SMALL_MODELS))
def test_models_are_channels_last_under_any_global_setting(name, head):
    kwargs = {**SMALL_MODELS[name], **HEADS[head]}
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3))
    x = x.astype("float32")
    reference = models.create_model(name, **kwargs)
    want = helpers.to_numpy(reference(x, training=False))
    keras.config.set_image_data_format("channels_first")
    try:
        model = models.create_model(name, **kwargs)
    finally:
        keras.config.set_image_data_format("channels_last")
    model.set_weights(reference.get_weights())
    got = helpers.to_numpy(model(x, training=False))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_augmentation_is_channels_last_under_any_global_setting(
    channels_first_globally,
):
    # Flipping horizontally reverses the columns, not the channels.
    x = np.random.default_rng(0).uniform(0, 255, (1, 4, 4, 3))
    x = x.astype("float32")
    augment = data.augmentation(4, crop_padding=0, rand_augment_ops=0, seed=0)
    outputs = [helpers.to_numpy(augment(x, training=True)) for _ in range(8)]
    for y in outputs:
        assert y.shape == x.shape
        assert np.array_equal(y, x) or np.array_equal(y, x[:, :, ::-1])
    assert any(not np.array_equal(y, x) for y in outputs)


def test_full_augmentation_is_the_same_under_either_global_setting():
    x = np.random.default_rng(1).uniform(0, 255, (4, 8, 8, 3))
    x = x.astype("float32")

    def augmented():
        augment = data.augmentation(8, erasing=0.5, seed=3)
        return helpers.to_numpy(augment(x, training=True))

    want = augmented()
    keras.config.set_image_data_format("channels_first")
    try:
        got = augmented()
    finally:
        keras.config.set_image_data_format("channels_last")
    np.testing.assert_allclose(got, want, atol=1e-4)
