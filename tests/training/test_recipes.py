"""Recipes reach the optimizer, and weight decay spares what it should."""

import re

import keras
import numpy as np
import pytest

from kvision import layers
from kvision.models import create_model
from kvision.training import PiecewiseLinear
from kvision.training import build_optimizer
from kvision.training import get_recipe
from kvision.training import learning_rate_schedule
from kvision.training import one_cycle
from kvision.training import warmup_cosine
from tests.helpers import to_numpy


def rates(schedule, steps):
    return np.array([float(to_numpy(schedule(s))) for s in steps])


def test_warmup_cosine_rises_then_decays_to_zero():
    schedule = warmup_cosine(1e-3, total_steps=100, warmup_steps=10)
    lr = rates(schedule, range(101))
    np.testing.assert_allclose(lr[[0, 5, 10]], [0.0, 5e-4, 1e-3], atol=1e-9)
    assert np.all(np.diff(lr[10:]) <= 1e-12)
    assert lr[100] < 1e-8


def test_one_cycle_is_convmixers_schedule():
    lr = rates(one_cycle(0.01, 100), [0, 20, 40, 60, 80, 90, 100, 120])
    np.testing.assert_allclose(
        lr, [0, 0.005, 0.01, 0.00525, 0.0005, 0.00025, 0, 0], atol=1e-8
    )


def test_piecewise_linear_round_trips_and_validates():
    schedule = PiecewiseLinear([0, 10], [1.0, 3.0])
    clone = PiecewiseLinear.from_config(schedule.get_config())
    assert rates(clone, [5]) == pytest.approx([2.0])
    with pytest.raises(ValueError, match=re.escape("boundaries=[0, 0]")):
        PiecewiseLinear([0, 0], [1.0, 2.0])


def test_the_schedule_reaches_the_optimizer():
    # The keras-io SPT/LSA example built a schedule and never used it.
    model = create_model("vit_32px", depth=1, embed_dim=16, num_heads=2)
    recipe = get_recipe("vit_32px", epochs=2)
    optimizer = build_optimizer(recipe, model, steps_per_epoch=5)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x = np.random.default_rng(0).uniform(size=(12, 32, 32, 3))
    model.fit(x, np.arange(12) % 10, batch_size=4, epochs=1, verbose=0)
    assert int(to_numpy(optimizer.iterations)) == 3
    schedule = learning_rate_schedule(recipe, steps_per_epoch=5)
    expected = float(to_numpy(schedule(3)))
    assert float(to_numpy(optimizer.learning_rate)) == pytest.approx(expected)
    assert expected != pytest.approx(float(to_numpy(schedule(0))))


def test_weight_decay_spares_biases_norms_embeddings_and_tokens():
    # Everything but the head feeds the loss through a zero, so Adam's
    # update is zero and only decoupled weight decay can move a weight.
    inputs = keras.Input((4, 6))
    x = layers.ClassToken(name="cls")(inputs)
    x = layers.PositionEmbedding(name="pos")(x)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.Dense(6, name="dense")(x)
    x = layers.LayerScale(0.5, name="scale")(x)
    head = keras.layers.Dense(1, name="head")
    outputs = head(keras.layers.Flatten()(x * 0.0))
    model = keras.Model(inputs, outputs)
    recipe = get_recipe("convnext_32px").replace(
        learning_rate=0.1, weight_decay=0.5, warmup_epochs=0, epochs=1
    )
    assert recipe.decay_exemptions
    model.compile(
        optimizer=build_optimizer(recipe, model, steps_per_epoch=1),
        loss="mse",
    )
    before = {w.path: to_numpy(w) for w in model.trainable_weights}
    model.train_on_batch(np.ones((2, 4, 6)), np.ones((2, 1)))
    moved = {
        w.path
        for w in model.trainable_weights
        if not np.allclose(to_numpy(w), before[w.path])
    }
    assert "dense/kernel" in moved
    for spared in (
        "cls/token",
        "pos/embedding",
        "norm/gamma",
        "norm/beta",
        "dense/bias",
        "scale/gamma",
    ):
        assert spared in before, sorted(before)
        assert spared not in moved, spared


def test_quick_recipes_and_batch_scaling():
    paper = get_recipe("convnext_32px")
    assert paper.batch_size == 4096 and paper.learning_rate == 4e-3
    scaled = get_recipe("convnext_32px", batch_size=128)
    assert scaled.learning_rate == pytest.approx(4e-3 * (128 / 4096) ** 0.5)
    quick = get_recipe("sl_vit_32px", kind="quick", epochs=3)
    assert quick.epochs == 3 and quick.mixup == 0 and quick.warmup_epochs <= 1
    assert get_recipe("convmixer_256_8").schedule == "one_cycle"
    with pytest.raises(ValueError, match="model_name='resnet50'"):
        get_recipe("resnet50")
    with pytest.raises(ValueError, match="kind='slow'"):
        get_recipe("vit_32px", kind="slow")


def test_every_small_model_has_its_papers_recipe():
    from kvision.models import list_models

    # The SL-ViT script trains all of its Table 2 models with one recipe.
    for name in ("swin_32px", "sl_pit_32px", "cait_32px", "sl_t2t_32px"):
        assert get_recipe(name) == get_recipe("vit_32px"), name
    assert get_recipe("davit_32px").name == "davit_imagenet"
    assert get_recipe("metaformer_32px").name == "poolformer_imagenet"
    assert get_recipe("poolformer_s12").drop_path_rate == 0.1
    assert get_recipe("poolformer_m48").drop_path_rate == 0.4
    # Every 32-px model trains from the command line with a recipe; the
    # ImageNet Swin, PiT and CaiT sizes have none (their papers' recipes
    # are not carried), and say so.
    for name in list_models():
        if name.endswith("_32px"):
            get_recipe(name)
    with pytest.raises(ValueError, match="model_name='swin_tiny'"):
        get_recipe("swin_tiny")


def test_the_sl_vit_recipe_decays_every_weight_as_its_script():
    inputs = keras.Input((4, 6))
    x = layers.ClassToken(name="cls")(inputs)
    x = layers.PositionEmbedding(name="pos")(x)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = layers.LayerScale(0.5, name="scale")(x)
    outputs = keras.layers.Dense(1, name="head")(
        keras.layers.Flatten()(x * 0.0)
    )
    model = keras.Model(inputs, outputs)
    recipe = get_recipe("sl_vit_32px").replace(
        learning_rate=0.1, weight_decay=0.5, warmup_epochs=0, epochs=1
    )
    assert not recipe.decay_exemptions
    model.compile(
        optimizer=build_optimizer(recipe, model, steps_per_epoch=1),
        loss="mse",
    )
    before = {w.path: to_numpy(w) for w in model.trainable_weights}
    model.train_on_batch(np.ones((2, 4, 6)), np.ones((2, 1)))
    for path in ("cls/token", "pos/embedding", "norm/gamma", "scale/gamma"):
        after = to_numpy(model.get_layer(path.split("/")[0]).weights[0])
        assert not np.allclose(after, before[path]), path


def test_optimizer_takes_the_recipes_epsilon_and_clipping():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    recipe = get_recipe("convmixer_1536_20")
    optimizer = build_optimizer(recipe, model, steps_per_epoch=4)
    assert optimizer.epsilon == pytest.approx(1e-3)
    assert optimizer.clipnorm == pytest.approx(1.0)
    assert build_optimizer(
        get_recipe("sl_vit_32px"), model, 4
    ).epsilon == pytest.approx(1e-8)


def test_cosine_floor_and_warmup_in_steps():
    recipe = get_recipe("sl_vit_32px", epochs=10)
    assert recipe.warmup_epochs == pytest.approx(1.0)  # 10 % of training
    schedule = learning_rate_schedule(recipe, steps_per_epoch=7)
    lr = rates(schedule, [0, 7, 70, 80])
    assert lr[0] == 0.0 and lr[1] == pytest.approx(1e-3)
    assert lr[2] == pytest.approx(1e-6) and lr[3] == pytest.approx(1e-6)
