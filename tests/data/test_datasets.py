"""Datasets: offline ones for real, CIFAR through a stand-in loader."""

import re

import keras
import numpy as np
import pytest

from kvision.data import SHAPE_NAMES
from kvision.data import class_names
from kvision.data import load_dataset
from kvision.data import make_shapes
from kvision.data.images import resize_bilinear


def test_shapes_are_deterministic_and_well_formed():
    images, labels, masks = make_shapes(300, image_size=24, seed=5)
    again = make_shapes(300, image_size=24, seed=5)
    for a, b in zip((images, labels, masks), again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(images, make_shapes(300, 24, seed=6)[0])
    assert images.shape == (300, 24, 24, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and masks.dtype == bool
    assert set(labels) == set(range(len(SHAPE_NAMES)))
    area = masks.mean(axis=(1, 2))
    assert area.min() > 0.02 and area.max() < 0.5


def test_shape_masks_mark_the_object():
    # Inside the mask a pixel is the object's one colour plus slight
    # shading; outside is the textured background.
    images, _, masks = make_shapes(200, seed=1)
    pixels = images.astype("float32")
    inside = [pixels[i][masks[i]].std(axis=0).mean() for i in range(200)]
    outside = [pixels[i][~masks[i]].std(axis=0).mean() for i in range(200)]
    assert np.median(inside) < 12
    assert np.median(outside) > 2 * np.median(inside)


# The probe's iteration cap is deliberate; how far it converges is not the
# point of the test.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_shapes_defeat_a_linear_probe():
    from sklearn.linear_model import LogisticRegression

    (x, y), (x_test, y_test) = load_dataset(
        "shapes", num_train=2000, num_test=1000
    )

    def flat(a):
        return a.reshape(len(a), -1).astype("float32") / 255

    probe = LogisticRegression(max_iter=200).fit(flat(x), y)
    # Chance is 1/6; measured with 10,000 training images: 0.18.
    assert probe.score(flat(x_test), y_test) < 0.3


def test_load_shapes_with_masks():
    train, test = load_dataset(
        "shapes", image_size=16, num_train=10, num_test=4, return_masks=True
    )
    assert [a.shape for a in train] == [(10, 16, 16, 3), (10,), (10, 16, 16)]
    assert [a.shape for a in test] == [(4, 16, 16, 3), (4,), (4, 16, 16)]
    assert class_names("shapes") == SHAPE_NAMES


def test_digits_are_real_stratified_and_seeded():
    (x, y), (x_test, y_test) = load_dataset("digits")
    assert len(x) + len(x_test) == 1797 and abs(len(x_test) - 360) <= 5
    assert x.shape[1:] == (32, 32, 3) and x_test.shape[1:] == (32, 32, 3)
    assert x.dtype == np.uint8 and y.dtype == np.int64
    assert x.max() == 255 and x.min() == 0
    np.testing.assert_array_equal(x[..., 0], x[..., 2])  # grey as RGB
    share = np.bincount(y_test, minlength=10) / np.bincount(y, minlength=10)
    assert np.all(np.abs(share - 0.25) < 0.02)  # 20 % test, every class
    (x2, _), _ = load_dataset("digits", seed=1)
    assert not np.array_equal(x, x2)
    (small, _), _ = load_dataset("digits", image_size=16, num_train=5)
    assert small.shape == (5, 16, 16, 3)
    assert class_names("digits")[7] == "7"


def test_resize_matches_keras_bilinear():
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype("float32")
    ours = resize_bilinear(x, 32)
    theirs = keras.ops.convert_to_numpy(
        keras.ops.image.resize(x, (32, 32), interpolation="bilinear")
    )
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_cifar_offline_error_names_the_offline_datasets(monkeypatch):
    def offline():
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(RuntimeError, match="digits, shapes") as error:
        load_dataset("cifar10")
    assert "cifar10" in str(error.value)


def test_cifar_arrays_are_normalised(monkeypatch):
    rng = np.random.default_rng(0)

    def fake():
        def split(n):
            x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            return x, rng.integers(0, 100, (n, 1))

        return split(6), split(4)

    monkeypatch.setattr(keras.datasets.cifar100, "load_data", fake)
    (x, y), (x_test, y_test) = load_dataset("cifar100", image_size=16)
    assert x.shape == (6, 16, 16, 3) and x.dtype == np.uint8
    assert y.shape == (6,) and y.dtype == np.int64
    assert len(class_names("cifar100")) == 100
    assert class_names("cifar10")[0] == "airplane"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="mnist"), "name='mnist'"),
        (dict(name="digits", return_masks=True), "return_masks=True"),
        (dict(name="shapes", image_size=0), "image_size=0"),
        (dict(name="shapes", num_train=-1), "num_train=-1"),
        (dict(name="shapes", image_size=8), "image_size=8"),
    ],
)
def test_bad_dataset_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_dataset(**kwargs)
