"""DINO's loss, schedules and head against NumPy references, on this backend."""

import math

import keras
import numpy as np
import pytest

from kvision.selfsup import DINOHead
from kvision.selfsup import batch_entropy
from kvision.selfsup import dino_loss
from kvision.selfsup import mean_entropy
from kvision.selfsup import teacher_momentum
from kvision.selfsup import teacher_temperature
from tests import helpers
from tests.layer_cases import LayerCase


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def reference_dino_loss(student, teacher, center, ts, tt):
    """The official DINOLoss, pair by pair, in float64."""
    student, teacher = student.astype("float64"), teacher.astype("float64")
    targets = np.exp(_log_softmax((teacher - center) / tt))
    total, terms = 0.0, 0
    for iq in range(len(teacher)):
        for v in range(len(student)):
            if v == iq:
                continue
            per_image = -(targets[iq] * _log_softmax(student[v] / ts)).sum(-1)
            total += per_image.mean()
            terms += 1
    return total / terms


@pytest.mark.parametrize(
    "crops, ts, tt", [(4, 0.1, 0.04), (2 + 6, 0.2, 0.07), (3, 1.0, 1.0)]
)
def test_loss_matches_the_official_pairs(crops, ts, tt):
    rng = np.random.default_rng(crops)
    student = rng.normal(size=(crops, 5, 16)).astype("float32")
    teacher = rng.normal(size=(2, 5, 16)).astype("float32")
    center = rng.normal(size=(16,)).astype("float32") * 0.3
    got = dino_loss(student, teacher, center, ts, tt)
    want = reference_dino_loss(student, teacher, center, ts, tt)
    np.testing.assert_allclose(helpers.to_numpy(got), want, rtol=2e-5)


def test_loss_skips_only_the_same_crop():
    # Student crop 0 equal to teacher crop 0 and crop 1 to crop 1 add
    # nothing special: swap the student's global crops and the loss changes.
    rng = np.random.default_rng(0)
    student = rng.normal(size=(3, 4, 8)).astype("float32")
    teacher = rng.normal(size=(2, 4, 8)).astype("float32")
    center = np.zeros(8, "float32")
    swapped = student[[1, 0, 2]]
    a = float(helpers.to_numpy(dino_loss(student, teacher, center)))
    b = float(helpers.to_numpy(dino_loss(swapped, teacher, center)))
    assert abs(a - b) > 1e-3
    want = reference_dino_loss(swapped, teacher, center, 0.1, 0.04)
    assert b == pytest.approx(want, rel=2e-5)


def test_uniform_targets_and_predictions_give_log_out_dim():
    student = np.zeros((4, 3, 32), "float32")
    teacher = np.ones((2, 3, 32), "float32")
    loss = dino_loss(student, teacher, np.ones(32, "float32"))
    assert float(helpers.to_numpy(loss)) == pytest.approx(
        math.log(32), rel=1e-5
    )


@pytest.mark.parametrize(
    "student_shape, teacher_shape",
    [((4, 3, 8), (2, 3, 9)), ((4, 3, 8), (5, 3, 8)), ((12, 8), (2, 3, 8))],
)
def test_loss_rejects_mismatched_logits(student_shape, teacher_shape):
    with pytest.raises(ValueError, match="student_logits"):
        dino_loss(
            np.zeros(student_shape, "float32"),
            np.zeros(teacher_shape, "float32"),
            np.zeros(8, "float32"),
        )


def test_loss_needs_a_crop_the_teacher_did_not_see():
    with pytest.raises(ValueError, match="num_crops=1"):
        dino_loss(
            np.zeros((1, 2, 4), "float32"),
            np.zeros((1, 2, 4), "float32"),
            np.zeros(4, "float32"),
        )


def test_entropies():
    uniform = np.full((3, 8), 1 / 8, "float32")
    assert float(helpers.to_numpy(mean_entropy(uniform))) == pytest.approx(
        math.log(8), rel=1e-6
    )
    same_one_hot = np.eye(8, dtype="float32")[[2, 2, 2]]
    assert float(helpers.to_numpy(mean_entropy(same_one_hot))) < 1e-6
    assert float(helpers.to_numpy(batch_entropy(same_one_hot))) < 1e-6
    spread = np.eye(8, dtype="float32")[[0, 1, 2, 3]]
    assert float(helpers.to_numpy(batch_entropy(spread))) == pytest.approx(
        math.log(4), rel=1e-6
    )


def test_momentum_follows_the_official_cosine():
    total = 37
    steps = np.arange(0, total + 5)
    want = (
        1
        - (1 - 0.996)
        * (np.cos(np.pi * np.minimum(steps, total) / total) + 1)
        / 2
    )
    got = [float(helpers.to_numpy(teacher_momentum(s, total))) for s in steps]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)


def test_temperature_warms_up_linearly_then_holds():
    got = [
        float(helpers.to_numpy(teacher_temperature(s, 4, 0.04, 0.08)))
        for s in range(7)
    ]
    np.testing.assert_allclose(
        got, [0.04, 0.05, 0.06, 0.07, 0.08, 0.08, 0.08], atol=1e-7
    )
    no_warmup = teacher_temperature(3, 0, 0.02, 0.05)
    assert float(helpers.to_numpy(no_warmup)) == pytest.approx(0.05)


HEAD_CASE = LayerCase(
    "dino_head",
    DINOHead,
    dict(out_dim=24, hidden_dim=16, bottleneck_dim=8, num_layers=3),
    (12,),
)
FREE_SCALE_CASE = LayerCase(
    "dino_head_free_scale",
    DINOHead,
    dict(
        out_dim=10,
        hidden_dim=6,
        bottleneck_dim=4,
        num_layers=1,
        norm_last_layer=False,
    ),
    (5,),
)


BATCH_NORM_CASE = LayerCase(
    "dino_head_batch_norm",
    DINOHead,
    dict(out_dim=12, hidden_dim=8, bottleneck_dim=4, use_bn=True),
    (6,),
)


@pytest.mark.parametrize(
    "case", [HEAD_CASE, FREE_SCALE_CASE, BATCH_NORM_CASE], ids=lambda c: c.id
)
def test_head_through_the_shared_checks(case, tmp_path):
    helpers.check_eager_and_symbolic_shapes(case)
    helpers.check_config_round_trip(case)
    helpers.check_save_and_load(case, tmp_path)
    helpers.check_training_step(case)


def _gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


@pytest.mark.parametrize("use_bn", [False, True])
def test_head_matches_a_numpy_reference(use_bn):
    head = DINOHead(
        out_dim=12, hidden_dim=10, bottleneck_dim=6, num_layers=3, use_bn=use_bn
    )
    x = np.random.default_rng(0).normal(size=(4, 7)).astype("float32")
    got = helpers.to_numpy(head(x))
    if use_bn:
        for scale in head.norm_scales:
            scale.assign(np.linspace(0.5, 2.0, 10).astype("float32"))
        for offset in head.norm_offsets:
            offset.assign(np.linspace(-0.3, 0.3, 10).astype("float32"))
        got = helpers.to_numpy(head(x))
    h = x.astype("float64")
    for i, layer in enumerate(head.dense_layers):
        h = h @ helpers.to_numpy(layer.kernel) + helpers.to_numpy(layer.bias)
        if i < 2 and use_bn:
            # PyTorch's BatchNorm1d in training mode: the batch's biased
            # statistics, whatever the call's mode.
            h = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5)
            h = h * np.linspace(0.5, 2.0, 10) + np.linspace(-0.3, 0.3, 10)
        if i < 2:
            h = _gelu(h)
    z = h / np.linalg.norm(h, axis=-1, keepdims=True)
    v = helpers.to_numpy(head.prototypes).astype("float64")
    w = v / np.linalg.norm(v, axis=0, keepdims=True)
    np.testing.assert_allclose(got, z @ w, rtol=1e-4, atol=1e-5)
    # With the scale frozen at 1 the logits are cosines.
    assert np.abs(got).max() <= 1 + 1e-5
    assert [w.name for w in head.trainable_weights].count(
        "prototype_scale"
    ) == 0


def test_head_initialisation_is_the_official_one():
    head = DINOHead(out_dim=4096, hidden_dim=512, bottleneck_dim=256)
    head.build((None, 384))
    kernel = helpers.to_numpy(head.dense_layers[0].kernel)
    # Keras truncates at two standard deviations (about 2.2 on PyTorch); an
    # untruncated draw of this size would reach about 4.5.
    assert kernel.std() == pytest.approx(0.02 * 0.88, rel=0.05)
    assert np.abs(kernel).max() <= 0.05
    assert not helpers.to_numpy(head.dense_layers[0].bias).any()
    prototypes = helpers.to_numpy(head.prototypes)
    bound = 1 / math.sqrt(256)
    assert np.abs(prototypes).max() <= bound
    assert prototypes.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    np.testing.assert_array_equal(helpers.to_numpy(head.prototype_scale), 1)


class GatedHead(keras.Model):
    def __init__(self, gate):
        super().__init__()
        self.head = DINOHead(out_dim=6, hidden_dim=5, bottleneck_dim=4)
        self.gate = gate

    def call(self, x):
        return self.head(x, train_prototypes=self.gate)


@pytest.mark.parametrize("gate", [0.0, 1.0])
def test_frozen_prototypes_get_no_update(gate):
    model = GatedHead(gate)
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss="mse",
        jit_compile=helpers.jit_compile_setting(),
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype("float32")
    y = rng.normal(size=(8, 6)).astype("float32")
    model.predict(x, verbose=0)
    before = helpers.to_numpy(model.head.prototypes).copy()
    kernel = helpers.to_numpy(model.head.dense_layers[0].kernel).copy()
    model.train_on_batch(x, y)
    moved = not np.allclose(helpers.to_numpy(model.head.prototypes), before)
    assert moved == bool(gate)
    assert not np.allclose(
        helpers.to_numpy(model.head.dense_layers[0].kernel), kernel
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(out_dim=0), "out_dim"),
        (dict(out_dim=8, hidden_dim=-1), "hidden_dim"),
        (dict(out_dim=8, num_layers=0), "num_layers"),
        (dict(out_dim=8, bottleneck_dim=2.5), "bottleneck_dim"),
    ],
)
def test_head_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DINOHead(**kwargs)


def test_head_rejects_token_inputs():
    with pytest.raises(ValueError, match="rank 2"):
        DINOHead(out_dim=8)(np.zeros((2, 3, 4), "float32"))
