"""CaiT and T2T-ViT: the small-dataset paper's variants and the options
that select the original architectures."""

import re

import numpy as np
import pytest

from kvision import layers
from kvision import ops as kv_ops
from kvision.models import create_model
from kvision.models import model_config
from kvision.models.cait import layer_scale_for_depth
from tests.helpers import to_numpy

TINY_CAIT = dict(
    input_shape=(8, 8, 3),
    depth=2,
    class_depth=2,
    embed_dim=16,
    num_heads=2,
    head_dim=8,
    mlp_dim=16,
)
TINY_T2T = dict(
    input_shape=(8, 8, 3), depth=2, embed_dim=16, num_heads=2, mlp_dim=16
)


def images(size=8, batch=2):
    rng = np.random.default_rng(0)
    return rng.uniform(size=(batch, size, size, 3)).astype("float32")


def test_cait_exposes_self_and_class_attention():
    model = create_model("sl_cait_32px", **TINY_CAIT)
    assert model.feature_names == [
        "block_0",
        "block_1",
        "class_block_0",
        "class_block_1",
    ]
    scores = model.attention_model()(images())
    shapes = {name: tuple(s.shape) for name, s in scores.items()}
    assert shapes == {
        "block_0": (2, 2, 4, 4),
        "block_1": (2, 2, 4, 4),
        # the SPT/LSA repository's class token reads the 4 patches only
        "class_block_0": (2, 2, 1, 4),
        "class_block_1": (2, 2, 1, 4),
    }
    # "official_spt" sets the self-logits to about 0 and masks nothing.
    diagonal = np.diagonal(to_numpy(scores["block_0"]), axis1=-2, axis2=-1)
    assert np.all(np.abs(diagonal) > 0)


def test_official_cait_class_token_reads_itself_too():
    model = create_model("cait_xxs24", **{**TINY_CAIT, "patch_size": 4})
    scores = model.attention_model()(images())
    assert tuple(scores["class_block_1"].shape) == (2, 2, 1, 5)
    # Official CaiT: probabilities (no head mixing in class attention).
    np.testing.assert_allclose(
        to_numpy(scores["class_block_1"]).sum(-1), 1.0, atol=1e-5
    )


@pytest.mark.parametrize("name", ["sl_cait_32px", "cait_xxs24"])
def test_cait_class_blocks_leave_patch_tokens_unchanged(name):
    overrides = dict(TINY_CAIT)
    if name == "cait_xxs24":
        overrides["patch_size"] = 4
    model = create_model(name, **overrides)
    features = model.feature_model()(images())
    patches = to_numpy(features["block_1"])
    for block in ("class_block_0", "class_block_1"):
        out = to_numpy(features[block])
        assert out.shape == (2, 5, 16)
        np.testing.assert_array_equal(out[:, 1:], patches)


def test_layer_scale_rules():
    # The paper's rule by depth; the SPT/LSA repository applies it to each
    # block's 1-based index instead of the model's depth.
    by_index = [layer_scale_for_depth(i + 1) for i in range(24)]
    assert by_index == [0.1] * 18 + [1e-5] * 6
    assert layer_scale_for_depth(36) == 1e-6

    def gammas(model):
        return {
            layer.name: float(to_numpy(layer.scales[0].gamma)[0])
            for layer in model.layers
            if "block" in layer.name
        }

    spt = gammas(create_model("sl_cait_32px", **TINY_CAIT))
    assert len(spt) == 4
    np.testing.assert_allclose(list(spt.values()), 0.1)
    official = gammas(create_model("cait_xxs24", **TINY_CAIT, patch_size=4))
    np.testing.assert_allclose(list(official.values()), 1e-5)


def test_initialisation_follows_each_code():
    # The SPT/LSA repository: std-1 tokens and xavier-normal kernels; the
    # official CaiT: 0.02 everywhere.
    def stds(model):
        embedding = model.get_layer("position_embedding").embedding
        qkv = model.get_layer("block_0").attn.qkv.kernel
        return float(np.std(to_numpy(embedding))), float(np.std(to_numpy(qkv)))

    tokens, kernel = stds(create_model("sl_cait_32px", **TINY_CAIT))
    assert tokens > 0.5
    assert kernel == pytest.approx((2 / (16 + 3 * 16)) ** 0.5, rel=0.3)
    official = create_model("cait_xxs24", **TINY_CAIT, patch_size=4)
    assert max(stds(official)) < 0.03


def test_32px_configs_reproduce_the_spt_lsa_code():
    cait, sl_cait = model_config("cait_32px"), model_config("sl_cait_32px")
    for config in (cait, sl_cait):
        assert config["class_key_tokens"] == "patches"
        assert config["class_normalize_patches"] is False
        assert config["talking_heads"] == config["class_talking_heads"]
        assert config["talking_heads"] == "matrix"
        assert config["layer_scale_schedule"] == "index"
        assert config["num_classes"] == 10
    assert sl_cait["diagonal_mask"] == "official_spt"
    assert (sl_cait["tokenizer"], sl_cait["attention"]) == ("spt", "lsa")
    for name in ("t2t_32px", "sl_t2t_32px"):
        config = model_config(name)
        assert config["attention_input_residual"] is True
        assert config["projection_norm"] is True
    assert model_config("sl_t2t_32px")["shift_size"] == 1


def test_t2t_position_table_is_frozen_sinusoid():
    model = create_model("sl_t2t_32px", **TINY_T2T)
    layer = model.get_layer("position_embedding")
    assert not layer.trainable
    assert not any("position" in w.path for w in model.trainable_weights)
    want = to_numpy(kv_ops.sinusoidal_positions(5, 16))
    np.testing.assert_allclose(to_numpy(layer.embedding), want, atol=1e-6)
    learned = create_model(
        "sl_t2t_32px", **TINY_T2T, position_embedding="learned"
    )
    assert learned.get_layer("position_embedding").trainable
    counts = [
        sum(int(np.prod(w.shape)) for w in m.trainable_weights)
        for m in (model, learned)
    ]
    assert counts[1] - counts[0] == 5 * 16


def test_t2t_module_and_blocks():
    model = create_model("sl_t2t_32px", **TINY_T2T)
    t2t = model.get_layer("tokens_to_token")
    assert isinstance(t2t, layers.TokensToToken)
    assert (t2t.shift_size, t2t.attention) == (1, "lsa")
    assert tuple(t2t.output.shape) == (None, 4, 16)
    block = model.get_layer("block_0")
    assert block.attention == "lsa" and block.attention_input_residual
    scores = to_numpy(model.attention_model()(images())["block_1"])
    assert scores.shape == (2, 2, 5, 5)
    np.testing.assert_array_equal(np.diagonal(scores, axis1=-2, axis2=-1), 0.0)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: create_model("cait_32px", layer_scale_schedule="depth"),
            "layer_scale_schedule='depth'",
        ),
        (lambda: create_model("cait_32px", class_depth=0), "class_depth=0"),
        (lambda: create_model("cait_32px", tokenizer="conv"), "tokenizer="),
        (
            lambda: create_model("cait_32px", class_drop_path_rate=1.0),
            "class_drop_path_rate=1.0",
        ),
        (
            lambda: create_model("cait_32px", layer_scale_init_value=-1),
            "layer_scale_init_value=-1",
        ),
        (
            lambda: create_model("cait_32px", talking_heads="none"),
            "talking_heads='none'",
        ),
        (
            lambda: create_model("t2t_32px", position_embedding="rope"),
            "position_embedding='rope'",
        ),
        (lambda: create_model("t2t_32px", depth=0), "depth=0"),
        (lambda: create_model("t2t_32px", token_dim=0), "token_dim=0"),
    ],
)
def test_bad_model_arguments(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()
