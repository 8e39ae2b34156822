"""Every public layer through the same checks (tests/helpers.py)."""

import inspect

import pytest

from kvision import layers
from tests import helpers
from tests.layer_cases import CASE_IDS
from tests.layer_cases import CASES

by_case = pytest.mark.parametrize("case", CASES, ids=CASE_IDS)


def test_every_public_layer_has_a_case():
    public = {
        name
        for name in layers.__all__
        if inspect.isclass(getattr(layers, name))
    }
    covered = {case.cls.__name__ for case in CASES}
    assert public == covered


def test_public_names_are_the_promised_ones():
    promised = {
        "ShiftedPatchTokenization",
        "PatchEmbedding",
        "ClassToken",
        "PositionEmbedding",
        "MultiHeadSelfAttention",
        "LocalitySelfAttention",
        "MLP",
        "TransformerBlock",
        "ConvMixerBlock",
        "MixerBlock",
        "ConvNeXtBlock",
        "DropPath",
        "LayerScale",
        "DepthwiseConv2D",
        "TalkingHeadsAttention",
        "ClassAttention",
        "ClassAttentionBlock",
        "TokensToToken",
        "MetaFormerBlock",
        "PoolingMixer",
        "WindowAttention",
        "PatchMerging",
        "SwinBlock",
        "PiTPooling",
        "ChannelGroupAttention",
        "ConvPositionEncoding",
        "DaViTSpatialBlock",
        "DaViTChannelBlock",
    }
    stems = {"ConvMixerStem", "ConvNeXtStem", "ConvNeXtDownsampling"}
    assert set(layers.__all__) == promised | stems


@by_case
def test_eager_and_symbolic_shapes(case):
    helpers.check_eager_and_symbolic_shapes(case)


@by_case
def test_config_round_trip(case):
    helpers.check_config_round_trip(case)


@by_case
def test_save_and_load(case, tmp_path):
    helpers.check_save_and_load(case, tmp_path)


@by_case
def test_compiled_training_step(case):
    helpers.check_training_step(case)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@by_case
def test_mixed_precision(case, policy):
    helpers.check_mixed_precision(case, policy)
