"""Each paper's small model learns real data within a CPU budget.

The models are the CPU-sized configurations of ``benchmarks/budgets.py``
(shared with ``benchmarks/accuracy_under_budget.py``), trained as
``python -m kvision.train`` trains by default (the paper's recipe adapted to
the data by ``adapt_recipe``), seed 0, on scikit-learn's handwritten digits
(real, offline; 1,437 training and 360 test images, 10 classes). The
thresholds sit below the lowest accuracy measured on the three backends.

Measured with seed 0 (``benchmarks/results/accuracy_*.json``, where the
full-budget digits rows are these very runs, 2026-12-03): test accuracy /
wall time of ``fit`` in seconds / process CPU seconds after ``ep`` epochs,
on a 2-core CPU shared with other jobs (``OMP_NUM_THREADS=1``, load
average about 4), so the times are noisy:

===============  ==  ================  ================  ================
model            ep  tensorflow        jax               torch
===============  ==  ================  ================  ================
sl_vit_32px      15  0.947 / 28 / 20   0.953 / 32 / 25   0.958 / 31 / 15
vit_32px         20  0.953 / 33 / 20   0.933 / 25 / 22   0.950 / 34 / 16
convmixer_256_8  20  0.986 / 15 / 10   0.986 / 13 / 10   0.989 / 10 / 8
mixer_32px       15  0.825 / 26 / 15   0.861 / 23 / 17   0.813 / 23 / 13
convnext_32px    30  0.939 / 33 / 21   0.950 / 42 / 31   0.930 / 52 / 24
===============  ==  ================  ================  ================

Logistic regression on the raw pixels reaches 0.961. With the quick
recipe these budgets had ended at 0.63 to 0.89 on every backend (the
recipe kept the papers' batches of 128 to 256, 6 to 11 steps an epoch);
adapted, the 5,000-parameter ConvMixer clears the probe and the others
come within about 3 points of it, except the Mixer, which levels off near
0.82 at this size.

Each model trains on one backend in the suite (``BACKEND``): a model
learns from the same Keras code on every backend, the thresholds hold on
all three (the table above), and the layers' own compiled training steps
are tested on every backend in ``tests/layers``. The assignment spreads
the work so that every backend trains something end to end here or in
``tests/viz/test_localization.py`` (TensorFlow: SL-ViT, Mixer and the
ConvMixer maps; JAX: ViT and the SL-ViT maps; PyTorch: ConvNeXt and
ConvMixer), and keeps the depthwise-convolution models off JAX, their
slowest backend. ``KVISION_EVERY_BACKEND=1`` runs every model on every
backend.
"""

import pytest

from benchmarks import budgets
from kvision.training.fit import train

# About 8 points below the lowest of the three backends: the backends
# draw different random numbers from the same seed, and the spread between
# them reached 11 points with the quick recipe (vit_32px).
MIN_TEST_ACCURACY = {
    "sl_vit_32px": 0.87,
    "vit_32px": 0.85,
    "convmixer_256_8": 0.90,
    "mixer_32px": 0.73,
    "convnext_32px": 0.85,
}


BACKEND = {
    "sl_vit_32px": "tensorflow",
    "vit_32px": "jax",
    "convmixer_256_8": "torch",
    "mixer_32px": "tensorflow",
    "convnext_32px": "torch",
}


def test_every_budgeted_model_has_a_threshold_and_a_backend():
    assert sorted(MIN_TEST_ACCURACY) == sorted(budgets.BUDGETS)
    assert sorted(BACKEND) == sorted(budgets.BUDGETS)
    assert set(BACKEND.values()) == {"tensorflow", "jax", "torch"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.one_backend(BACKEND[name]))
        for name in MIN_TEST_ACCURACY
    ],
)
def test_small_model_learns_digits(name):
    metrics = train(**budgets.BUDGETS[name].train_kwargs("digits"), verbose=0)
    assert metrics["test_accuracy"] >= MIN_TEST_ACCURACY[name], metrics
