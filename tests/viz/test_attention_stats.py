"""Rollout, attention distance, entropy and divergence: NumPy references on
hand-made attention, then the model-level functions on tiny transformers."""

import math

import keras
import numpy as np
import pytest

from kvision import layers
from kvision import viz
from kvision.models import VisionModel
from kvision.models import create_model


def softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def random_attention(batch=2, heads=3, tokens=5, seed=0):
    rng = np.random.default_rng(seed)
    return softmax(rng.normal(size=(batch, heads, tokens, tokens)) * 2)


# --- rollout --------------------------------------------------------------


def test_rollout_of_identity_attention_is_the_identity():
    eye = np.broadcast_to(np.eye(4), (2, 3, 4, 4))
    np.testing.assert_allclose(
        viz.rollout([eye, eye, eye]), np.broadcast_to(np.eye(4), (2, 4, 4))
    )


def test_rollout_of_uniform_attention_by_hand():
    # One layer: A = (U + I) / 2 with U uniform over 4 tokens, so the
    # diagonal is 5/8 and the rest 1/8. Two layers: A @ A, whose diagonal
    # is (5/8)^2 + 3 (1/8)^2 = 7/16 and off-diagonal 2 (5/8)(1/8) +
    # 2 (1/8)^2 = 3/16.
    uniform = np.full((1, 2, 4, 4), 0.25)
    one = viz.rollout([uniform])[0]
    np.testing.assert_allclose(np.diag(one), 5 / 8)
    np.testing.assert_allclose(one[0, 1:], 1 / 8)
    two = viz.rollout([uniform, uniform])[0]
    np.testing.assert_allclose(np.diag(two), 7 / 16)
    np.testing.assert_allclose(two[0, 1:], 3 / 16)


def test_rollout_multiplies_later_layers_on_the_left():
    # Layer 1 sends every token to token 1, layer 2 to token 0; the two
    # orders of the product differ, and rollout is A2 @ A1.
    first = np.zeros((1, 1, 2, 2))
    first[0, 0, :, 1] = 1.0
    second = np.zeros((1, 1, 2, 2))
    second[0, 0, :, 0] = 1.0
    a1 = np.array([[0.5, 0.5], [0.0, 1.0]])
    a2 = np.array([[1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(
        viz.rollout([first, second], has_class_token=False)[0],
        [[0.5, 0.5], [0.25, 0.75]],
    )
    np.testing.assert_allclose(a2 @ a1, [[0.5, 0.5], [0.25, 0.75]])
    np.testing.assert_allclose(
        viz.rollout([second, first], has_class_token=False)[0], a1 @ a2
    )


def test_rollout_rows_are_distributions():
    blocks = [random_attention(seed=s) for s in range(3)]
    rolled = viz.rollout(blocks, head_fusion="max", discard_ratio=0.5)
    assert rolled.shape == (2, 5, 5)
    np.testing.assert_allclose(rolled.sum(axis=-1), 1.0)
    assert np.all(rolled >= 0)


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
def test_head_fusion(fusion):
    attention = random_attention()
    fused = getattr(np, fusion)(attention, axis=1) + np.eye(5)
    expected = fused / fused.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(
        viz.rollout([attention], head_fusion=fusion), expected
    )


def test_discard_zeroes_the_lowest_weights_of_each_row_but_the_class_token():
    row = np.array([0.05, 0.4, 0.1, 0.3, 0.15])  # class token first
    attention = np.broadcast_to(row, (1, 1, 5, 5)).copy()
    # Half of the 4 patch columns go: 0.1 and 0.15. The class token's 0.05
    # is the smallest weight but stays.
    kept = np.array([0.05, 0.4, 0.0, 0.3, 0.0]) + np.eye(5)
    expected = kept / kept.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(
        viz.rollout([attention], discard_ratio=0.5)[0], expected
    )
    # Without a class token, every column may go (floor(0.5 * 5) = 2).
    kept = np.array([0.0, 0.4, 0.0, 0.3, 0.15]) + np.eye(5)
    expected = kept / kept.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(
        viz.rollout([attention], discard_ratio=0.5, has_class_token=False)[0],
        expected,
    )


def test_small_discard_ratios_discard_nothing():
    attention = random_attention()
    np.testing.assert_allclose(
        viz.rollout([attention], discard_ratio=0.2),  # floor(0.2 * 4) = 0
        viz.rollout([attention]),
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(head_fusion="sum"), "head_fusion='sum'"),
        (dict(discard_ratio=1.0), "discard_ratio=1.0"),
        (dict(discard_ratio=-0.1), "discard_ratio=-0.1"),
        (dict(discard_ratio="0.5"), "discard_ratio='0.5'"),
    ],
)
def test_rollout_arguments_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.rollout([random_attention()], **kwargs)


def test_rollout_rejects_blocks_of_different_sizes_and_bad_shapes():
    with pytest.raises(ValueError, match="same tokens"):
        viz.rollout([random_attention(tokens=5), random_attention(tokens=4)])
    with pytest.raises(ValueError, match="tokens, tokens"):
        viz.rollout([np.ones((2, 5, 5))])
    with pytest.raises(ValueError, match="at least one"):
        viz.rollout([])


# --- distance, entropy, divergence -----------------------------------------


def test_attending_to_oneself_is_distance_zero():
    eye = np.broadcast_to(np.eye(9), (2, 3, 9, 9))
    np.testing.assert_allclose(viz.distance_of(eye, (3, 3), (4, 4)), 0.0)


def test_distance_of_a_known_pattern_in_pixels():
    # 3x3 grid of 4x6-pixel patches (rows 4 px apart, columns 6 px). Head 0
    # attends to the next row (clamped at the bottom, where it attends to
    # the row above): every query is 4 px away. Head 1 splits evenly
    # between itself and the patch diagonally below-right when it exists,
    # else stays on itself.
    grid, pixels = (3, 3), (4.0, 6.0)
    attention = np.zeros((1, 2, 9, 9))
    expected = np.zeros(2)
    for q in range(9):
        r, c = divmod(q, 3)
        below = (r + 1 if r < 2 else r - 1) * 3 + c
        attention[0, 0, q, below] = 1.0
        expected[0] += 4.0
        if r < 2 and c < 2:
            attention[0, 1, q, [q, q + 4]] = 0.5
            expected[1] += 0.5 * math.hypot(4.0, 6.0)
        else:
            attention[0, 1, q, q] = 1.0
    np.testing.assert_allclose(
        viz.distance_of(attention, grid, pixels), expected / 9
    )


def test_distance_leaves_the_class_token_out_and_renormalises():
    # Half the attention goes to the class token; the rest goes one column
    # to the right (or left at the edge): 2 px after renormalising.
    attention = np.zeros((1, 1, 5, 5))
    attention[0, 0, :, 0] = 0.5
    for q in range(4):
        r, c = divmod(q, 2)
        attention[0, 0, q + 1, 1 + r * 2 + (1 - c)] = 0.5
    np.testing.assert_allclose(
        viz.distance_of(attention, (2, 2), (2, 2), class_tokens=1), [2.0]
    )
    with pytest.raises(ValueError, match="grid"):
        viz.distance_of(attention, (2, 2))


def test_entropy_and_divergence_of_uniform_and_one_hot_rows():
    n = 7
    uniform = np.full((2, 3, n, n), 1 / n)
    np.testing.assert_allclose(viz.entropy_of(uniform), np.log(n))
    np.testing.assert_allclose(viz.divergence_of(uniform), 0.0, atol=1e-12)
    eye = np.broadcast_to(np.eye(n), (2, 3, n, n))
    np.testing.assert_allclose(viz.entropy_of(eye), 0.0)
    np.testing.assert_allclose(viz.divergence_of(eye), np.log(n))


def test_entropy_and_divergence_against_direct_sums():
    attention = random_attention(heads=4, tokens=6)
    entropy = -(attention * np.log(attention)).sum(-1).mean(axis=(0, 2))
    np.testing.assert_allclose(viz.entropy_of(attention), entropy)
    kl = (attention * np.log(attention * 6)).sum(-1).mean(axis=(0, 2))
    np.testing.assert_allclose(viz.divergence_of(attention), kl)


def test_divergence_of_lsa_like_rows_counts_the_masked_diagonal():
    # Uniform over the other N - 1 tokens, as LSA at its most uniform.
    n = 5
    rows = (np.ones((n, n)) - np.eye(n)) / (n - 1)
    attention = rows[None, None]
    np.testing.assert_allclose(viz.entropy_of(attention), [np.log(n - 1)])
    np.testing.assert_allclose(
        viz.divergence_of(attention), [np.log(n / (n - 1))]
    )


# --- model level ------------------------------------------------------------


@pytest.fixture(scope="module")
def sl_vit():
    return create_model(
        "sl_vit_32px",
        depth=2,
        embed_dim=32,
        num_heads=2,
        mlp_dim=64,
        head_dim=None,
        input_shape=(32, 32, 3),
        num_classes=6,
    )


def images(n=3, size=32):
    return np.random.default_rng(0).uniform(size=(n, size, size, 3))


def test_model_statistics_match_the_array_functions(sl_vit):
    x = images()
    blocks = list(viz.attention_maps(sl_vit, x).values())
    rollout = viz.attention_rollout(sl_vit, x, head_fusion="max")
    assert rollout.shape == (3, 8, 8)
    expected = viz.rollout(blocks, head_fusion="max")[:, 0, 1:]
    np.testing.assert_allclose(rollout.reshape(3, 64), expected, atol=1e-6)

    distance = viz.mean_attention_distance(sl_vit, x)
    assert distance.shape == (2, 2)
    for i, block in enumerate(blocks):
        np.testing.assert_allclose(
            distance[i], viz.distance_of(block, (8, 8), (4, 4), 1)
        )
    # Any attention pattern on an 8x8 grid of 4-px patches stays within
    # the diagonal (7 * 4 * sqrt 2 px); LSA never attends to itself, so at
    # least one patch away on average.
    assert np.all((distance > 4.0) & (distance < 7 * 4 * math.sqrt(2)))

    entropy = viz.attention_entropy(sl_vit, x)
    divergence = viz.attention_divergence(sl_vit, x)
    assert entropy.shape == divergence.shape == (2, 2)
    np.testing.assert_allclose(entropy + divergence, np.log(65))
    np.testing.assert_allclose(entropy[1], viz.entropy_of(blocks[1]))


class PatchOnlyTransformer(VisionModel):
    """A transformer whose tokens are all patches (no class token)."""

    def __init__(self, name="patch_only", **kwargs):
        inputs = keras.Input((16, 16, 3))
        x = layers.PatchEmbedding(4, 16, name="patch_embedding")(inputs)
        x, _ = layers.TransformerBlock(2, 32, name="block_0")(
            x, return_attention_scores=True
        )
        x, _ = layers.TransformerBlock(2, 32, name="block_1")(
            x, return_attention_scores=True
        )
        outputs = keras.layers.GlobalAveragePooling1D(name="pool")(x)
        self._build(inputs, outputs, {}, ["block_0", "block_1"], name, **kwargs)


def test_rollout_without_a_class_token_averages_the_queries():
    model = PatchOnlyTransformer()
    x = images(2, size=16)
    blocks = list(viz.attention_maps(model, x).values())
    assert blocks[0].shape == (2, 2, 16, 16)
    maps = viz.attention_rollout(model, x, discard_ratio=0.25)
    expected = viz.rollout(
        blocks, discard_ratio=0.25, has_class_token=False
    ).mean(axis=1)
    np.testing.assert_allclose(maps, expected.reshape(2, 4, 4), atol=1e-6)
    # Without a class token every patch is a query: 4x4 patches of 4 px.
    np.testing.assert_allclose(
        viz.mean_attention_distance(model, x)[0],
        viz.distance_of(blocks[0], (4, 4), (4, 4)),
    )


def test_rollout_validates_before_running_the_model(sl_vit):
    with pytest.raises(ValueError, match="head_fusion='median'"):
        viz.attention_rollout(sl_vit, images(), head_fusion="median")
    with pytest.raises(ValueError, match="discard_ratio=2"):
        viz.attention_rollout(sl_vit, images(), discard_ratio=2)


def test_statistics_need_a_transformer():
    model = create_model("convmixer_256_8", depth=1, dim=8)
    for function in (
        viz.attention_rollout,
        viz.mean_attention_distance,
        viz.attention_entropy,
        viz.attention_divergence,
    ):
        with pytest.raises(ValueError, match="no attention layers"):
            function(model, images(1))


def test_non_square_images_give_a_non_square_grid():
    model = create_model(
        "vit_32px",
        depth=1,
        embed_dim=16,
        num_heads=2,
        head_dim=None,
        input_shape=(16, 32, 3),
    )
    x = np.random.default_rng(0).uniform(size=(2, 16, 32, 3))
    assert viz.attention_rollout(model, x).shape == (2, 4, 8)
    assert viz.mean_attention_distance(model, x).shape == (1, 2)
