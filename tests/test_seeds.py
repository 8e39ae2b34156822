"""Sublayers of one seeded layer draw independent, reproducible streams."""

import keras
import numpy as np

from kvision import _seeds
from kvision.layers import MultiHeadSelfAttention
from kvision.layers import TransformerBlock


def test_child_seeds_are_distinct_and_stable():
    names = ["attention", "mlp", "drop_path", "attention_dropout"]
    seeds = [_seeds.child_seed(7, name) for name in names]
    assert len(set(seeds)) == len(seeds)
    assert seeds == [_seeds.child_seed(7, name) for name in names]
    assert _seeds.child_seed(None, "mlp") is None
    assert _seeds.child_seed(8, "mlp") != _seeds.child_seed(7, "mlp")


def test_a_seeded_block_reproduces_its_training_noise():
    x = np.random.default_rng(0).normal(size=(4, 5, 8)).astype("float32")

    def run():
        block = TransformerBlock(
            2, 16, dropout=0.3, drop_path_rate=0.3, seed=11
        )
        block.build(x.shape)
        for weight, value in zip(block.weights, weights, strict=True):
            weight.assign(value)
        return keras.ops.convert_to_numpy(block(x, training=True))

    template = TransformerBlock(2, 16)
    template.build(x.shape)
    weights = [keras.ops.convert_to_numpy(w) for w in template.weights]
    np.testing.assert_array_equal(run(), run())


def test_attention_dropouts_do_not_share_a_stream():
    layer = MultiHeadSelfAttention(
        2, attention_dropout=0.5, dropout=0.5, seed=3
    )
    layer.build((None, 4, 8))
    a = layer.attention_drop.seed_generator
    b = layer.output_drop.seed_generator
    state_a = keras.ops.convert_to_numpy(a.state)
    state_b = keras.ops.convert_to_numpy(b.state)
    assert not np.array_equal(state_a, state_b)
