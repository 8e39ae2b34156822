"""Augmentation runs on every backend: eagerly and inside fit (mixing:
test_mixing.py)."""

import re

import keras
import numpy as np
import pytest

from kvision.data import augmentation
from kvision.data import mix_batch
from tests.helpers import to_numpy


def batch(n=8, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (n, size, size, 3)).astype("float32")


def test_training_mode_changes_images_within_range():
    x = batch()
    augment = augmentation(32, erasing=0.5, seed=1)
    y = to_numpy(augment(x, training=True))
    assert y.shape == x.shape
    assert np.isfinite(y).all()
    assert y.min() >= 0 and y.max() <= 255 + 1e-3  # float rounding
    assert not np.allclose(y, x)


def test_inference_mode_is_the_identity():
    x = batch()
    augment = augmentation(32, erasing=0.5, seed=1)
    np.testing.assert_allclose(to_numpy(augment(x, training=False)), x)


def test_each_part_can_be_switched_off():
    augment = augmentation(
        32, crop_padding=0, flip=False, rand_augment_ops=0, erasing=0.0
    )
    x = batch()
    np.testing.assert_allclose(to_numpy(augment(x, training=True)), x)


@pytest.mark.parametrize("erasing", [0.25, 0.6])
def test_erasing_erases_that_share_of_the_images(erasing):
    # Only erasing on; a flat grey batch shows which images were touched.
    augment = augmentation(
        8,
        crop_padding=0,
        flip=False,
        rand_augment_ops=0,
        erasing=erasing,
        seed=3,
    )
    x = np.full((2000, 8, 8, 3), 128.0, "float32")
    erased = np.any(to_numpy(augment(x, training=True)) != 128.0, (1, 2, 3))
    # Binomial(2000, p): 4 standard deviations is under 0.045.
    assert abs(erased.mean() - erasing) < 0.045


def test_augmentation_inside_fit():
    augment = augmentation(16, seed=0)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            augment,
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(
        batch(16, 16), np.arange(16) % 3, epochs=2, batch_size=8, verbose=0
    )
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: augmentation(0), "image_size=0"),
        (lambda: augmentation(32, crop_padding=-1), "crop_padding=-1"),
        (lambda: augmentation(32, rand_augment_ops=1.5), "rand_augment_ops"),
        (lambda: augmentation(32, erasing=1.0), "erasing=1.0"),
        (lambda: mix_batch(batch(), [0] * 8, 4, "blend"), "method='blend'"),
    ],
)
def test_bad_augmentation_arguments(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


@pytest.mark.parametrize("num_ops", [1, 3])
def test_rand_augment_applies_the_drawn_ops_and_computes_only_them(
    num_ops, monkeypatch
):
    from kvision.data import RandAugment
    from kvision.data import augment
    from tests.helpers import count_calls

    x = batch(6, 16, seed=2)
    ours = RandAugment(num_ops=num_ops, factor=0.6, seed=5)
    theirs = keras.layers.RandAugment(num_ops=num_ops, factor=0.6, seed=5)
    drawn_ops = count_calls(monkeypatch, augment, "_transform_concrete")
    calls = {
        name: count_calls(monkeypatch, getattr(ours, name), "transform_images")
        for name in ours._AUGMENT_LAYERS
    }
    draws = {
        name: count_calls(
            monkeypatch, getattr(ours, name), "get_random_transformation"
        )
        for name in ours._AUGMENT_LAYERS
    }
    for _ in range(6):  # successive batches draw anew, in step with Keras
        drawn = theirs.get_random_transformation(x)
        expected = keras.ops.convert_to_tensor(x)
        for index in to_numpy(drawn["layer_idxes"]).tolist():
            name = theirs._AUGMENT_LAYERS[index]
            expected = getattr(theirs, name).transform_images(
                expected, drawn["transforms"][name]
            )
        got = to_numpy(ours(x, training=True))
        np.testing.assert_allclose(got, to_numpy(expected), atol=1e-3)
        if keras.backend.backend() != "torch":
            # Keras' own layer agrees. (On PyTorch, Keras 3.15's
            # RandomBrightness changes its input in place, so Keras'
            # RandAugment, which computes every operation, brightens every
            # batch there.)
            keras_images = theirs.transform_images(x, drawn)
            np.testing.assert_allclose(got, to_numpy(keras_images), atol=1e-3)
    assert len(drawn_ops) == 6 * num_ops
    # Keras' own operations run only for drawn ones (batched paths aside).
    assert sum(len(c) for c in calls.values()) <= 6 * num_ops
    # Parameters are drawn for every operation once (to learn how many
    # draws each takes), then only for the applied ones; the skipped draws
    # still move the generator on, so it stays in step with Keras'.
    assert sum(len(c) for c in draws.values()) <= 11 + 5 * num_ops
    np.testing.assert_array_equal(
        to_numpy(ours.generator.state.value),
        to_numpy(theirs.generator.state.value),
    )
    np.testing.assert_array_equal(to_numpy(ours(x, training=False)), x)


@pytest.mark.parametrize(
    "data_format, value_range",
    [("channels_last", (0, 255)), ("channels_first", (0, 1))],
)
def test_concrete_equalization_is_keras_equalization(data_format, value_range):
    # RandAugment's eager path replaces Keras' bin-by-bin histogram on JAX
    # with one bincount; the images must be Keras' own, to the bit.
    from kvision.data.augment import _equalize_concrete

    rng = np.random.default_rng(3)
    images = [
        rng.uniform(0, 255, (4, 9, 7, 3)),  # every bin in play
        # Low contrast and whole numbers: bin edges and ties in the table.
        np.round(rng.normal(100, 12, (4, 9, 7, 3))),
        np.concatenate(  # one flat channel is left as it is
            [rng.uniform(0, 255, (4, 9, 7, 2)), np.full((4, 9, 7, 1), 80.0)],
            axis=-1,
        ),
    ]
    layer = keras.layers.Equalization(
        value_range=value_range, data_format=data_format
    )
    for x in images:
        x = (np.clip(x, 0, 255) * value_range[1] / 255).astype("float32")
        if data_format == "channels_first":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        expected = to_numpy(layer(x, training=True))
        assert not np.array_equal(expected, x)
        np.testing.assert_array_equal(
            to_numpy(_equalize_concrete(layer, x)), expected
        )


GEOMETRIC = {
    "rotation": lambda **kw: keras.layers.RandomRotation(0.2, **kw),
    "shear": lambda **kw: keras.layers.RandomShear(0.3, 0.3, **kw),
    "translation": lambda **kw: keras.layers.RandomTranslation(0.3, 0.2, **kw),
}


@pytest.mark.skipif(
    keras.backend.backend() == "tensorflow",
    reason="TensorFlow keeps Keras' native resampling, whose reflect and "
    "wrap borders differ from Keras' PyTorch and JAX ones",
)
@pytest.mark.parametrize("operation", sorted(GEOMETRIC))
@pytest.mark.parametrize(
    "fill_mode, interpolation, data_format",
    [
        ("reflect", "bilinear", "channels_last"),  # RandAugment's
        ("constant", "nearest", "channels_last"),  # the pad-and-crop
        ("wrap", "bilinear", "channels_first"),
        ("nearest", "nearest", "channels_first"),
    ],
)
def test_batched_resampling_is_keras_resampling(
    operation, fill_mode, interpolation, data_format
):
    # Eagerly, off TensorFlow, the geometric operations resample the whole
    # batch at once instead of Keras' image-by-image loop: same images.
    from kvision.data.augment import _affine_concrete
    from kvision.data.augment import _affine_matrix

    layer = GEOMETRIC[operation](
        fill_mode=fill_mode,
        interpolation=interpolation,
        data_format=data_format,
        fill_value=7.0,
        seed=4,
    )
    x = batch(5, 12, seed=6)
    if data_format == "channels_first":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    drawn = layer.get_random_transformation(x)
    # Ours first: Keras' PyTorch resampling swaps the rotation matrix's
    # entries in place.
    got = to_numpy(_affine_concrete(layer, x, _affine_matrix(layer, drawn)))
    expected = to_numpy(layer.transform_images(x, drawn))
    assert not np.allclose(expected, x)
    np.testing.assert_allclose(got, expected, atol=2e-3)


def test_random_translation_is_keras_random_translation():
    from kvision.data import RandomTranslation

    kwargs = dict(fill_mode="constant", interpolation="nearest", seed=3)
    ours = RandomTranslation(0.25, 0.25, **kwargs)
    theirs = keras.layers.RandomTranslation(0.25, 0.25, **kwargs)
    x = batch(6, 16, seed=1)
    for _ in range(2):  # the same draws, batch after batch
        np.testing.assert_allclose(
            to_numpy(ours(x, training=True)),
            to_numpy(theirs(x, training=True)),
            atol=1e-3,
        )
    np.testing.assert_array_equal(to_numpy(ours(x, training=False)), x)
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(ours)
    )
    assert type(clone) is RandomTranslation
    assert clone.get_config() == ours.get_config()


def test_rand_augment_round_trips():
    # (Traced, inside a compiled training step, it runs in
    # test_augmentation_inside_fit, whose augmentation holds one.)
    from kvision.data import RandAugment

    layer = RandAugment(num_ops=2, factor=0.3, seed=1)
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert type(clone) is RandAugment
    assert clone.get_config() == layer.get_config()
