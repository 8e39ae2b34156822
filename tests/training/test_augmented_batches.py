"""The training batches: prefetched in a background thread, yet the same
batches, in the same order, as made one at a time."""

import threading

import numpy as np
import pytest

from kvision.training import get_recipe
from kvision.training.fit import AugmentedBatches


def dataset(prefetch, seed=0):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (40, 16, 16, 3), dtype="uint8")
    y = rng.integers(0, 4, 40)
    # Every random part of the recipe: crop, flip, RandAugment, erasing,
    # MixUp/CutMix on half of the batches.
    recipe = get_recipe("sl_vit_32px").replace(batch_size=16, image_size=16)
    return AugmentedBatches(x, y, 4, recipe, seed=seed, prefetch=prefetch)


def as_keras_asks(batches, epochs=2):
    """Every batch of every epoch, in order, then ``on_epoch_end``."""
    made = []
    for _ in range(epochs):
        made += [batches[i] for i in range(len(batches))]
        batches.on_epoch_end()
    return made


def test_prefetched_batches_are_the_batches_made_one_at_a_time():
    ahead, serial = dataset(prefetch=True), dataset(prefetch=False)
    first, second = as_keras_asks(ahead), as_keras_asks(serial)
    assert len(first) == 6
    for (x1, y1), (x2, y2) in zip(first, second, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    # (plus the next epoch's first batch, made ahead)
    assert ahead.mixed[: len(serial.mixed)] == serial.mixed
    # Mixing and augmentation happened: the batches are not the images.
    assert {"mixup", "cutmix"} & set(ahead.mixed)
    assert ahead.wait_seconds > 0


def test_batches_asked_out_of_order_stay_seeded():
    def pattern(batches):
        return [batches[i] for i in (0, 2, 1, 1, 0)]

    once, twice = pattern(dataset(True)), pattern(dataset(True))
    for (x1, y1), (x2, y2) in zip(once, twice, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    # 40 images in batches of 16: batch 2 holds the last 8.
    assert [len(x) for x, _ in once] == [16, 8, 16, 16, 16]


def test_the_next_batch_is_made_in_the_background():
    threads = []
    for prefetch in (True, False):
        batches = dataset(prefetch)
        augment = batches.augment

        def recording(images, training, augment=augment, prefetch=prefetch):
            threads.append((prefetch, threading.current_thread().name))
            return augment(images, training=training)

        batches.augment = recording
        as_keras_asks(batches, epochs=1)
    background = {name for fetching, name in threads if fetching}
    assert any(name.startswith("kvision-batches") for name in background)
    assert {name for fetching, name in threads if not fetching} == {
        threading.main_thread().name
    }


def test_auto_prefetches_only_off_the_cpu():
    from kvision._devices import default_platform

    batches = dataset(prefetch="auto")
    assert batches.prefetch == (default_platform() != "cpu")
    assert dataset(prefetch=True).prefetch is True


@pytest.mark.parametrize("prefetch", ["yes", 1, None])
def test_bad_prefetch_names_the_argument(prefetch):
    with pytest.raises(ValueError, match="prefetch"):
        dataset(prefetch=prefetch)
