"""DepthwiseConv2D: both implementations against NumPy and each other."""

import keras
import numpy as np
import pytest

from kvision import ops as kv_ops
from kvision.layers import DepthwiseConv2D
from tests import numpy_reference as ref
from tests.helpers import to_numpy
from tests.layers.parity import built
from tests.layers.parity import random_array

RTOL = 1e-4
ATOL = 1e-5


@pytest.mark.parametrize("implementation", ["native", "shifted"])
@pytest.mark.parametrize("kernel_size", [1, 2, 3, 4, 7])
def test_depthwise_same_matches_reference(implementation, kernel_size):
    x = random_array((2, 9, 7, 5))
    layer = built(
        DepthwiseConv2D(
            kernel_size, padding="same", implementation=implementation
        ),
        x.shape,
    )
    got = to_numpy(layer(x))
    want = ref.depthwise_conv2d_same(
        x, to_numpy(layer.kernel), to_numpy(layer.bias)
    )
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kernel_size", [(3, 3), (2, 5)])
def test_shifted_valid_padding_equals_native(kernel_size):
    x = random_array((2, 8, 9, 4))
    native = built(
        DepthwiseConv2D(
            kernel_size, activation="relu", implementation="native"
        ),
        x.shape,
    )
    shifted = DepthwiseConv2D(
        kernel_size, activation="relu", implementation="shifted"
    )
    shifted.build(x.shape)
    shifted.set_weights(native.get_weights())
    got, want = to_numpy(shifted(x)), to_numpy(native(x))
    assert got.shape == (2, 9 - kernel_size[0], 10 - kernel_size[1], 4)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_gradients_of_both_paths_agree():
    x = random_array((2, 6, 6, 3))
    kernel = random_array((5, 5, 3, 1), seed=2)

    def loss_and_grads(conv):
        model_input = keras.Input((6, 6, 3))
        layer = DepthwiseConv2D(5, padding="same", implementation=conv)
        model = keras.Model(model_input, layer(model_input))
        layer.set_weights([kernel, np.zeros(3, "float32")])
        model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
        model.train_on_batch(x, np.ones((2, 6, 6, 3), "float32"))
        return to_numpy(layer.kernel)

    np.testing.assert_allclose(
        loss_and_grads("shifted"),
        loss_and_grads("native"),
        rtol=RTOL,
        atol=ATOL,
    )


def test_native_is_the_default():
    assert not DepthwiseConv2D(3, padding="same").uses_shifted
    assert DepthwiseConv2D(3, implementation="shifted").uses_shifted


def test_shifted_op_matches_keras_op():
    x = random_array((1, 5, 5, 2))
    kernel = random_array((3, 3, 2, 1), seed=3)
    got = to_numpy(kv_ops.depthwise_conv_shifted(x, kernel))
    want = to_numpy(keras.ops.depthwise_conv(x, kernel, 1, padding="same"))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_implementation_survives_a_config_round_trip():
    layer = DepthwiseConv2D(3, padding="same", implementation="native")
    clone = DepthwiseConv2D.from_config(layer.get_config())
    assert clone.implementation == "native"
    assert clone.get_config() == layer.get_config()
