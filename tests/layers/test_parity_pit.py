"""PiT pooling against a NumPy transcription of the official convolution.

The reference is PyTorch's ``Conv2d(C, C * m, kernel_size=3, padding=1,
stride=2, groups=C)`` written element by element: output channel ``o`` reads
input channel ``o // m`` and uses filter ``weight[o, 0]``.
"""

import numpy as np
import pytest

from kvision.layers import PiTPooling
from tests import numpy_reference as ref
from tests.helpers import to_numpy
from tests.layers.parity import built
from tests.layers.parity import dense_params
from tests.layers.parity import random_array

RTOL = 1e-4
ATOL = 1e-5


def torch_weight(kernel):
    """Keras' depthwise ``(k, k, C, m)`` as PyTorch's ``(C * m, 1, k, k)``."""
    k, _, channels, multiplier = kernel.shape
    weight = np.zeros((channels * multiplier, 1, k, k))
    for c in range(channels):
        for j in range(multiplier):
            weight[c * multiplier + j, 0] = kernel[:, :, c, j]
    return weight


def grouped_conv(images, weight, bias, stride, padding):
    """PyTorch's grouped convolution with ``groups = C`` on NHWC input."""
    x = np.pad(
        ref.as64(images), ((0, 0), (padding,) * 2, (padding,) * 2, (0, 0))
    )
    outputs, _, k, _ = weight.shape
    multiplier = outputs // images.shape[-1]
    out_h = (x.shape[1] - k) // stride + 1
    out_w = (x.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, outputs))
    for o in range(outputs):
        channel = x[..., o // multiplier]
        for i in range(out_h):
            for j in range(out_w):
                r, c = i * stride, j * stride
                out[:, i, j, o] = (
                    channel[:, r : r + k, c : c + k] * weight[o, 0]
                ).sum(axis=(1, 2))
    return out + bias


def pooling_reference(tokens, layer, grid, class_tokens):
    cls, visual = tokens[:, :class_tokens], tokens[:, class_tokens:]
    maps = visual.reshape(tokens.shape[0], *grid, tokens.shape[-1])
    dw = layer.depthwise
    y = grouped_conv(
        maps,
        torch_weight(to_numpy(dw.kernel)),
        to_numpy(dw.bias),
        stride=layer.stride,
        padding=layer.stride // 2,
    )
    if layer.pointwise:
        y = ref.dense(y, *dense_params(layer.pointwise_projection))
    y = y.reshape(tokens.shape[0], -1, y.shape[-1])
    if class_tokens:
        cls = ref.dense(cls, *dense_params(layer.class_projection))
        y = np.concatenate([cls, y], axis=1)
    return y


@pytest.mark.parametrize(
    "grid, class_tokens, kwargs",
    [
        ((5, 5), 1, {}),
        ((4, 6), 2, dict(token_grid=(4, 6), depth_multiplier=3)),
        ((4, 4), 1, dict(pointwise=True)),
        ((3, 3), 0, dict(num_class_tokens=0)),
    ],
    ids=["odd", "grid_multiplier3", "pointwise", "no_class_token"],
)
def test_pit_pooling_matches_grouped_convolution(grid, class_tokens, kwargs):
    tokens = random_array((2, class_tokens + grid[0] * grid[1], 4))
    if class_tokens != 1:
        kwargs = {"num_class_tokens": class_tokens, **kwargs}
    layer = built(PiTPooling(**kwargs), tokens.shape)
    y = to_numpy(layer(tokens))
    want = pooling_reference(tokens, layer, grid, class_tokens)
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "side, pooled", [(27, 14), (14, 7), (16, 8), (8, 4), (2, 1), (1, 1)]
)
def test_pit_pooling_token_counts(side, pooled):
    layer = PiTPooling()
    shape = layer.compute_output_shape((None, 1 + side * side, 64))
    assert shape == (None, 1 + pooled * pooled, 128)


def test_pit_pooling_weights():
    layer = PiTPooling(pointwise=True)
    layer.build((None, 1 + 16, 8))
    shapes = {w.path.split("/", 1)[1]: tuple(w.shape) for w in layer.weights}
    assert shapes == {
        "depthwise/kernel": (3, 3, 8, 2),
        "depthwise/bias": (16,),
        "pointwise/kernel": (16, 16),
        "pointwise/bias": (16,),
        "class_projection/kernel": (8, 16),
        "class_projection/bias": (16,),
    }


def test_pit_pooling_channel_layout_follows_input_channels():
    # A kernel that copies each input channel's centre pixel shows which
    # input channel every output channel reads: c * m + j <- c.
    tokens = np.zeros((1, 1 + 9, 3), "float32")
    tokens[0, 1:] = np.arange(3, dtype="float32") + 1.0  # channel c = c + 1
    layer = PiTPooling(depth_multiplier=2)
    layer.build(tokens.shape)
    kernel = np.zeros((3, 3, 3, 2), "float32")
    kernel[1, 1] = 1.0
    layer.depthwise.kernel.assign(kernel)
    layer.depthwise.bias.assign(np.zeros(6, "float32"))
    y = to_numpy(layer(tokens))
    np.testing.assert_array_equal(y[0, 1], [1, 1, 2, 2, 3, 3])
