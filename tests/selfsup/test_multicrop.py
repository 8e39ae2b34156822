"""MultiCrop: DINO's multi-crop batch, checked against NumPy references."""

import math
import re

import keras
import numpy as np
import pytest
from keras import ops

from kvision.selfsup import multicrop
from kvision.selfsup.multicrop import MultiCrop

B, H, W = 2, 16, 16
# Only the crop itself: no flip, no colour, no blur, no solarisation.
PLAIN = dict(
    blur_probabilities=(0, 0, 0),
    flip_probability=0,
    jitter_probability=0,
    grayscale_probability=0,
    solarize_probability=0,
)
FLIP = {**PLAIN, "flip_probability": 0.5}


def images(channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((B, H, W, channels), dtype="float32")


def crops(layer, x, **kwargs):
    out = ops.convert_to_numpy(layer(x, **kwargs))
    return out.reshape(layer.num_crops, -1, *out.shape[1:])


def test_shape_dtype_range_and_crop_counts():
    layer = MultiCrop(num_local_crops=1, seed=0)
    assert (layer.num_global_crops, layer.num_crops) == (2, 3)
    out = ops.convert_to_numpy(layer(images()))
    assert out.shape == (3 * B, H, W, 3) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    assert tuple(layer.compute_output_shape((B, H, W, 3))) == out.shape
    assert layer.compute_output_shape((None, H, W, 3)) == (None, H, W, 3)
    inputs = keras.Input((H, W, 3))
    assert MultiCrop(seed=0)(inputs).shape == (None, H, W, 3)


def test_full_scale_global_crops_return_the_images_in_crop_major_order():
    x = images()
    got = crops(MultiCrop(1, global_scale=(1, 1), seed=0, **PLAIN), x)
    np.testing.assert_allclose(got[0], x, atol=1e-5)
    np.testing.assert_allclose(got[1], x, atol=1e-5)
    flip = {**PLAIN, "flip_probability": 1}
    flipped = MultiCrop(1, global_scale=(1, 1), seed=0, **flip)
    np.testing.assert_allclose(crops(flipped, x)[0], x[:, :, ::-1], atol=1e-5)


def fit_line(values):
    """Slope and intercept of ``values`` against ``pixel + 1/2``."""
    values = values.astype("float64")
    centres = np.arange(len(values)) + 0.5
    slope, intercept = np.polyfit(centres, values, 1)
    residual = values - (slope * centres + intercept)
    assert np.abs(residual).max() < 1e-3, "the crop is not affine"
    return slope, intercept


def test_crop_boxes_lie_in_the_image_with_the_recipe_area_and_ratio():
    # Pixel (i, j) holds its centre's coordinates: the crop of a linear
    # ramp is a ramp, whose slope and intercept give the crop box back.
    x = np.zeros((B, H, W, 3), "float32")
    x[..., 0] = ((np.arange(W) + 0.5) / W)[None, None, :]
    x[..., 1] = ((np.arange(H) + 0.5) / H)[None, :, None]
    layer = MultiCrop(1, local_size=7, seed=3, **FLIP)
    inner = slice(3, -3)  # edge pixels are clamped by the fill and resize
    flips = []
    for _ in range(4):
        got = crops(layer, x)
        for group, (low, high) in enumerate([(0.4, 1), (0.4, 1), (0.05, 0.4)]):
            for image in got[group]:
                sx, cx = fit_line(image[H // 2, inner, 0] * W)
                sy, cy = fit_line(image[inner, W // 2, 1] * H)
                # The fit starts at pixel 3, whose centre is 3.5.
                cx, cy = cx - 3 * sx, cy - 3 * sy
                box_w, box_h = abs(sx) * W, sy * H
                left = cx + min(0.0, sx * W)
                assert -1e-3 < left and left + box_w < W + 1e-3
                assert -1e-3 < cy and cy + box_h < H + 1e-3
                area = box_w * box_h / (H * W)
                assert low - 1e-3 < area < high + 1e-3
                assert 3 / 4 - 1e-3 < box_w / box_h < 4 / 3 + 1e-3
                flips.append(sx < 0)
    assert 0 < sum(flips) < len(flips)


def test_seed_reproduces_and_calls_differ():
    x = images()
    first = MultiCrop(1, seed=7)
    a, b = crops(first, x), crops(first, x)
    np.testing.assert_array_equal(a, crops(MultiCrop(1, seed=7), x))
    assert not np.allclose(a, b)
    assert not np.allclose(a, crops(MultiCrop(1, seed=8), x))
    # `training` is ignored: the layer always augments.
    same = crops(MultiCrop(1, seed=7), x, training=False)
    np.testing.assert_array_equal(a, same)


def test_grayscale_makes_equal_channels():
    layer = MultiCrop(1, grayscale_probability=1, seed=0)
    got = crops(layer, images())
    np.testing.assert_allclose(got[..., 0], got[..., 1], atol=1e-6)
    np.testing.assert_allclose(got[..., 0], got[..., 2], atol=1e-6)


def test_solarize_flips_bright_pixels_of_the_second_global_crop_only():
    x = images()
    plain = {**PLAIN, "solarize_probability": 1.0}
    got = crops(MultiCrop(1, global_scale=(1, 1), seed=0, **plain), x)
    np.testing.assert_allclose(got[0], x, atol=1e-5)
    np.testing.assert_allclose(got[1], np.where(x >= 0.5, 1 - x, x), atol=1e-5)
    assert got[1].max() <= 0.5 + 1e-6


def numpy_blur(x, sigma):
    """A separable 3-tap Gaussian over axes 1 and 2, edges replicated."""
    outer = math.exp(-0.5 / sigma**2)
    for axis in (1, 2):
        size = x.shape[axis]
        padded = np.take(x, [0, *range(size), size - 1], axis)
        x = (
            np.take(padded, range(1, size + 1), axis)
            + outer * np.take(padded, range(size), axis)
            + outer * np.take(padded, range(2, size + 2), axis)
        ) / (1 + 2 * outer)
    return x


def test_blur_matches_a_numpy_three_tap_gaussian():
    x = images()
    plain = {**PLAIN, "blur_probabilities": (1, 0, 0)}
    layer = MultiCrop(1, global_scale=(1, 1), blur_sigma=(1, 1), **plain)
    got = crops(layer, x)
    np.testing.assert_allclose(got[0], numpy_blur(x, 1.0), atol=1e-5)
    np.testing.assert_allclose(got[1], x, atol=1e-5)


def test_local_blur_sigma_follows_the_upsampling():
    # A 16-pixel local crop rendered at 8 pixels was upsampled twofold.
    plain = {**PLAIN, "blur_sigma": (0.5, 0.5), "local_size": 8}
    x = images()
    sharp = crops(MultiCrop(1, seed=5, **plain), x)
    plain["blur_probabilities"] = (0, 0, 1)
    got = crops(MultiCrop(1, seed=5, **plain), x)
    np.testing.assert_allclose(got[:2], sharp[:2], atol=1e-6)
    np.testing.assert_allclose(got[2], numpy_blur(sharp[2], 1.0), atol=1e-5)


def jitter(*arrays):
    tensors = [ops.convert_to_tensor(a) for a in arrays]
    return ops.convert_to_numpy(multicrop._color_jitter(*tensors))


def test_color_jitter_blends_like_torchvision_then_rotates_chroma():
    x = 0.3 + 0.4 * images()
    factors = [np.float32(f).reshape(B, 1, 1, 1) for f in ((1.3, 0.7),) * 3]
    got = jitter(x, *factors, np.zeros(B, "float32"))
    want = x
    luma = np.array([0.299, 0.587, 0.114], "float32")
    for step, factor in enumerate(factors):
        grey = np.sum(want * luma, axis=-1, keepdims=True)
        if step == 1:
            grey = grey.mean(axis=(1, 2, 3), keepdims=True)
        elif step == 0:
            grey = 0 * grey
        want = np.clip(grey + factor * (want - grey), 0, 1)
    np.testing.assert_allclose(got, want, atol=1e-5)

    # Hue: the YIQ chroma turns by 2 pi h; luma and saturation stay.
    hue = np.float32([0.05, -0.08])
    ones = [np.ones((B, 1, 1, 1), "float32")] * 3
    got = jitter(x, *ones, hue)
    assert 0 < got.min() and got.max() < 1  # no clipping
    yiq = np.array([luma, [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    before, after = x @ yiq.T, got @ yiq.T
    np.testing.assert_allclose(after[..., 0], before[..., 0], atol=1e-5)
    chroma = before[..., 1] + 1j * before[..., 2]
    turned = after[..., 1] + 1j * after[..., 2]
    np.testing.assert_allclose(abs(turned), abs(chroma), atol=1e-5)
    turn = np.exp(2j * np.pi * hue)[:, None, None]
    np.testing.assert_allclose(turned, chroma * turn, atol=1e-5)


def test_jitter_changes_colours_and_keeps_grey_images_grey():
    plain = {**PLAIN, "jitter_probability": 1.0}
    layer = MultiCrop(1, global_scale=(1, 1), seed=0, **plain)
    x = images()
    assert not np.allclose(crops(layer, x)[0], x, atol=1e-2)
    grey = np.repeat(images(channels=1), 3, axis=-1)
    got = crops(layer, grey)
    np.testing.assert_allclose(got[..., 0], got[..., 2], atol=1e-4)
    one = crops(MultiCrop(1, seed=0, jitter_probability=1), images(1))
    assert one.shape == (3, B, H, W, 1)


def test_local_crops_keep_their_low_resolution():
    default = MultiCrop(1)
    default.build((None, 32, 32, 3))
    assert default._local_hw == (14, 14)  # 96 of 224 pixels
    layer = MultiCrop(1, local_size=1, seed=0)
    got = crops(layer, images())
    assert np.ptp(got[2:], axis=(2, 3)).max() < 1e-5
    assert np.ptp(got[:2], axis=(2, 3)).min() > 1e-2


def test_config_round_trip():
    layer = MultiCrop(1, local_scale=(0.1, 0.3), local_size=5, seed=4)
    assert keras.saving.get_registered_name(MultiCrop) == "kvision>MultiCrop"
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert isinstance(restored, MultiCrop)
    assert restored.get_config() == layer.get_config()
    x = images()
    np.testing.assert_array_equal(crops(layer, x), crops(restored, x))


class Student(keras.Model):
    """Averages a head's predictions over each image's crops."""

    def __init__(self):
        super().__init__()
        self.crop = MultiCrop(num_local_crops=1, seed=0)
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.head = keras.layers.Dense(2)

    def call(self, x):
        y = self.head(self.pool(self.crop(x)))
        return ops.mean(ops.reshape(y, (self.crop.num_crops, -1, 2)), axis=0)


def test_trains_in_a_compiled_step_with_fresh_crops_each_step():
    model = Student()
    # XLA on TensorFlow and JAX; PyTorch stays eager (torch.compile would
    # take minutes here).
    xla = keras.backend.backend() != "torch"
    model.compile(optimizer="adam", loss="mse", jit_compile=xla or "auto")
    assert model.jit_compile is xla
    x, y = images(), np.zeros((B, 2), "float32")
    states = [ops.convert_to_numpy(model.crop.seed_generator.state)]
    for _ in range(2):
        assert np.isfinite(model.train_on_batch(x, y))
        states.append(ops.convert_to_numpy(model.crop.seed_generator.state))
    assert len({tuple(s) for s in states}) == 3


@pytest.mark.backend("tensorflow")
def test_tensorflow_graph_with_an_unknown_batch():
    import tensorflow as tf

    layer = MultiCrop(1, seed=0)
    spec = tf.TensorSpec((None, H, W, 3), tf.float32)
    graph = tf.function(layer, input_signature=[spec])
    assert graph(images()).shape == (3 * B, H, W, 3)
    traced = graph.get_concrete_function().structured_outputs
    assert traced.shape.as_list() == [None, H, W, 3]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_local_crops": -1},
        {"num_local_crops": 1.5},
        {"num_local_crops": True},
        {"global_scale": (0.0, 1.0)},
        {"global_scale": (0.6, 0.5)},
        {"global_scale": (0.5, 1.5)},
        {"local_scale": "big"},
        {"local_scale": (0.1,)},
        {"local_size": 0},
        {"local_size": (7,)},
        {"blur_sigma": (0.0, 1.0)},
        {"blur_probabilities": (1.0, 0.5)},
        {"blur_probabilities": (1.0, 0.5, 2.0)},
        {"flip_probability": 1.5},
        {"jitter_probability": -0.1},
        {"grayscale_probability": True},
        {"solarize_probability": "0.2"},
    ],
    ids=lambda kwargs: next(iter(kwargs)),
)
def test_bad_arguments_name_the_argument_and_value(kwargs):
    (name, value), *_ = kwargs.items()
    with pytest.raises(ValueError, match=re.escape(f"{name}={value!r}")):
        MultiCrop(**kwargs)


@pytest.mark.parametrize(
    "shape, kwargs",
    [((B, H, W), {}), ((B, H, W, 2), {}), ((B, H, W, 3), {"local_size": 20})],
)
def test_bad_inputs(shape, kwargs):
    with pytest.raises(ValueError, match="Received"):
        MultiCrop(**kwargs)(np.zeros(shape, "float32"))
