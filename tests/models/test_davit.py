"""DaViT's model: its layout, named attention and features, and arguments."""

import re

import keras
import numpy as np
import pytest

from kvision import layers
from kvision.models import DaViT
from kvision.models import create_model
from kvision.models.davit import dual_attention_stage
from tests.symbolic import symbolic_model

TINY = dict(dims=(8, 16, 32), num_heads=(1, 2, 4), window_size=2)


def images(batch=2, size=32):
    rng = np.random.default_rng(0)
    return rng.uniform(size=(batch, size, size, 3)).astype("float32")


def test_attention_model_has_every_spatial_and_channel_block(tmp_path):
    model = create_model("davit_32px", depths=(1, 2, 1), **TINY)
    blocks = [n for n in model.feature_names if "block" in n]
    assert blocks == [
        "stage_0_block_0_spatial",
        "stage_0_block_0_channel",
        "stage_1_block_0_spatial",
        "stage_1_block_0_channel",
        "stage_1_block_1_spatial",
        "stage_1_block_1_channel",
        "stage_2_block_0_spatial",
        "stage_2_block_0_channel",
    ]
    # Built symbolically (the notebook's smoke run and the parity tests run
    # them): spatial (B, windows, heads, w², w²) on 8x8, 4x4 and 2x2 maps,
    # channel (B, groups, Cg, Cg) whatever the map size.
    expected = {
        "stage_0_block_0_spatial": (16, 1, 4, 4),
        "stage_0_block_0_channel": (1, 8, 8),
        "stage_1_block_0_spatial": (4, 2, 4, 4),
        "stage_1_block_0_channel": (2, 8, 8),
        "stage_1_block_1_spatial": (4, 2, 4, 4),
        "stage_1_block_1_channel": (2, 8, 8),
        "stage_2_block_0_spatial": (1, 4, 4, 4),
        "stage_2_block_0_channel": (4, 8, 8),
    }

    def shapes(attention_model):
        return {
            k: tuple(v.shape[1:]) for k, v in attention_model.output.items()
        }

    assert shapes(model.attention_model()) == expected
    path = tmp_path / "davit.keras"
    model.save(path)
    assert shapes(keras.saving.load_model(path).attention_model()) == expected


def test_feature_model_returns_blocks_and_stages():
    model = create_model("davit_32px", depths=(1, 1, 1), **TINY)
    features = model.feature_model()(images())
    assert sorted(features) == sorted(model.feature_names)
    stages = {
        k: tuple(v.shape) for k, v in features.items() if "block" not in k
    }
    assert stages == {
        "stage_0": (2, 8, 8, 8),
        "stage_1": (2, 4, 4, 16),
        "stage_2": (2, 2, 2, 32),
    }
    # A block's feature is its map, not its attention.
    assert tuple(features["stage_1_block_0_channel"].shape) == (2, 4, 4, 16)


def test_imagenet_layout_stem_downsampling_and_head():
    model = symbolic_model("davit_tiny")
    shapes = {
        name: tuple(model.get_layer(name).output.shape)
        for name in ("stem_norm", "stage_1", "stage_2", "stage_3", "head")
    }
    assert shapes == {
        "stem_norm": (None, 56, 56, 96),
        "stage_1": (None, 28, 28, 192),
        "stage_2": (None, 14, 14, 384),
        "stage_3": (None, 7, 7, 768),
        "head": (None, 1000),
    }
    stem = model.get_layer("stem_conv")
    assert stem.kernel_size == (7, 7) and stem.strides == (4, 4)
    assert model.get_layer("stem_padding").padding == ((3, 3), (3, 3))
    down = model.get_layer("stage_1_downsampling")
    assert isinstance(down, layers.ConvNeXtDownsampling)
    assert down.conv.kernel_size == (2, 2) and down.conv.strides == (2, 2)
    assert model.get_layer("head_norm").epsilon == 1e-5
    spatial = model.get_layer("stage_2_block_2_spatial")
    assert spatial.window_size == 7 and spatial.num_heads == 12
    assert model.get_layer("stage_3_block_0_channel").num_groups == 24


def test_stem_rounds_up_like_the_official_padding():
    # The official stem pads to a multiple of 4 then convolves (7x7,
    # stride 4, padding 3): ceil(H / 4) positions.
    model = DaViT(
        input_shape=(30, 34, 3), depths=(1,), dims=(8,), num_heads=(2,)
    )
    assert tuple(model.get_layer("stage_0").output.shape) == (None, 8, 9, 8)


def test_drop_path_grows_linearly_over_all_blocks():
    model = create_model(
        "davit_32px", depths=(1, 2, 1), drop_path_rate=0.7, **TINY
    )
    rates = [
        model.get_layer(name).drop_path_rate
        for name in model.feature_names
        if "block" in name
    ]
    np.testing.assert_allclose(rates, np.linspace(0.0, 0.7, 8), atol=1e-7)


def test_stage_helper_pairs_spatial_and_channel_blocks():
    x = keras.Input((4, 4, 8))
    y, names = dual_attention_stage(
        x, 3, 2, num_heads=2, window_size=2, drop_path_rates=[0.1] * 4
    )
    model = keras.Model(x, y)
    kinds = [type(model.get_layer(n)) for n in names]
    assert kinds == [layers.DaViTSpatialBlock, layers.DaViTChannelBlock] * 2
    assert names[-1] == "stage_3_block_1_channel"
    with pytest.raises(ValueError, match=re.escape("drop_path_rates=[0.1]")):
        dual_attention_stage(x, 0, 2, num_heads=2, drop_path_rates=[0.1])


@pytest.mark.parametrize(
    "pooling, shape", [(None, (None, 2, 2, 32)), ("avg", (None, 32))]
)
def test_headless_model_ends_at_the_last_stage(pooling, shape):
    model = create_model(
        "davit_32px", include_top=False, pooling=pooling, **TINY
    )
    assert tuple(model.output.shape) == shape
    names = [layer.name for layer in model.layers]
    assert "head" not in names and "head_norm" not in names


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(depths=(1, 1), dims=(8, 16, 32)), "depths=(1, 1)"),
        (dict(num_heads=(1, 2)), "num_heads=(1, 2)"),
        (dict(dims=(8, 16, 30), num_heads=(1, 2, 4)), "dims=(8, 16, 30)"),
        (dict(depths=(1, 0, 1)), "depths=0"),
        (dict(window_size=0), "window_size=0"),
        (dict(drop_path_rate=1.0), "drop_path_rate=1.0"),
        (dict(pooling="sum"), "pooling='sum'"),
    ],
)
def test_bad_model_arguments_name_themselves(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        create_model("davit_32px", **{**TINY, **overrides})
