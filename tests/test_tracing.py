"""Telling concrete values from traced ones, on every backend."""

import keras
import numpy as np
import pytest

from kvision._tracing import compiling_on_jax
from kvision._tracing import is_concrete


def test_eager_values_are_concrete():
    assert is_concrete(np.ones(2))
    assert is_concrete(keras.ops.ones(2))
    assert not compiling_on_jax()


def test_tensorflow_graph_values_are_not_concrete():
    # Keras' preprocessing layers run inside tf.data on every backend.
    tf = pytest.importorskip("tensorflow")
    seen = []

    @tf.function
    def traced(x):
        seen.append(is_concrete(x))
        return x

    traced(tf.ones(2))
    assert seen == [False]
    assert is_concrete(tf.ones(2))


@pytest.mark.backend("jax")
def test_jax_tracers_are_not_concrete():
    import jax

    seen = []

    def traced(x):
        seen.append((is_concrete(x), compiling_on_jax()))
        return x

    jax.jit(traced)(keras.ops.ones(2))
    assert seen == [(False, True)]
