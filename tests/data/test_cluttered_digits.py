"""The cluttered digits: deterministic, well formed, masks on the strokes,
and learnable by a small CNN but not by a linear model."""

import re

import numpy as np
import pytest

from kvision.data import class_names
from kvision.data import has_masks
from kvision.data import load_dataset
from kvision.data import make_cluttered_digits
from kvision.data import mirror_invariant
from kvision.data.datasets import DATASETS
from kvision.data.datasets import digit_split


def test_deterministic_and_well_formed():
    images, labels, masks = make_cluttered_digits(200, 24, seed=4)
    again = make_cluttered_digits(200, 24, seed=4)
    for a, b in zip((images, labels, masks), again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(images, make_cluttered_digits(200, 24, 5)[0])
    assert images.shape == (200, 24, 24, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and masks.dtype == bool
    assert masks.shape == (200, 24, 24)
    assert set(labels) == set(range(10))
    area = masks.mean(axis=(1, 2))
    assert area.min() > 0.01 and area.max() < 0.4


def test_train_and_test_come_from_different_handwriting():
    (train, _), (test, _) = digit_split(seed=0)
    # scikit-learn's 1,797 digits, about a fifth held out for testing.
    assert len(train) + len(test) == 1797 and abs(len(test) - 360) <= 1
    # No test digit is also a training digit.
    train_rows = {row.tobytes() for row in train.reshape(len(train), -1)}
    shared = [
        r for r in test.reshape(len(test), -1) if r.tobytes() in train_rows
    ]
    assert len(shared) < 5  # scikit-learn's digits hold a few duplicates
    one = make_cluttered_digits(50, seed=0, split="train")[0]
    other = make_cluttered_digits(50, seed=0, split="test")[0]
    assert not np.array_equal(one, other)


def test_masked_pixels_are_the_digit_colour():
    # Without clutter, a pixel under the mask is the digit's one colour;
    # outside is the texture (and the blended edge of the strokes).
    images, _, masks = make_cluttered_digits(200, seed=1, clutter=(0, 0))
    pixels = images.astype("float32")
    inside = [pixels[i][masks[i]].std(axis=0).mean() for i in range(200)]
    outside = [pixels[i][~masks[i]].std(axis=0).mean() for i in range(200)]
    assert np.median(inside) < 0.5 * np.median(outside)


def test_masks_cover_the_digit_strokes():
    _, _, masks = make_cluttered_digits(200, seed=1, clutter=(0, 0))
    # The strokes are the digit: the mask's rows and columns span the
    # digit's drawn size (a third to two thirds of the image side).
    rows = masks.any(axis=2).sum(axis=1) / 32
    assert np.all(rows >= 0.2) and np.all(rows <= 2 / 3 + 1e-6)


def test_load_dataset_interface():
    train, test = load_dataset(
        "cluttered_digits", num_train=30, num_test=10, return_masks=True
    )
    assert [a.shape for a in train] == [(30, 32, 32, 3), (30,), (30, 32, 32)]
    assert [a.shape for a in test] == [(10, 32, 32, 3), (10,), (10, 32, 32)]
    (x, y), _ = load_dataset(
        "cluttered_digits", image_size=48, num_train=5, num_test=5
    )
    assert x.shape == (5, 48, 48, 3) and y.shape == (5,)
    assert class_names("cluttered_digits") == tuple("0123456789")
    assert not mirror_invariant("cluttered_digits")
    assert has_masks("cluttered_digits")
    with pytest.raises(ValueError, match=re.escape("name='digits'")):
        load_dataset("digits", return_masks=True)
    with pytest.raises(ValueError, match="image_size=8"):
        make_cluttered_digits(4, image_size=8)
    with pytest.raises(ValueError, match="split='val'"):
        make_cluttered_digits(4, split="val")


def test_has_masks_says_which_datasets_load_with_masks():
    # The notebooks ask it before load_dataset(..., return_masks=True),
    # which refuses the others before downloading anything.
    for name in DATASETS:
        if has_masks(name):
            (_, _, masks), _ = load_dataset(
                name, num_train=2, num_test=2, return_masks=True
            )
            assert masks.shape == (2, 32, 32) and masks.dtype == bool
        else:
            with pytest.raises(ValueError, match="return_masks=True"):
                load_dataset(name, return_masks=True)
    assert [has_masks(n) for n in ("digits", "shapes", "cifar10")] == [
        False,
        True,
        False,
    ]
    with pytest.raises(ValueError, match=re.escape("name='mnist'")):
        has_masks("mnist")


# The probe's iteration cap is deliberate; how far it converges is not the
# point of the test.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_linear_probe_stays_near_chance():
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    (x, y), (x_test, y_test) = load_dataset(
        "cluttered_digits", num_train=2000, num_test=1000
    )

    def flat(a):
        return a.reshape(len(a), -1).astype("float32") / 255

    with threadpool_limits(limits=1):
        probe = LogisticRegression(max_iter=100).fit(flat(x), y)
    # Chance is 0.1; measured: see make_cluttered_digits' docstring.
    assert probe.score(flat(x_test), y_test) < 0.25
