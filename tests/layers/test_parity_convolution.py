"""DepthwiseConv2D: both implementations against NumPy and each other."""

import keras
import numpy as np
import pytest

from kvision import ops as kv_ops
from kvision.layers import DepthwiseConv2D
from tests import numpy_reference as ref
from tests.helpers import count_calls
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


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize(
    "kernel_size,strides,multiplier",
    [(3, 2, 2), (3, 2, 1), ((2, 3), (2, 3), 1), (1, 1, 3), (4, 3, 2)],
)
def test_strided_and_multiplied_shifted_path_equals_native(
    kernel_size, strides, multiplier, padding
):
    # PiT's pooling is the first case: kernel 3, stride 2, multiplier 2.
    x = random_array((3, 9, 8, 4))
    target_seed = 7

    def outputs_and_trained_weights(conv):
        model_input = keras.Input(x.shape[1:])
        layer = DepthwiseConv2D(
            kernel_size,
            strides=strides,
            padding=padding,
            depth_multiplier=multiplier,
            implementation=conv,
        )
        model = keras.Model(model_input, layer(model_input))
        kernel_shape = tuple(layer.kernel.shape)
        layer.set_weights(
            [
                random_array(kernel_shape, seed=2),
                random_array((4 * multiplier,)),
            ]
        )
        outputs = to_numpy(model(x))
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        target = random_array(outputs.shape, seed=target_seed)
        model.train_on_batch(x, target)
        return outputs, layer.get_weights()

    (shifted, shifted_weights) = outputs_and_trained_weights("shifted")
    (native, native_weights) = outputs_and_trained_weights("native")
    assert shifted.shape == native.shape
    assert shifted.shape[-1] == 4 * multiplier
    np.testing.assert_allclose(shifted, native, rtol=RTOL, atol=ATOL)
    for got, want in zip(shifted_weights, native_weights, strict=True):
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


@pytest.mark.parametrize("block_bytes", [1, 2100, 2**20])
@pytest.mark.parametrize(
    "kernel_size,padding", [((3, 3), "same"), ((4, 2), "valid")]
)
def test_shifted_gradients_in_batch_blocks_match_native(
    monkeypatch, block_bytes, kernel_size, padding
):
    # 5 images in blocks of 1, of 2 or 4 (zero images padded on) and all at
    # once: the blocked kernel gradient of the JAX path must not depend on it.
    monkeypatch.setattr(kv_ops, "KERNEL_GRADIENT_BLOCK_BYTES", block_bytes)
    x = random_array((5, 6, 7, 3))
    target = random_array((5, 6, 7, 3), seed=5)

    def trained_weights(conv):
        model_input = keras.Input((6, 7, 3))
        layer = DepthwiseConv2D(
            kernel_size, padding=padding, implementation=conv
        )
        model = keras.Model(model_input, layer(model_input))
        layer.set_weights(
            [random_array((*kernel_size, 3, 1), seed=2), np.zeros(3, "f4")]
        )
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        y = target[:, : model.output_shape[1], : model.output_shape[2]]
        model.train_on_batch(x, y)
        return layer.get_weights()

    for got, want in zip(
        trained_weights("shifted"), trained_weights("native"), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_auto_is_the_default_and_explicit_choices_are_fixed():
    assert DepthwiseConv2D(3).implementation == "auto"
    assert DepthwiseConv2D(3, implementation="shifted").uses_shifted
    assert not DepthwiseConv2D(3, implementation="native").uses_shifted
    # Eager calls stay native on every backend.
    assert not DepthwiseConv2D(3, padding="same").uses_shifted


def _compiled_model(layer, jit_compile):
    model_input = keras.Input((6, 6, 3))
    model = keras.Model(model_input, layer(model_input))
    if keras.backend.backend() == "torch":
        jit_compile = "auto"  # torch.compile is not what this is about
    model.compile(optimizer="sgd", loss="mse", jit_compile=jit_compile)
    return model


@pytest.mark.parametrize("jit_compile", [True, False])
def test_auto_matches_native_in_fit_and_predict(jit_compile):
    x = random_array((2, 6, 6, 3))
    y = random_array((2, 6, 6, 3), seed=4)
    auto = _compiled_model(DepthwiseConv2D(3, padding="same"), jit_compile)
    native = _compiled_model(
        DepthwiseConv2D(3, padding="same", implementation="native"),
        jit_compile,
    )
    native.set_weights(auto.get_weights())
    np.testing.assert_allclose(
        auto.predict_on_batch(x),
        native.predict_on_batch(x),
        rtol=RTOL,
        atol=ATOL,
    )
    auto.train_on_batch(x, y)
    native.train_on_batch(x, y)
    for got, want in zip(auto.get_weights(), native.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_auto_stays_native_when_run_eagerly(monkeypatch):
    calls = count_calls(monkeypatch, kv_ops, "depthwise_conv_shifted")
    model = _compiled_model(DepthwiseConv2D(3, padding="same"), False)
    x = random_array((2, 6, 6, 3))
    model.predict_on_batch(x)
    model.train_on_batch(x, x)
    del calls[:]  # the first calls also trace shapes symbolically
    model.predict_on_batch(x)
    model.train_on_batch(x, x)
    model.layers[-1](x)
    assert not calls


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="the shifted path is for XLA"
)
def test_auto_takes_the_shifted_path_when_jax_compiles(monkeypatch):
    import jax

    calls = count_calls(monkeypatch, kv_ops, "depthwise_conv_shifted")
    x = random_array((2, 6, 6, 3))
    layer = DepthwiseConv2D(3, padding="same")
    eager = to_numpy(layer(x))
    assert not calls
    compiled = jax.jit(lambda images: layer(images))(x)
    assert calls
    np.testing.assert_allclose(to_numpy(compiled), eager, rtol=RTOL, atol=ATOL)

    dilated = DepthwiseConv2D(3, dilation_rate=2)
    dilated(x)
    del calls[:]
    jax.jit(lambda images: dilated(images))(x)
    assert not calls


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="the shifted path is for XLA"
)
def test_auto_keeps_the_native_kernel_on_unmeasured_devices(monkeypatch):
    import jax

    from kvision.layers import convolution

    assert convolution.default_platform() == "cpu"  # this machine
    monkeypatch.setattr(convolution, "default_platform", lambda: "gpu")
    calls = count_calls(monkeypatch, kv_ops, "depthwise_conv_shifted")
    layer = DepthwiseConv2D(3, padding="same")
    x = random_array((2, 6, 6, 3))
    layer(x)
    jax.jit(lambda images: layer(images))(x)
    assert not calls


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
