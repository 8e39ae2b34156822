"""The input range every model takes, validation splits, class names."""

import numpy as np
import pytest

from kvision import data


def test_to_model_range_scales_integer_pixels_and_keeps_unit_floats():
    pixels = np.array([[0, 128, 255]], "uint8")
    scaled = data.to_model_range(pixels)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, [[0.0, 128 / 255, 1.0]], rtol=1e-6)
    unit = np.array([0.0, 0.5, 1.0], "float64")
    assert data.to_model_range(unit).dtype == np.float32
    np.testing.assert_array_equal(data.to_model_range(unit), unit)


@pytest.mark.parametrize(
    "images, message",
    [
        (np.array([0.0, 255.0]), "divide 0-255 values by 255"),
        (np.array([-1, 3]), r"\[0, 255\]"),
        (np.array([True, False]), "images.dtype=bool"),
    ],
)
def test_to_model_range_rejects_what_is_not_an_image(images, message):
    with pytest.raises(ValueError, match=message):
        data.to_model_range(images)


def test_split_validation_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(5), 20)
    images = np.arange(100)[:, None]
    (x, y), (x_val, y_val) = data.split_validation(
        images, labels, fraction=0.2, seed=3
    )
    assert np.bincount(y_val).tolist() == [4] * 5
    assert len(x) == 80 and not set(x[:, 0]) & set(x_val[:, 0])
    again = data.split_validation(images, labels, fraction=0.2, seed=3)
    np.testing.assert_array_equal(again[1][0], x_val)
    for bad in (0, 1, 1.5, True):
        with pytest.raises(ValueError, match="fraction"):
            data.split_validation(images, labels, fraction=bad)
    with pytest.raises(ValueError, match="same length"):
        data.split_validation(images[:5], labels)


def test_cifar100_has_its_100_fine_labels_in_label_order():
    names = data.class_names("cifar100")
    assert len(names) == len(set(names)) == 100
    # The fine labels are numbered in alphabetical order.
    assert list(names) == sorted(names)
    assert names[0] == "apple" and names[-1] == "worm"
    assert names[30] == "dolphin" and names[99] == "worm"
