"""kvision.viz reads attention from any Keras model that returns weights
``(B, heads, N, N)``, not only from kvision's own models."""

import keras
import numpy as np
import pytest

from kvision import layers
from kvision import viz
from kvision.models import create_model


def hand_built(class_token, depth=2):
    """A ViT from kvision layers and Keras' own attention, returning the
    logits and every block's attention weights as a list."""
    inputs = keras.Input((16, 16, 3))
    x = layers.PatchEmbedding(patch_size=4, embed_dim=8)(inputs)
    if class_token:
        x = layers.ClassToken()(x)
    scores = []
    for _ in range(depth):
        attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
        y, weights = attention(x, x, return_attention_scores=True)
        x = x + y
        scores.append(weights)
    logits = keras.layers.Dense(3)(keras.ops.mean(x, axis=1))
    return keras.Model(inputs, [logits, *scores])


@pytest.mark.parametrize("class_token", [True, False])
def test_statistics_and_maps_of_a_hand_built_model(class_token):
    model = hand_built(class_token)
    images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3))
    maps = viz.attention_maps(model, images)
    tokens = 16 + class_token
    assert [m.shape for m in maps.values()] == [(2, 2, tokens, tokens)] * 2
    assert viz.attention_rollout(model, images).shape == (2, 4, 4)
    assert viz.attention_entropy(model, images).shape == (2, 2)
    assert viz.attention_divergence(model, images).shape == (2, 2)
    assert viz.mean_attention_distance(model, images).shape == (2, 2)
    if class_token:
        assert viz.cls_attention(model, images).shape == (2, 2, 4, 4)


def test_a_model_without_attention_outputs_is_refused():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="no attention weights"):
        viz.attention_maps(model, np.zeros((1, 8, 8, 3)))


def test_blocks_come_in_network_order_past_ten_blocks():
    model = create_model(
        "vit_32px",
        input_shape=(8, 8, 3),
        depth=11,
        embed_dim=8,
        num_heads=1,
        head_dim=8,
        mlp_dim=8,
    )
    names = list(viz.attention_maps(model, np.zeros((1, 8, 8, 3))))
    assert names == [f"block_{i}" for i in range(11)]
