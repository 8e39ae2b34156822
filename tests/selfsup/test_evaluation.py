"""DINO's evaluation of frozen features: k-NN, linear probe, masks, and the
class-token features they run on."""

import sys

import keras
import numpy as np
import pytest

from kvision.models import create_model
from kvision.selfsup.evaluation import attention_masks
from kvision.selfsup.evaluation import class_token_features
from kvision.selfsup.evaluation import knn_accuracy
from kvision.selfsup.evaluation import knn_predict
from kvision.selfsup.evaluation import linear_probe_accuracy

# k-NN ------------------------------------------------------------------------


def reference_knn(train, labels, test, k, temperature, num_classes):
    """One test row at a time: full sort, explicit vote."""
    train = train / np.sqrt((train**2).sum(axis=1))[:, None]
    predictions = []
    for row in test:
        row = row / np.sqrt((row**2).sum())
        similarity = train @ row
        nearest = np.argsort(-similarity, kind="stable")[:k]
        votes = [0.0] * num_classes
        for j in nearest:
            votes[labels[j]] += np.exp(similarity[j] / temperature)
        predictions.append(int(np.argmax(votes)))
    return np.array(predictions)


CENTRES = np.random.default_rng(99).normal(size=(4, 8))


def random_set(seed, rows):
    """Four overlapping classes: the vote depends on k and temperature."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CENTRES), rows)
    features = CENTRES[labels] + 1.5 * rng.normal(size=(rows, 8))
    return features, labels


@pytest.mark.parametrize("k", [1, 5, 20, 60])
@pytest.mark.parametrize("temperature", [0.05, 0.5, 10.0])
def test_knn_matches_a_brute_force_reference(k, temperature):
    train, labels = random_set(0, 60)
    test, test_labels = random_set(1, 40)
    expected = reference_knn(train, labels, test, k, temperature, 4)
    predicted = knn_predict(train, labels, test, k=k, temperature=temperature)
    np.testing.assert_array_equal(predicted, expected)
    assert predicted.dtype == np.int64
    accuracy = knn_accuracy(
        train, labels, test, test_labels, k=k, temperature=temperature
    )
    assert isinstance(accuracy, float)
    assert accuracy == np.mean(expected == test_labels)


def test_knn_settings_above_are_not_trivial():
    # The settings compared with the reference give different votes, and
    # better than chance (0.25): the comparison checks k and temperature,
    # not one dominant class.
    train, labels = random_set(0, 60)
    test, test_labels = random_set(1, 40)
    runs = [
        knn_predict(train, labels, test, k=k, temperature=t)
        for k in (1, 5, 20, 60)
        for t in (0.05, 0.5, 10.0)
    ]
    assert len({tuple(run) for run in runs}) >= 5
    assert max(np.mean(run == test_labels) for run in runs) > 0.5


def test_knn_chunking_does_not_change_predictions():
    train, labels = random_set(2, 50)
    test, _ = random_set(3, 23)
    results = [
        knn_predict(train, labels, test, k=7, batch_size=size)
        for size in (1, 5, 23, 1024)
    ]
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


def test_knn_accepts_backend_tensors():
    train, labels = random_set(4, 30)
    test, test_labels = random_set(5, 10)
    train, test = train.astype("float32"), test.astype("float32")
    expected = knn_accuracy(train, labels, test, test_labels, k=5)
    tensors = [
        keras.ops.convert_to_tensor(x) for x in (train, labels, test)
    ] + [keras.ops.convert_to_tensor(test_labels)]
    assert knn_accuracy(*tensors, k=5) == expected


def test_knn_weighting_beats_the_majority_at_low_temperature():
    # Two close neighbours of class 0 against three farther ones of class 1
    # (and two distant class-2 rows that k=5 leaves out).
    angles = np.array([0.1, -0.1, 0.5, -0.5, 0.6, 3.0, -3.0])
    train = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = np.array([0, 0, 1, 1, 1, 2, 2])
    test = np.array([[1.0, 0.0]])
    sharp = knn_predict(train, labels, test, k=5, temperature=0.07)
    flat = knn_predict(train, labels, test, k=5, temperature=100.0)
    assert sharp.tolist() == [0]  # the weighted vote
    assert flat.tolist() == [1]  # almost equal weights: the majority
    # All seven vote with k=7: the distant class 2 still cannot win.
    assert knn_predict(train, labels, test, k=7).tolist() == [0]


def test_knn_small_temperature_does_not_overflow():
    train, labels = random_set(6, 20)
    test, _ = random_set(7, 5)
    with np.errstate(over="raise", invalid="raise"):
        predicted = knn_predict(train, labels, test, k=5, temperature=1e-4)
    # So sharp a vote is the nearest neighbour's label.
    np.testing.assert_array_equal(
        predicted, knn_predict(train, labels, test, k=1)
    )


def test_knn_bad_arguments():
    train, labels = random_set(8, 10)
    test, test_labels = random_set(9, 4)
    with pytest.raises(ValueError, match="k=11"):
        knn_predict(train, labels, test, k=11)
    with pytest.raises(ValueError, match="k=0"):
        knn_predict(train, labels, test, k=0)
    with pytest.raises(ValueError, match="train_labels"):
        knn_predict(train, labels[:-1], test, k=3)
    with pytest.raises(ValueError, match="test_labels"):
        knn_accuracy(train, labels, test, test_labels[:-1], k=3)
    with pytest.raises(ValueError, match="same number of channels"):
        knn_predict(train, labels, test[:, :-1], k=3)
    with pytest.raises(ValueError, match="temperature=0"):
        knn_predict(train, labels, test, k=3, temperature=0.0)
    with pytest.raises(ValueError, match="batch_size=0"):
        knn_predict(train, labels, test, k=3, batch_size=0)
    with pytest.raises(ValueError, match="integer class indices"):
        knn_predict(train, labels.astype("float32"), test, k=3)
    with pytest.raises(ValueError, match="num_classes"):
        knn_predict(train, labels, test, k=3, num_classes=2)
    with pytest.raises(ValueError, match="test_features"):
        knn_predict(train, labels, test[0], k=3)


# Linear probe ----------------------------------------------------------------


def test_linear_probe_separates_separable_data():
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    features = rng.normal(size=(200, 5)) + 6.0 * labels[:, None]
    accuracy = linear_probe_accuracy(
        features[:100], labels[:100], features[100:], labels[100:]
    )
    assert accuracy == 1.0


def test_linear_probe_is_near_chance_on_random_labels():
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(1)
    features = rng.normal(size=(400, 10))
    labels = rng.integers(0, 2, 400)
    accuracy = linear_probe_accuracy(
        features[:200], labels[:200], features[200:], labels[200:]
    )
    assert 0.3 < accuracy < 0.7


def test_linear_probe_standardises_with_training_statistics():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(2)
    features = rng.normal(size=(300, 6))
    features[:, 0] = 1000.0 * features[:, 0] + 50.0  # a wide channel
    features[:, 1] = 3.0  # a constant one
    labels = (features[:, 2] + rng.normal(size=300) > 0).astype(int)
    train, test = slice(0, 150), slice(150, None)
    scaler = StandardScaler().fit(features[train])
    probe = LogisticRegression(max_iter=2000, C=0.01)
    probe.fit(scaler.transform(features[train]), labels[train])
    expected = np.mean(
        probe.predict(scaler.transform(features[test])) == labels[test]
    )
    accuracy = linear_probe_accuracy(
        features[train], labels[train], features[test], labels[test], C=0.01
    )
    assert accuracy == expected


def test_linear_probe_on_raw_features_is_plain_logistic_regression():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    features = rng.uniform(size=(200, 12))
    features[:, 0] *= 40.0  # standardising would change this fit
    labels = (features[:, 0] / 40.0 + features[:, 1] > 1.0).astype(int)
    train, test = slice(0, 120), slice(120, None)
    probe = LogisticRegression(max_iter=1000)
    probe.fit(features[train], labels[train])
    expected = probe.score(features[test], labels[test])
    accuracy = linear_probe_accuracy(
        features[train],
        labels[train],
        features[test],
        labels[test],
        max_iter=1000,
        standardize=False,
    )
    assert accuracy == expected
    standardised = linear_probe_accuracy(
        features[train], labels[train], features[test], labels[test]
    )
    assert standardised != accuracy


def test_linear_probe_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    x = np.zeros((2, 1))
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        linear_probe_accuracy(x, [0, 1], x, [0, 1])


def test_linear_probe_bad_arguments():
    pytest.importorskip("sklearn")
    x, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="max_iter=0"):
        linear_probe_accuracy(x, y, x, y, max_iter=0)
    with pytest.raises(ValueError, match="C=-1"):
        linear_probe_accuracy(x, y, x, y, C=-1.0)
    with pytest.raises(ValueError, match="test_labels"):
        linear_probe_accuracy(x, y, x, y[:3])
    with pytest.raises(ValueError, match="standardize='no'"):
        linear_probe_accuracy(x, y, x, y, standardize="no")


# Attention masks -------------------------------------------------------------


def reference_masks(maps, mass):
    """One map at a time, kept patches counted from the largest down."""
    masks = np.zeros(maps.shape, bool)
    for index in np.ndindex(maps.shape[:-2]):
        values = maps[index].ravel().tolist()
        total = sum(values)
        # Ascending, equal values by position (a stable sort).
        order = sorted(range(len(values)), key=lambda i: (values[i], i))
        running = 0.0
        keep = np.zeros(len(values), bool)
        for i in order:
            running += values[i] / total
            keep[i] = running > 1.0 - mass
        masks[index] = keep.reshape(maps.shape[-2:])
    return masks


@pytest.mark.parametrize("mass", [0.1, 0.6, 0.9, 1.0])
def test_attention_masks_match_a_per_map_reference(mass):
    rng = np.random.default_rng(0)
    maps = rng.random((2, 3, 4, 4)) ** 3
    masks = attention_masks(maps, mass=mass)
    assert masks.shape == maps.shape and masks.dtype == bool
    np.testing.assert_array_equal(masks, reference_masks(maps, mass))


@pytest.mark.parametrize("mass", [0.01, 0.6, 1.0])
def test_one_hot_map_keeps_its_patch(mass):
    grid = np.zeros((4, 4))
    grid[2, 1] = 0.7
    np.testing.assert_array_equal(attention_masks(grid, mass), grid > 0)


def test_uniform_map_keeps_half_by_stable_order():
    # Ones: every share is 1/16 and every partial sum exact, so half the
    # mass is exactly 8 patches; equal values keep the later ones.
    masks = attention_masks(np.ones((1, 4, 4)), mass=0.5)
    expected = np.zeros((1, 4, 4), bool)
    expected[0, 2:] = True
    np.testing.assert_array_equal(masks, expected)


def test_distinct_values_keep_the_largest():
    rng = np.random.default_rng(1)
    grid = rng.permutation(np.arange(1.0, 17.0)).reshape(4, 4)
    # 16 + 15 + 14 + 13 + 12 = 70 >= 68 = half of 136, and 58 without 12.
    np.testing.assert_array_equal(attention_masks(grid, 0.5), grid >= 12)


def test_full_mass_keeps_the_non_zero_patches():
    rng = np.random.default_rng(2)
    maps = rng.random((3, 5, 5)) * (rng.random((3, 5, 5)) > 0.4)
    np.testing.assert_array_equal(attention_masks(maps, 1.0), maps > 0)


@pytest.mark.parametrize("mass", [0.2, 0.5, 0.6, 0.95])
def test_masks_are_the_smallest_set_holding_the_mass(mass):
    rng = np.random.default_rng(3)
    maps = rng.exponential(size=(50, 5, 6))
    masks = attention_masks(maps, mass=mass)
    for grid, mask in zip(maps, masks, strict=True):
        shares = grid / grid.sum()
        kept = shares[mask]
        assert kept.sum() >= mass - 1e-12
        assert kept.sum() - kept.min() < mass
        assert kept.min() >= shares[~mask].max(initial=0.0)


def test_attention_masks_edge_cases():
    # An all-zero map keeps nothing, without a division warning.
    assert not attention_masks(np.zeros((2, 3, 3))).any()
    # A backend tensor works, and the result is NumPy.
    grid = keras.ops.convert_to_tensor(np.array([[0.5, 0.1], [0.3, 0.1]]))
    masks = attention_masks(grid)
    assert isinstance(masks, np.ndarray)
    assert masks.tolist() == [[True, False], [True, False]]


@pytest.mark.parametrize("mass", [0, -0.1, 1.5, True, "0.5", None])
def test_attention_masks_reject_bad_mass(mass):
    with pytest.raises(ValueError, match="mass="):
        attention_masks(np.ones((4, 4)), mass=mass)


def test_attention_masks_reject_bad_maps():
    with pytest.raises(ValueError, match="non-negative"):
        attention_masks(np.array([[0.5, -0.1], [0.3, 0.3]]))
    with pytest.raises(ValueError, match="non-negative"):
        attention_masks(np.array([[0.5, np.nan], [0.3, 0.3]]))
    with pytest.raises(ValueError, match="gh, gw"):
        attention_masks(np.ones(4))


# Class-token features --------------------------------------------------------


def test_class_token_features_of_a_vit():
    model = create_model("vit_32px", depth=1, include_top=False)
    images = np.random.default_rng(0).random((4, 32, 32, 3), "float32")
    features = class_token_features(model, images, batch_size=2)
    assert features.shape == (4, 192) and features.dtype == np.float32
    tokens = model.predict(images, verbose=0)
    np.testing.assert_allclose(features, tokens[:, 0], rtol=1e-5, atol=1e-6)


def pooled_model(pool):
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(5, 1, name="conv")(inputs)
    if pool:
        x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x)


def test_class_token_features_pass_pooled_features_through():
    model = pooled_model(pool=True)
    images = np.random.default_rng(1).random((3, 4, 4, 3), "float32")
    features = class_token_features(model, images)
    assert features.shape == (3, 5) and features.dtype == np.float32
    np.testing.assert_allclose(
        features, model.predict(images, verbose=0), rtol=1e-6
    )


def test_class_token_features_reject_feature_maps():
    images = np.zeros((2, 4, 4, 3), "float32")
    with pytest.raises(ValueError, match=r"\(2, 4, 4, 5\)"):
        class_token_features(pooled_model(pool=False), images)
    with pytest.raises(ValueError, match="batch_size=0"):
        class_token_features(pooled_model(pool=True), images, batch_size=0)
    inputs = keras.Input((4, 4, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    two_outputs = keras.Model(inputs, [pooled, pooled])
    with pytest.raises(ValueError, match="one"):
        class_token_features(two_outputs, images)
