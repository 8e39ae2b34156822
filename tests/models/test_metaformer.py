"""MetaFormer / PoolFormer models: the skeleton with every token mixer,
stage features, attention, hybrids, user layers and the paper's settings."""

import re

import keras
import numpy as np
import pytest

from kvision import viz
from kvision.layers import MetaFormerBlock
from kvision.models import MetaFormer
from kvision.models import create_model
from kvision.models import model_config
from tests.helpers import to_numpy
from tests.symbolic import symbolic_model

TINY = dict(input_shape=(16, 16, 3), depths=(1, 1), dims=(8, 16))


def blocks_of(model):
    return [b for b in model.layers if isinstance(b, MetaFormerBlock)]


def images(batch=2, size=16):
    rng = np.random.default_rng(0)
    return rng.uniform(size=(batch, size, size, 3)).astype("float32")


@pytest.mark.parametrize(
    "token_mixer",
    ["pooling", "attention", "spatial_mlp", "depthwise_conv", "identity"],
)
def test_every_token_mixer_builds_the_same_skeleton(token_mixer):
    model = create_model("metaformer_32px", token_mixer=token_mixer, **TINY)
    logits = to_numpy(model(images(), training=False))
    assert logits.shape == (2, 10) and np.isfinite(logits).all()
    features = model.feature_model()(images())
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "stage_0": (2, 8, 8, 8),
        "stage_1": (2, 4, 4, 16),
    }
    blocks = blocks_of(model)
    assert [b.token_mixer for b in blocks] == [token_mixer] * 2
    if token_mixer == "spatial_mlp":  # filters on each stage's own grid
        kernel = to_numpy(blocks[1].mixer.fc1.kernel)
        weights = viz.token_mixing_weights(model, block=-1)
        np.testing.assert_array_equal(weights, kernel.T.reshape(16, 4, 4))
        assert viz.token_mixing_weights(model).shape == (64, 8, 8)


def test_attention_model_reads_the_attention_blocks():
    model = create_model("metaformer_32px", **TINY)
    scores = model.attention_model()(images())
    assert {k: tuple(v.shape) for k, v in scores.items()} == {
        "stage_0_block_0": (2, 1, 64, 64),
        "stage_1_block_0": (2, 1, 16, 16),
    }
    rows = to_numpy(scores["stage_1_block_0"]).sum(-1)
    np.testing.assert_allclose(rows, 1.0, atol=1e-5)
    pooling = create_model("poolformer_32px", **TINY)
    with pytest.raises(ValueError, match="no attention layers"):
        pooling.attention_model()


def test_hybrid_stages_save_and_reload(tmp_path):
    model = create_model(
        "metaformer_32px", token_mixer=("pooling", "attention"), **TINY
    )
    assert model.get_config()["token_mixer"] == ("pooling", "attention")
    assert sorted(model.attention_model().output) == ["stage_1_block_0"]
    path = tmp_path / "hybrid.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is MetaFormer
    np.testing.assert_allclose(
        to_numpy(loaded(images(), training=False)),
        to_numpy(model(images(), training=False)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_a_user_layer_as_token_mixer_is_copied_per_block(tmp_path):
    mixer = keras.layers.DepthwiseConv2D(
        5, padding="same", data_format="channels_last"
    )
    model = create_model("metaformer_32px", token_mixer=mixer, **TINY)
    blocks = blocks_of(model)
    kernels = [tuple(b.mixer.kernel.shape) for b in blocks]
    assert kernels == [(5, 5, 8, 1), (5, 5, 16, 1)]
    assert model.get_config()["token_mixer"]["class_name"] == "DepthwiseConv2D"
    path = tmp_path / "custom.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        to_numpy(loaded(images(), training=False)),
        to_numpy(model(images(), training=False)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_poolformer_layout_at_224_pixels():
    # Stem 7x7/4 after 2 pixels of padding: 56; then 3x3/2 after 1: 28, 14,
    # 7, as in the official code. Built without weight values: only the
    # layout matters here.
    model = symbolic_model(
        "poolformer_s12",
        depths=(1, 1, 1, 1),
        dims=(4, 4, 4, 4),
        drop_path_rate=0.3,
    )
    sides = [model.get_layer(n).output.shape[1] for n in model.feature_names]
    assert sides == [56, 28, 14, 7]
    stem = model.get_layer("stem")
    assert stem.kernel_size == (7, 7) and stem.strides == (4, 4)
    assert model.get_layer("stem_padding").padding == ((2, 2), (2, 2))
    blocks = blocks_of(model)
    rates = [b.drop_path_rate for b in blocks]
    np.testing.assert_allclose(rates, [0.0, 0.1, 0.2, 0.3])
    assert model.get_layer("final_norm").groups == 1


def test_layer_scale_follows_the_variant():
    scales = {
        name: model_config(f"poolformer_{name}")["layer_scale_init_value"]
        for name in ("s12", "s24", "s36", "m36", "m48")
    }
    assert scales == {
        "s12": 1e-5,
        "s24": 1e-5,
        "s36": 1e-6,
        "m36": 1e-6,
        "m48": 1e-6,
    }


def test_class_activation_maps_average_to_the_logits():
    # GroupNorm comes before the pooling, so the map of the normalised last
    # stage is exactly what the head averages.
    model = create_model("poolformer_32px", **TINY)
    maps = viz.class_activation_map(model, images(), class_index=3)
    assert maps.shape == (2, 4, 4)
    logits = to_numpy(model(images(), training=False))
    bias = to_numpy(model.get_layer("head").bias)[3]
    np.testing.assert_allclose(
        maps.mean(axis=(1, 2)) + bias, logits[:, 3], rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(depths=(1, 1), dims=(8,)), "depths=(1, 1)"),
        (dict(token_mixer=("pooling",)), "token_mixer=('pooling',)"),
        (dict(token_mixer="conv"), "token_mixer='conv'"),
        (dict(stem_padding=-1), "stem_padding=-1"),
        (dict(stem_stride=0), "stem_stride=0"),
    ],
)
def test_bad_arguments_name_themselves(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        create_model("poolformer_32px", **{**TINY, **overrides})
