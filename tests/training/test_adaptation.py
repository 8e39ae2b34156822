"""Applying a paper's recipe to a dataset: each rule, and the papers' values.

Cheap: no model is trained here.
"""

import re

import pytest

from kvision.training import MIN_IMAGES_SEEN
from kvision.training import MIN_STEPS_PER_EPOCH
from kvision.training import PAPER_RECIPES
from kvision.training import adapt_recipe
from kvision.training import get_recipe
from kvision.training.recipes import family

DIGITS = 1437  # scikit-learn digits, the training split


def test_batch_is_bounded_by_steps_per_epoch():
    recipe = adapt_recipe(get_recipe("convmixer_256_8"), DIGITS, 32)
    # 1437 / 20 = 71.85 -> 64, 23 steps per epoch.
    assert recipe.batch_size == 64
    assert -(-DIGITS // recipe.batch_size) >= MIN_STEPS_PER_EPOCH
    # CIFAR-10 has enough images for the paper's own batch.
    cifar = adapt_recipe(get_recipe("convmixer_256_8"), 50_000, 32)
    assert cifar.batch_size == 512 and cifar.learning_rate == 0.05
    assert "batch_size" not in dict(cifar.adaptations)
    # Tiny sets keep a usable batch.
    assert adapt_recipe(get_recipe("vit_32px"), 64, 32).batch_size == 16


@pytest.mark.parametrize(
    "model, paper_lr, rule, applied",
    [
        ("convnext_32px", 4e-3, "sqrt", 4e-3 * (64 / 4096) ** 0.5),
        ("davit_32px", 1e-3, "sqrt", 1e-3 * (64 / 1024) ** 0.5),
        ("convmixer_256_8", 0.05, "linear", 0.05 * 64 / 512),
        ("sl_vit_32px", 1e-3, "none", 1e-3),
        ("vit_32px", 1e-3, "none", 1e-3),
    ],
)
def test_learning_rate_follows_each_papers_rule(model, paper_lr, rule, applied):
    recipe = adapt_recipe(get_recipe(model), DIGITS, 32)
    assert recipe.paper.learning_rate == paper_lr
    assert recipe.lr_scaling == rule
    assert recipe.learning_rate == pytest.approx(applied)
    assert "learning_rate" in dict(recipe.adaptations)


def test_linear_rule():
    recipe = get_recipe("convnext_32px").replace(lr_scaling="linear")
    assert adapt_recipe(recipe, DIGITS, 32).learning_rate == pytest.approx(
        4e-3 * 64 / 4096
    )


def test_warmup_keeps_its_share_when_epochs_change():
    recipe = adapt_recipe(get_recipe("convnext_32px"), DIGITS, 32, epochs=30)
    assert recipe.epochs == 30
    assert recipe.warmup_epochs == pytest.approx(20 * 30 / 300)
    assert "warmup_epochs" in dict(recipe.adaptations)


def test_crop_and_flips_fit_the_images():
    sl_vit = get_recipe("sl_vit_32px")
    assert adapt_recipe(sl_vit, DIGITS, 16).crop_padding == 2
    assert adapt_recipe(sl_vit, DIGITS, 64).crop_padding == 8
    # ImageNet recipes: an eighth of the side on small images.
    convnext = adapt_recipe(get_recipe("convnext_32px"), DIGITS, 32)
    assert convnext.image_size == 32 and convnext.crop_padding == 4
    assert adapt_recipe(sl_vit, DIGITS, 32).flip
    digits = adapt_recipe(sl_vit, DIGITS, 32, mirror_invariant=False)
    assert not digits.flip and "flip" in dict(digits.adaptations)


HEAVY = ("rand_augment_ops", "erasing", "mixup", "cutmix")


def test_short_runs_train_without_heavy_augmentation():
    # 30 epochs of digits show the model 43,110 images.
    short = adapt_recipe(get_recipe("vit_32px"), DIGITS, 32, epochs=30)
    rules = dict(short.adaptations)
    for field in HEAVY:
        assert getattr(short, field) == 0
        assert getattr(short.paper, field) > 0
        assert rules[field].startswith("off: a short run, 43,110 images")
    # What is not heavy stays: the crop, stochastic depth, smoothing.
    assert (short.crop_padding, short.drop_path_rate) == (4, 0.1)
    assert short.label_smoothing == 0.1
    # The papers' own runs keep theirs: ConvMixer's 25 CIFAR epochs
    # (1.25 million images) is the shortest.
    convmixer = adapt_recipe(get_recipe("convmixer_256_8"), 50_000, 32)
    assert (convmixer.rand_augment_ops, convmixer.rand_augment_factor) == (
        2,
        0.4,
    )
    assert not set(HEAVY) & set(dict(convmixer.adaptations))
    sl_vit = adapt_recipe(get_recipe("sl_vit_32px"), 50_000, 32)
    assert (sl_vit.mixup, sl_vit.cutmix, sl_vit.erasing) == (1.0, 1.0, 0.25)
    # The threshold itself, and switching the rule off.
    at = adapt_recipe(get_recipe("vit_32px"), 10_000, 32, epochs=100)
    assert 100 * 10_000 == MIN_IMAGES_SEEN and at.mixup == 1.0
    below = adapt_recipe(get_recipe("vit_32px"), 10_000, 32, epochs=99)
    assert below.mixup == 0.0
    kept = adapt_recipe(get_recipe("vit_32px"), DIGITS, 32, min_images_seen=0)
    assert all(getattr(kept, f) == getattr(kept.paper, f) for f in HEAVY)
    with pytest.raises(ValueError, match="min_images_seen=-1"):
        adapt_recipe(get_recipe("vit_32px"), DIGITS, 32, min_images_seen=-1)


def test_asked_batch_size_still_scales_the_learning_rate():
    recipe = adapt_recipe(
        get_recipe("convnext_32px"), DIGITS, 32, batch_size=32
    )
    assert recipe.batch_size == 32
    assert recipe.learning_rate == pytest.approx(4e-3 * (32 / 4096) ** 0.5)


def test_re_adapting_starts_from_the_paper():
    once = adapt_recipe(get_recipe("convnext_32px"), DIGITS, 32)
    twice = adapt_recipe(once, 50_000, 32)
    assert twice.paper == get_recipe("convnext_32px")
    assert twice.batch_size == 2048
    assert twice.learning_rate == pytest.approx(4e-3 * (2048 / 4096) ** 0.5)


def test_description_shows_paper_and_applied_values_side_by_side():
    recipe = adapt_recipe(
        get_recipe("convmixer_256_8"), DIGITS, 32, mirror_invariant=False
    )
    text = str(recipe)
    assert text == recipe.describe()
    row = next(line for line in text.splitlines() if "batch_size" in line)
    assert re.search(r"batch_size\s+512\s+64\s+>= 20 steps per epoch", row)
    row = next(line for line in text.splitlines() if "learning_rate" in line)
    assert re.search(r"0\.05\s+0\.00625\s+linear", row)
    assert "departures from the official code" in text
    # The CLI prints it before its JSON: no braces in the text.
    assert "{" not in text


def test_published_recipe_describes_itself_without_changes():
    recipe = get_recipe("sl_vit_32px")
    assert recipe.paper is None and recipe.adaptations == ()
    assert "AutoAugment" in recipe.describe()


def test_mixing_values_are_the_sources_alphas_and_probabilities():
    convnext = get_recipe("convnext_tiny")
    assert (convnext.mixup, convnext.cutmix) == (0.8, 1.0)
    assert (convnext.mix_prob, convnext.mix_switch_prob) == (1.0, 0.5)
    sl_vit = get_recipe("sl_vit_32px")
    assert (sl_vit.mixup, sl_vit.cutmix) == (1.0, 1.0)
    assert (sl_vit.mix_prob, sl_vit.mix_switch_prob) == (0.5, 0.5)
    with pytest.raises(ValueError, match="mix_prob=1.5"):
        sl_vit.replace(mix_prob=1.5)
    with pytest.raises(ValueError, match="lr_scaling='cubic'"):
        sl_vit.replace(lr_scaling="cubic")


@pytest.mark.parametrize(
    "model, rate",
    [
        ("convnext_tiny", 0.1),
        ("convnext_small", 0.4),
        ("convnext_base", 0.5),
        ("convnext_large", 0.5),
    ],
)
def test_convnext_stochastic_depth_per_size(model, rate):
    assert get_recipe(model).drop_path_rate == rate


def test_convmixer_recipes_follow_one_official_command_each():
    cifar = get_recipe("convmixer_256_8")
    # convmixer-cifar10's README: --lr-max=0.05 --ra-n=2 --ra-m=12
    # --wd=0.005 --scale=1.0 --jitter=0 --reprob=0 (batch 512, 25 epochs).
    assert (cifar.learning_rate, cifar.weight_decay) == (0.05, 0.005)
    assert (cifar.rand_augment_ops, cifar.rand_augment_factor) == (2, 0.4)
    assert (cifar.erasing, cifar.clipnorm, cifar.crop_padding) == (0, None, 0)
    assert (cifar.batch_size, cifar.epochs) == (512, 25)
    for name in ("convmixer_1536_20", "convmixer_768_32", "convmixer_512_12"):
        assert family(name) == "convmixer_imagenet"
    imagenet = get_recipe("convmixer_1536_20")
    assert imagenet.epochs == 150 and imagenet.optimizer_epsilon == 1e-3
    assert (imagenet.mixup, imagenet.cutmix, imagenet.erasing) == (
        0.5,
        0.5,
        0.25,
    )
    assert imagenet.clipnorm == 1.0 and imagenet.rand_augment_factor == 0.9
    assert get_recipe("convmixer_768_32").epochs == 300


def test_every_recipe_says_where_it_departs():
    for recipe in PAPER_RECIPES.values():
        assert recipe.departures, recipe.name
    departures = " ".join(get_recipe("sl_vit_32px").departures)
    for topic in ("AutoAugment", "--ra 3", "[0, 1]"):
        assert topic in departures


def test_bad_adaptation_arguments():
    recipe = get_recipe("vit_32px")
    with pytest.raises(ValueError, match="num_train=0"):
        adapt_recipe(recipe, 0, 32)
    with pytest.raises(ValueError, match="image_size=-1"):
        adapt_recipe(recipe, 100, -1)
