"""DINO's multi-crop augmentation, written with ``keras.ops`` only."""

import math

import keras
import numpy as np
from keras import ops

from kvision import _checks

# The official ColorJitter(0.4, 0.4, 0.2, 0.1) and crop aspect ratios.
_JITTER, _HUE = (0.4, 0.4, 0.2), 0.1
_LOG_RATIO = (math.log(3 / 4), math.log(4 / 3))
_LUMA = np.array([0.299, 0.587, 0.114], "float32")
_YIQ = np.array([_LUMA, [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
# In RGB, turning the IQ plane by t is A + cos(t) B + sin(t) C.
_HUE_BASIS = [
    (np.linalg.inv(_YIQ) @ np.array(part, "float64") @ _YIQ).astype("float32")
    for part in (
        np.diag([1, 0, 0]),
        np.diag([0, 1, 1]),
        [[0] * 3, [0, 0, -1], [0, 1, 0]],
    )
]


def _fail(name, value, what):
    raise ValueError(f"`{name}` must be {what}. Received: {name}={value!r}")


def _probability(name, value):
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 <= value <= 1:
        _fail(name, value, "a probability in [0, 1]")
    return float(value)


def _items(name, value, length, check, what, items=None):
    try:
        items = tuple(check(name, v) for v in (items or value))
    except (TypeError, ValueError):
        items = ()
    return items if len(items) == length else _fail(name, value, what)


def _range(name, value, upper=math.inf):
    low, high = _items(name, value, 2, lambda _, v: float(v), "a pair")
    if not 0 < low <= high <= upper:
        _fail(name, value, f"a pair 0 < low <= high <= {upper}")
    return low, high


def _per_crop(value):
    return ops.reshape(value, (-1, 1, 1, 1))


def _luma(x):
    if x.shape[-1] == 1:
        return x
    return ops.sum(ops.multiply(x, _LUMA), axis=-1, keepdims=True)


def _color_jitter(x, brightness, contrast, saturation, hue):
    # torchvision clamps after every blend, which changes the next step.
    x = ops.clip(x * brightness, 0.0, 1.0)
    mean = ops.mean(_luma(x), axis=(1, 2, 3), keepdims=True)
    x = ops.clip(mean + contrast * (x - mean), 0.0, 1.0)
    grey = _luma(x)
    x = ops.clip(grey + saturation * (x - grey), 0.0, 1.0)
    if x.shape[-1] == 1:
        return x
    angle = ops.reshape(2 * math.pi * hue, (-1, 1, 1))
    a, b, c = _HUE_BASIS
    rotation = ops.add(ops.multiply(ops.cos(angle), b), a)
    rotation = ops.add(ops.multiply(ops.sin(angle), c), rotation)
    return ops.clip(ops.einsum("nhwc,ndc->nhwd", x, rotation), 0.0, 1.0)


def _interpolation(start, step, out_size, in_size, flip=None):
    """``(n, out_size, in_size)`` bilinear weights: output pixel ``j`` of
    image ``n`` samples the input at ``start + (j + 1/2) * step`` (pixel
    ``i`` spans ``[i, i + 1)``), edges replicated; mirrored where ``flip``."""
    j = ops.arange(out_size, dtype="float32") + 0.5
    j = (
        j[None, :]
        if flip is None
        else ops.where(flip[:, None], out_size - j, j)
    )
    centre = start[:, None] + j * step[:, None] - 0.5
    centre = ops.clip(centre, 0.0, in_size - 1.0)
    i = ops.arange(in_size, dtype="float32")
    return ops.relu(1.0 - ops.abs(centre[:, :, None] - i))


def _resample(x, left, top, box_w, box_h, flip, size):
    """Each image's box ``(left, top, box_w, box_h)`` resized to ``size``.

    An axis-aligned crop-and-resize is separable, so it is two batched
    matrix products: no gather, and it compiles with XLA on every backend
    (``keras.ops.image.affine_transform`` has no XLA kernel on TensorFlow
    and loops over images on PyTorch).
    """
    rows = _interpolation(top, box_h / size[0], size[0], x.shape[1])
    cols = _interpolation(left, box_w / size[1], size[1], x.shape[2], flip)
    x = ops.einsum("nyh,nhwc->nywc", rows, x)
    return ops.einsum("nxw,nywc->nyxc", cols, x)


def _blur(x, sigma, axis):
    """A 3-tap Gaussian per image along ``axis``, edges replicated."""
    size = x.shape[axis]
    before = ops.take(x, [0, *range(size - 1)], axis=axis)
    after = ops.take(x, [*range(1, size), size - 1], axis=axis)
    outer = ops.exp(-0.5 / ops.square(sigma))
    return (x + outer * (before + after)) / (1 + 2 * outer)


@keras.saving.register_keras_serializable(package="kvision")
class MultiCrop(keras.layers.Layer):
    """DINO's multi-crop augmentation: two global and several local crops.

    Reference: Caron et al., *Emerging Properties in Self-Supervised Vision
    Transformers* (DINO, arXiv:2104.14294), ``DataAugmentationDINO`` in the
    official ``main_dino.py``. Each crop gets a random resized crop (area
    uniform in its scale range, aspect ratio log-uniform in (3/4, 4/3)), a
    horizontal flip, colour jitter, greyscale (ITU-R 601 luma) and Gaussian
    blur; the second global crop may be solarised (``x -> 1 - x`` where
    ``x >= 0.5``). The jitter runs in a fixed order: brightness (multiply
    by U(0.6, 1.4)), contrast (blend with the mean grey, U(0.6, 1.4)),
    saturation (blend with the greyscale, U(0.8, 1.2)), then hue: a chroma
    rotation in YIQ space by 2 pi U(-0.1, 0.1), which approximates
    torchvision's HSV hue shift.

    Departures from the official code: all crops keep the input's size, as
    kvision models have a static input size. A local crop is rendered at
    ``local_size`` (the official 96 of 224 pixels), resized back up
    bilinearly, so it keeps its lower resolution, and blurred after that
    resize with its sigma scaled to match. The aspect ratio is drawn among
    those whose box fits the image (torchvision retries up to ten draws).
    The jitter order is fixed (torchvision shuffles it); the blur is a
    separable 3-tap Gaussian, enough for small images' sigmas. Randomness
    comes only from the layer's ``SeedGenerator``, and the crops are
    bilinear resampling written as matrix products, so the layer runs in
    steps compiled with XLA on every backend. ``training`` is ignored: the
    crops are the batch the multi-crop loss reads, in evaluation as in
    training.

    Args:
        num_local_crops: non-negative int, local crops per image (the
            official code uses 8).
        global_scale: pair ``0 < low <= high <= 1``, the range of a global
            crop's area as a fraction of the image's.
        local_scale: the same range for the local crops.
        local_size: optional int or ``(height, width)``, the resolution a
            local crop is rendered at; ``None`` is 96/224 of the input's
            (14 pixels for 32).
        blur_sigma: optional pair ``0 < low <= high``, the blur's sigma
            range in pixels of the rendered crop; ``None`` scales the
            official (0.1, 2.0) at 224 pixels to the input height.
        blur_probabilities: probabilities of blurring the first global
            crop, the second one and each local crop.
        flip_probability: probability of a horizontal flip.
        jitter_probability: probability of jittering a crop's colours.
        grayscale_probability: probability of making a crop grey.
        solarize_probability: probability of solarising the second global
            crop.
        seed: optional int seed for the layer's ``SeedGenerator``.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``).

    Input shape: ``(B, H, W, C)`` float images in [0, 1], channels last,
    ``C`` 3 or 1 (one channel skips saturation, hue and greyscale, which
    leave grey images unchanged).
    Output shape: ``(num_crops * B, H, W, C)``, crop-major: rows ``[0:B]``
    are every image's first global crop, ``[B:2B]`` the second, then one
    group of ``B`` rows per local crop.

    Example:

    >>> import numpy as np
    >>> from kvision.selfsup.multicrop import MultiCrop
    >>> layer = MultiCrop(num_local_crops=2, seed=0)
    >>> images = np.random.default_rng(0).random((3, 32, 32, 3), "float32")
    >>> tuple(layer(images).shape), layer.num_crops
    ((12, 32, 32, 3), 4)
    """

    num_global_crops = 2

    def __init__(
        self,
        num_local_crops=4,
        global_scale=(0.4, 1.0),
        local_scale=(0.05, 0.4),
        local_size=None,
        blur_sigma=None,
        blur_probabilities=(1.0, 0.1, 0.5),
        flip_probability=0.5,
        jitter_probability=0.8,
        grayscale_probability=0.2,
        solarize_probability=0.2,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_local_crops = _checks.non_negative_int(
            "num_local_crops", num_local_crops
        )
        self.global_scale = _range("global_scale", global_scale, 1.0)
        self.local_scale = _range("local_scale", local_scale, 1.0)
        if local_size is not None:
            size = [local_size] * 2 if type(local_size) is int else None
            what = "a positive int or pair"
            check = _checks.positive_int
            local_size = _items("local_size", local_size, 2, check, what, size)
        self.local_size = local_size
        if blur_sigma is not None:
            blur_sigma = _range("blur_sigma", blur_sigma)
        self.blur_sigma = blur_sigma
        self.blur_probabilities = _items(
            "blur_probabilities",
            blur_probabilities,
            3,
            _probability,
            "three probabilities",
        )
        probabilities = {
            "flip_probability": flip_probability,
            "jitter_probability": jitter_probability,
            "grayscale_probability": grayscale_probability,
            "solarize_probability": solarize_probability,
        }
        for name, value in probabilities.items():
            setattr(self, name, _probability(name, value))
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def num_crops(self):
        return self.num_global_crops + self.num_local_crops

    def build(self, input_shape):
        _checks.input_rank(self, input_shape, (4,), "(batch, H, W, channels)")
        _checks.static_dims(self, input_shape, [1, 2, 3], "image shape")
        height, width, channels = input_shape[1:]
        if channels not in (1, 3):
            _fail("input_shape", tuple(input_shape), "(B, H, W, 1 or 3)")
        size = self.local_size or tuple(
            max(1, round(side * 96 / 224)) for side in (height, width)
        )
        if size[0] > height or size[1] > width:
            _fail("local_size", self.local_size, f"<= {height}x{width}")
        self._local_hw = size

    def _groups(self, first, second, local):
        """A ``(num_crops, 1)`` column: one value per crop group."""
        values = [first, second] + [local] * self.num_local_crops
        return ops.convert_to_tensor(np.float32(values)[:, None])

    def _crop(self, x, u):
        height, width, channels = x.shape[1:]
        (lh, lw), local = self._local_hw, self.num_local_crops
        low, high = (
            self._groups(g, g, s)
            for g, s in zip(self.global_scale, self.local_scale, strict=True)
        )
        area = (low + (high - low) * u[0]) * (height * width)
        # Only ratios whose box fits; the clip below is for elongated images
        # where none in (3/4, 4/3) does.
        log_low = ops.maximum(_LOG_RATIO[0], ops.log(area / height**2))
        log_high = ops.minimum(_LOG_RATIO[1], ops.log(width**2 / area))
        ratio = ops.exp(log_low + (log_high - log_low) * u[1])
        box_w = ops.minimum(ops.sqrt(area * ratio), width)
        box_h = ops.minimum(ops.sqrt(area / ratio), height)
        flip = u[4] < self.flip_probability
        left = u[2] * (width - box_w)
        top = u[3] * (height - box_h)
        box = [left, top, box_w, box_h, flip]
        crops = _resample(
            ops.tile(x, (2, 1, 1, 1)),
            *[ops.reshape(v[:2], (-1,)) for v in box],
            (height, width),
        )
        if not local:
            return crops
        small = _resample(
            ops.tile(x, (local, 1, 1, 1)),
            *[ops.reshape(v[2:], (-1,)) for v in box],
            (lh, lw),
        )
        small = ops.image.resize(
            small, (height, width), data_format="channels_last"
        )
        return ops.concatenate([crops, small], axis=0)

    def call(self, images, training=None):
        x = ops.cast(images, "float32")
        height, width, channels = x.shape[1:]
        # One uniform per random choice, for every (crop group, image).
        u = keras.random.uniform(
            (self.num_crops, ops.shape(x)[0], 14), seed=self.seed_generator
        )
        u = [u[..., i] for i in range(14)]
        out = self._crop(x, u)

        factors = [
            _per_crop(1 + s * (2 * u[i] - 1)) for i, s in enumerate(_JITTER, 6)
        ]
        jittered = _color_jitter(out, *factors, _HUE * (2 * u[9] - 1))
        out = ops.where(
            _per_crop(u[5] < self.jitter_probability), jittered, out
        )
        if channels == 3:
            grey = _per_crop(u[10] < self.grayscale_probability)
            out = ops.where(grey, _luma(out), out)

        low, high = self.blur_sigma or (0.1 * height / 224, 2 * height / 224)
        sigma = low + (high - low) * u[12]
        blurred = out
        # A local crop was upsampled by size / local size: so is its sigma.
        sizes = zip(x.shape[1:3], self._local_hw, strict=True)
        for axis, (size, local) in enumerate(sizes, 1):
            gain = self._groups(1, 1, size / local)
            blurred = _blur(blurred, _per_crop(sigma * gain), axis)
        blur = u[11] < self._groups(*self.blur_probabilities)
        out = ops.where(_per_crop(blur), blurred, out)

        solarize = u[13] < self._groups(0, self.solarize_probability, 0)
        solarize = ops.logical_and(_per_crop(solarize), out >= 0.5)
        return ops.cast(ops.where(solarize, 1 - out, out), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        _checks.input_rank(self, input_shape, (4,), "(batch, H, W, channels)")
        batch = input_shape[0] and input_shape[0] * self.num_crops
        return (batch, *input_shape[1:])

    def get_config(self):
        names = (
            "num_local_crops global_scale local_scale local_size blur_sigma "
            "blur_probabilities flip_probability jitter_probability "
            "grayscale_probability solarize_probability seed"
        )
        return {
            **super().get_config(),
            **{n: getattr(self, n) for n in names.split()},
        }
