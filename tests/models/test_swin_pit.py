"""Swin and PiT models: stage layout, window rule, SL variants, looking inside.

Structure is checked on models built without weight values
(``tests/symbolic.py``); one tiny SL-Swin runs on data. The registered
variants are counted, trained a step and reloaded by test_param_counts and
test_registry_models.
"""

import re

import numpy as np
import pytest

from kvision import layers
from kvision.models import PoolingVisionTransformer
from kvision.models import SwinTransformer
from kvision.models.pit import pit_drop_path_rates
from kvision.models.swin import stage_windows
from tests.helpers import to_numpy
from tests.symbolic import symbolic
from tests.symbolic import symbolic_model

TINY_SWIN = dict(
    input_shape=(16, 16, 3),
    patch_size=2,
    embed_dim=8,
    depths=(2, 1),
    num_heads=(2, 2),
    window_size=4,
    mlp_ratio=2.0,
    num_classes=3,
)
TINY_PIT = dict(
    input_shape=(16, 16, 3),
    patch_size=2,
    stride=2,
    head_dim=4,
    depths=(1, 1),
    num_heads=(2, 4),
    mlp_ratio=2.0,
    num_classes=3,
)
SL = dict(tokenizer="spt", attention="lsa")


def images(shape=(2, 16, 16, 3)):
    return np.random.default_rng(0).uniform(size=shape).astype("float32")


@pytest.mark.parametrize(
    "grid, window, expected",
    [((16, 16), 4, (4, 2)), ((4, 4), 4, (4, 0)), ((2, 2), 7, (2, 0))],
)
def test_swin_window_rule(grid, window, expected):
    assert stage_windows(grid, window) == expected


def test_swin_blocks_alternate_shift_and_last_stage_is_global():
    model = symbolic_model("swin_32px", depths=(2, 2, 2))
    shifts = {
        layer.name: (layer.window_size, layer.shift_size)
        for layer in model.layers
        if isinstance(layer, layers.SwinBlock)
    }
    assert shifts == {
        "stage_0_block_0": (4, 0),
        "stage_0_block_1": (4, 2),
        "stage_1_block_0": (4, 0),
        "stage_1_block_1": (4, 2),
        "stage_2_block_0": (4, 0),  # a 4x4 map: one window, no shift
        "stage_2_block_1": (4, 0),
    }


def test_swin_drop_path_grows_linearly_over_all_blocks():
    model = symbolic(SwinTransformer, **TINY_SWIN, drop_path_rate=0.2)
    rates = [
        layer.drop_path_rate
        for layer in model.layers
        if isinstance(layer, layers.SwinBlock)
    ]
    np.testing.assert_allclose(rates, [0.0, 0.1, 0.2])


def test_pit_drop_path_rates():
    np.testing.assert_allclose(
        pit_drop_path_rates(0.1, 4, "linear"), [0.0, 0.025, 0.05, 0.075]
    )
    assert pit_drop_path_rates(0.1, 3, "constant") == [0.1] * 3


def test_swin_attention_and_features():
    model = symbolic(SwinTransformer, **TINY_SWIN)
    scores = symbolic(model.attention_model).output
    assert {k: tuple(v.shape) for k, v in scores.items()} == {
        "stage_0_block_0": (None, 4, 2, 16, 16),
        "stage_0_block_1": (None, 4, 2, 16, 16),
        "stage_1_block_0": (None, 1, 2, 16, 16),
    }
    features = symbolic(model.feature_model, ["stage_0", "stage_1"]).output
    assert tuple(features["stage_0"].shape) == (None, 8, 8, 8)
    assert tuple(features["stage_1"].shape) == (None, 4, 4, 16)


def test_sl_swin_uses_spt_and_lsa_and_runs():
    model = SwinTransformer(**TINY_SWIN, **SL, merging="spt")
    names = {layer.name for layer in model.layers}
    assert {"spt", "stage_0_spt"} <= names
    assert "patch_embedding" not in names and "stage_0_merging" not in names
    assert model.get_layer("stage_0_block_1").attention == "lsa"
    scores = model.attention_model()(images())
    assert tuple(model(images()).shape) == (2, 3)
    shifted = to_numpy(scores["stage_0_block_1"])
    assert np.all(shifted[..., np.arange(16), np.arange(16)] == 0.0)
    np.testing.assert_allclose(shifted.sum(-1), 1.0, rtol=1e-5)


def test_swin_headless_outputs():
    kwargs = {**TINY_SWIN, "include_top": False}
    model = symbolic(SwinTransformer, **kwargs)
    assert tuple(model.output.shape) == (None, 4, 4, 16)
    pooled = symbolic(SwinTransformer, **kwargs, pooling="avg")
    assert tuple(pooled.output.shape) == (None, 16)


def test_pit_attention_and_features():
    model = symbolic(PoolingVisionTransformer, **TINY_PIT)
    scores = symbolic(model.attention_model).output
    assert {k: tuple(v.shape) for k, v in scores.items()} == {
        "stage_0_block_0": (None, 2, 65, 65),
        "stage_1_block_0": (None, 4, 17, 17),
    }
    features = symbolic(model.feature_model, ["stage_0", "stage_1"]).output
    assert tuple(features["stage_0"].shape) == (None, 65, 8)
    assert tuple(features["stage_1"].shape) == (None, 17, 16)
    assert tuple(model.output.shape) == (None, 3)


def test_pit_overlapping_embedding_and_position_embedding():
    model = symbolic(
        PoolingVisionTransformer, **{**TINY_PIT, "patch_size": 4, "stride": 2}
    )
    # (16 - 4) // 2 + 1 = 7 tokens per side, position embedding on them only
    assert tuple(model.get_layer("position_embedding").embedding.shape) == (
        49,
        8,
    )
    assert tuple(model.get_layer("stage_0").output.shape) == (None, 50, 8)
    assert tuple(model.get_layer("stage_1").output.shape) == (None, 17, 16)
    model = symbolic(
        PoolingVisionTransformer, **TINY_PIT, class_position_embedding=True
    )
    assert tuple(model.get_layer("position_embedding").embedding.shape) == (
        65,
        8,
    )


def test_sl_pit_uses_spt_pooling_with_class_token():
    model = symbolic(
        PoolingVisionTransformer, **TINY_PIT, **SL, token_pooling="spt"
    )
    pool = model.get_layer("stage_0_spt")
    assert isinstance(pool, layers.ShiftedPatchTokenization)
    assert pool.has_class_token and pool.token_grid == (8, 8)
    assert model.get_layer("stage_1_block_0").attention == "lsa"
    assert tuple(model.get_layer("stage_1").output.shape) == (None, 17, 16)


BAD = [
    (
        SwinTransformer,
        dict(TINY_SWIN, num_heads=(2,)),
        "num_heads=(2,)",
    ),
    (
        SwinTransformer,
        dict(TINY_SWIN, input_shape=(18, 18, 3)),
        "input_shape=(18, 18, 3)",
    ),
    # 8x8 first stage, windows of 3 do not tile it
    (SwinTransformer, dict(TINY_SWIN, window_size=3), "window_size=3"),
    (SwinTransformer, dict(TINY_SWIN, merging="conv"), "merging='conv'"),
    (
        PoolingVisionTransformer,
        dict(TINY_PIT, num_heads=(2, 3)),
        "num_heads=(2, 3)",
    ),
    (
        PoolingVisionTransformer,
        dict(TINY_PIT, tokenizer="spt", patch_size=4),
        "stride=2",
    ),
    (
        PoolingVisionTransformer,
        dict(TINY_PIT, token_pooling="max"),
        "token_pooling='max'",
    ),
]


@pytest.mark.parametrize("cls, kwargs, message", BAD)
def test_bad_arguments(cls, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        symbolic(cls, **kwargs)
