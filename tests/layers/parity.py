"""Helpers the parity tests share: random inputs, seeded weights, and
reading a built layer's weights as NumPy for the references."""

import numpy as np

from tests import numpy_reference as ref
from tests.helpers import to_numpy


def random_array(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def built(layer, input_shape, seed=1):
    """Builds ``layer`` and fills every weight with seeded random values."""
    layer.build(input_shape)
    ref.randomize_weights(layer, seed)
    return layer


def norm_params(norm):
    return to_numpy(norm.gamma), to_numpy(norm.beta), norm.epsilon


def dense_params(dense):
    bias = None if dense.bias is None else to_numpy(dense.bias)
    return to_numpy(dense.kernel), bias


def mlp_params(mlp):
    return (*dense_params(mlp.fc1), *dense_params(mlp.fc2))


def batch_norm_params(bn):
    return (
        to_numpy(bn.moving_mean),
        to_numpy(bn.moving_variance),
        to_numpy(bn.gamma),
        to_numpy(bn.beta),
        bn.epsilon,
    )
