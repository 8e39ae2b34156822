"""MixUp and CutMix as the sources apply them, down to the training batches.

Each test image is one flat value per class, so a mixed image tells how
much of each partner it holds, and its soft label must say the same.
"""

import numpy as np
import pytest

from kvision.data import choose_mixing
from kvision.data import mix_batch
from kvision.training import get_recipe
from kvision.training.fit import AugmentedBatches

NUM_CLASSES = 8


def flat_images(size=16):
    """Image ``i`` is the constant ``10 * (i + 1)``; its label is ``i``."""
    values = 10.0 * np.arange(1, NUM_CLASSES + 1, dtype="float32")
    images = np.broadcast_to(values[:, None, None, None], (8, size, size, 3))
    return images.copy(), np.arange(NUM_CLASSES), values


def test_mixup_blends_images_and_labels_with_one_weight():
    images, labels, values = flat_images()
    mixed, soft = mix_batch(images, labels, NUM_CLASSES, "mixup", 1.0, seed=3)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    # Each image is the label-weighted blend of the class values ...
    np.testing.assert_allclose(mixed[:, 0, 0, 0], soft @ values, rtol=1e-5)
    # ... with one weight for the whole batch (timm's "batch" mode).
    kept = soft[np.arange(NUM_CLASSES), labels]
    partnered = kept < 1.0
    assert partnered.any()
    np.testing.assert_allclose(kept[partnered], kept[partnered][0], atol=1e-6)


def test_cutmix_pastes_a_box_and_weights_labels_by_its_area():
    images, labels, values = flat_images(size=32)
    mixed, soft = mix_batch(images, labels, NUM_CLASSES, "cutmix", 1.0, seed=5)
    own = mixed == images
    for i in range(NUM_CLASSES):
        kept_area = own[i, ..., 0].mean()
        assert soft[i, i] == pytest.approx(kept_area, abs=1e-6)
        pasted = mixed[i][~own[i]]
        if pasted.size:  # one partner's flat value fills the box
            partner = int(np.argmax(soft[i] * (np.arange(NUM_CLASSES) != i)))
            np.testing.assert_allclose(pasted, values[partner])
    rows, cols = np.nonzero(~own[0, ..., 0])
    if rows.size:  # the box is a rectangle
        assert rows.size == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)


@pytest.mark.parametrize("alpha", [0.2, 1.0])
def test_mixing_weight_is_beta_alpha_alpha(alpha):
    images, labels, _ = flat_images(size=2)
    rng = np.random.default_rng(0)
    weights = []
    for _ in range(1500):
        _, soft = mix_batch(
            images, labels, NUM_CLASSES, "mixup", alpha, rng=rng
        )
        weights.append(soft[0, 0])
    # Var(Beta(a, a)) = 1 / (4 (2a + 1)); a partner of itself keeps 1.0,
    # which a permutation of 8 gives 1/8 of the time: keep the others.
    weights = np.array(weights)
    weights = weights[weights < 1.0]
    assert weights.mean() == pytest.approx(0.5, abs=0.04)
    assert weights.var() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.2)


def test_choose_mixing_follows_probability_and_switch():
    rng = np.random.default_rng(0)

    def shares(**kwargs):
        draws = [choose_mixing(rng, **kwargs) for _ in range(4000)]
        methods = [d and d[0] for d in draws]
        return {m: methods.count(m) / len(methods) for m in set(methods)}

    # The SL-ViT script: half of the batches, half of those CutMix.
    sl_vit = shares(mixup=1.0, cutmix=1.0, prob=0.5, switch_prob=0.5)
    assert sl_vit[None] == pytest.approx(0.5, abs=0.03)
    assert sl_vit["cutmix"] == pytest.approx(0.25, abs=0.03)
    # timm / ConvNeXt: every batch.
    timm = shares(mixup=0.8, cutmix=1.0)
    assert None not in timm and timm["mixup"] == pytest.approx(0.5, abs=0.03)
    assert shares(mixup=0.5) == {"mixup": 1.0}
    assert shares(cutmix=0.5) == {"cutmix": 1.0}
    assert shares() == {None: 1.0}
    assert choose_mixing(rng, 0.8, 1.0)[1] in (0.8, 1.0)


@pytest.mark.parametrize(
    "model, mixed_share", [("sl_vit_32px", 0.5), ("convnext_32px", 1.0)]
)
def test_training_batches_mix_as_the_recipe_says(model, mixed_share):
    # No other augmentation, so every change to an image is the mixing.
    recipe = get_recipe(model).replace(
        batch_size=8,
        rand_augment_ops=0,
        erasing=0.0,
        flip=False,
        crop_padding=0,
    )
    images, labels, values = flat_images()
    x = np.tile(images, (5, 1, 1, 1)).astype("uint8")
    y = np.tile(labels, 5)
    batches = AugmentedBatches(x, y, NUM_CLASSES, recipe, seed=0)
    for _ in range(20):
        for index in range(len(batches)):
            batch_x, batch_y = batches[index]
            np.testing.assert_allclose(batch_y.sum(axis=1), 1.0, atol=1e-5)
            pixels = batch_x.reshape(len(batch_x), -1) * 255.0
            # Every pixel is one class's value, or MixUp's blend of two:
            # the image's mean is its soft label's mean value.
            np.testing.assert_allclose(
                pixels.mean(axis=1), batch_y @ values, rtol=1e-4
            )
        batches.on_epoch_end()
    methods = batches.mixed
    assert len(methods) == 100
    share = 1 - methods.count(None) / len(methods)
    assert share == pytest.approx(mixed_share, abs=0.12)
    assert {"mixup", "cutmix"} <= set(methods)


def test_mix_batch_rejects_bad_alpha():
    images, labels, _ = flat_images(size=2)
    with pytest.raises(ValueError, match="alpha=0"):
        mix_batch(images, labels, NUM_CLASSES, "mixup", alpha=0)
