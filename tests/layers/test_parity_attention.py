"""MultiHeadSelfAttention and LocalitySelfAttention against NumPy."""

import keras
import numpy as np
import pytest

from kvision import ops as kv_ops
from kvision.layers import LocalitySelfAttention
from kvision.layers import MultiHeadSelfAttention
from tests import numpy_reference as ref
from tests.helpers import count_calls
from tests.helpers import to_numpy

RTOL = 1e-4
ATOL = 1e-5


def random_tokens(shape=(2, 6, 8), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def built(cls, tokens, seed=1, **kwargs):
    layer = cls(**kwargs)
    layer.build(tokens.shape)
    ref.randomize_weights(layer, seed)
    return layer


def attention_reference(layer, tokens, scale, mask_diagonal):
    qkv_bias = None if layer.qkv.bias is None else to_numpy(layer.qkv.bias)
    return ref.self_attention(
        tokens,
        to_numpy(layer.qkv.kernel),
        qkv_bias,
        to_numpy(layer.projection.kernel),
        to_numpy(layer.projection.bias),
        layer.num_heads,
        scale,
        mask_diagonal=mask_diagonal,
    )


def call_with_scores(layer, tokens):
    outputs, scores = layer(tokens, return_attention_scores=True)
    return to_numpy(outputs), to_numpy(scores)


# --------------------------------------------------------------------------
# MultiHeadSelfAttention


@pytest.mark.parametrize(
    "num_heads, head_dim, expected_head_dim",
    [(2, None, 4), (4, None, 2), (2, 3, 3)],
)
def test_mhsa_matches_reference(num_heads, head_dim, expected_head_dim):
    tokens = random_tokens()
    layer = built(
        MultiHeadSelfAttention,
        tokens,
        num_heads=num_heads,
        head_dim=head_dim,
    )
    assert tuple(layer.qkv.kernel.shape) == (
        8,
        3 * num_heads * expected_head_dim,
    )
    outputs, scores = call_with_scores(layer, tokens)
    want, want_scores = attention_reference(
        layer, tokens, expected_head_dim**-0.5, mask_diagonal=False
    )
    np.testing.assert_allclose(scores, want_scores, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(outputs, want, rtol=RTOL, atol=ATOL)


def test_mhsa_has_qkv_bias_by_default():
    layer = built(MultiHeadSelfAttention, random_tokens(), num_heads=2)
    assert layer.qkv.bias is not None


def test_mhsa_inference_ignores_dropout():
    tokens = random_tokens()
    layer = built(
        MultiHeadSelfAttention,
        tokens,
        num_heads=2,
        attention_dropout=0.5,
        dropout=0.5,
        seed=0,
    )
    outputs = to_numpy(layer(tokens, training=False))
    want, _ = attention_reference(layer, tokens, 4**-0.5, mask_diagonal=False)
    np.testing.assert_allclose(outputs, want, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------
# LocalitySelfAttention


def test_lsa_matches_reference_with_per_head_temperature():
    tokens = random_tokens()
    layer = built(LocalitySelfAttention, tokens, num_heads=2, head_dim=3)
    # Distinct positive temperatures per head (randomize_weights would allow
    # negative ones, which are legal but less telling).
    temperature = np.array([0.3, 1.7], "float32")
    layer.temperature.assign(temperature)
    outputs, scores = call_with_scores(layer, tokens)
    want, want_scores = attention_reference(
        layer, tokens, temperature, mask_diagonal=True
    )
    np.testing.assert_allclose(scores, want_scores, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(outputs, want, rtol=RTOL, atol=ATOL)


def test_lsa_diagonal_is_exactly_zero_for_every_token():
    # Token 0 plays the class token; the official code masks it too.
    tokens = random_tokens()
    layer = built(LocalitySelfAttention, tokens, num_heads=4)
    _, scores = call_with_scores(layer, tokens)
    n = tokens.shape[1]
    diagonal = scores[..., np.arange(n), np.arange(n)]
    assert diagonal.shape == (2, 4, n)
    assert np.all(diagonal == 0.0)
    off_diagonal = scores[..., ~np.eye(n, dtype=bool)]
    assert np.all(off_diagonal > 0.0)
    np.testing.assert_allclose(scores.sum(-1), 1.0, rtol=1e-5)


def test_lsa_temperature_is_a_trainable_per_head_weight():
    layer = LocalitySelfAttention(num_heads=2, head_dim=3)
    layer.build((None, 6, 8))
    assert tuple(layer.temperature.shape) == (2,)
    np.testing.assert_allclose(
        to_numpy(layer.temperature), [3**-0.5] * 2, rtol=1e-6
    )
    assert any(w is layer.temperature for w in layer.trainable_weights)


def test_lsa_qkv_has_no_bias_by_default():
    layer = built(LocalitySelfAttention, random_tokens(), num_heads=2)
    assert layer.qkv.bias is None


def test_lsa_one_head_temperature_changes_only_that_head():
    tokens = random_tokens()
    layer = built(LocalitySelfAttention, tokens, num_heads=4)
    layer.temperature.assign(np.full((4,), 0.5, "float32"))
    _, before = call_with_scores(layer, tokens)
    layer.temperature.assign(np.array([0.5, 2.0, 0.5, 0.5], "float32"))
    _, after = call_with_scores(layer, tokens)
    changed = [not np.allclose(before[:, h], after[:, h]) for h in range(4)]
    assert changed == [False, True, False, False]
    np.testing.assert_array_equal(after[:, [0, 2, 3]], before[:, [0, 2, 3]])


# --------------------------------------------------------------------------
# The fused path (no weights returned) against the explicit one


ATTENTION_LAYERS = [
    pytest.param(MultiHeadSelfAttention, {}, id="mhsa"),
    pytest.param(MultiHeadSelfAttention, {"head_dim": 3}, id="mhsa-head_dim"),
    pytest.param(LocalitySelfAttention, {}, id="lsa"),
]


def spread_temperature(layer):
    if isinstance(layer, LocalitySelfAttention):
        layer.temperature.assign(np.array([0.3, 1.7], "float32"))


@pytest.mark.parametrize("cls, kwargs", ATTENTION_LAYERS)
def test_fused_path_matches_the_explicit_one(cls, kwargs):
    tokens = random_tokens()
    layer = built(cls, tokens, num_heads=2, **kwargs)
    spread_temperature(layer)
    fused = to_numpy(layer(tokens))
    explicit, _ = call_with_scores(layer, tokens)
    np.testing.assert_allclose(fused, explicit, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("cls, kwargs", ATTENTION_LAYERS)
def test_fused_path_trains_like_the_explicit_one(cls, kwargs):
    tokens = random_tokens()
    target = random_tokens(seed=3)

    def trained_weights(with_scores):
        layer = built(cls, tokens, num_heads=2, **kwargs)
        spread_temperature(layer)
        inputs = keras.Input(tokens.shape[1:])
        outputs = layer(inputs, return_attention_scores=with_scores)
        if with_scores:
            outputs = outputs[0]
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        model.train_on_batch(tokens, target)
        return [to_numpy(w) for w in layer.weights]

    for got, want in zip(
        trained_weights(False), trained_weights(True), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_weights_are_materialised_only_when_needed(monkeypatch):
    calls = count_calls(monkeypatch, kv_ops, "attention_probabilities")
    tokens = random_tokens()
    layer = built(
        LocalitySelfAttention, tokens, num_heads=2, attention_dropout=0.1
    )
    layer(tokens)
    layer(tokens, training=False)
    assert calls == []
    # Attention dropout acts on the weights, so training needs them.
    layer(tokens, training=True)
    assert calls == [1]
    layer(tokens, return_attention_scores=True)
    assert calls == [1, 1]
