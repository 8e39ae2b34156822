"""Augmentation from Keras' own preprocessing layers (every backend).

No keras-cv (deprecated upstream; its RandAugment fails inside ``fit`` on
TensorFlow and JAX) and no ``tf.data`` requirement: the layers run eagerly,
inside a model, or in a ``tf.data`` map alike.
"""

import keras
import numpy as np

from kvision import _checks
from kvision import _seeds
from kvision._tracing import is_concrete


@keras.saving.register_keras_serializable(package="kvision")
class RandAugment(keras.layers.RandAugment):
    """``keras.layers.RandAugment`` that, run eagerly, computes only the
    operations it applies.

    RandAugment (Cubuk et al., 2020, arXiv:1909.13719): ``num_ops`` times,
    one operation drawn at random from Keras' eleven (shear, translation,
    rotation, brightness, colour, contrast, sharpness, posterisation,
    solarisation, auto-contrast, equalisation) is applied at strength
    ``factor``. As in Keras, one draw serves the whole batch.

    Keras computes every one of the eleven operations on the whole batch,
    ``num_ops`` times, and keeps the drawn one (a graph cannot branch on a
    random draw). Eagerly (kvision's input pipeline), the draw is known, so
    this layer computes only the drawn operations: same arguments, same
    random draws and the same images as Keras' layer with the same seed,
    at about ``num_ops / 11`` of the work (on PyTorch and JAX, where Keras'
    geometric operations transform one image at a time, the difference is
    most of a training step's input time). It also draws the parameters of
    the applied operations only: the others move the seed generator on by
    the draws they would have taken (learnt on the first batch), which
    keeps the generator in step with Keras' (TensorFlow: 8 to 3 ms a batch
    of 64). Traced (``tf.data``, ``tf.function``, ``jax.jit``), it is
    Keras' layer.

    Args:
        value_range: ``(low, high)`` of the images' values, e.g. (0, 255).
        num_ops: int, operations applied one after another.
        factor: float in [0, 1] or a ``(low, high)`` range: the strength.
        interpolation: for the geometric operations, ``"bilinear"`` or
            ``"nearest"``.
        seed: optional int, for the draws (as in Keras' layer).
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Shapes:
        ``(B, H, W, C)`` (or ``(B, C, H, W)``) images in, the same out.

    Example:

    >>> import numpy as np
    >>> from kvision.data import RandAugment
    >>> x = np.full((2, 8, 8, 3), 100.0, "float32")
    >>> tuple(RandAugment(num_ops=2, seed=0)(x, training=True).shape)
    (2, 8, 8, 3)
    """

    def __init__(
        self,
        value_range=(0, 255),
        num_ops=2,
        factor=0.5,
        interpolation="bilinear",
        seed=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(
            value_range=value_range,
            num_ops=num_ops,
            factor=factor,
            interpolation=interpolation,
            seed=seed,
            data_format=data_format,
            **kwargs,
        )
        # Draws each operation takes from the generator (learnt eagerly;
        # None where they cannot be skipped): see get_random_transformation.
        self._draws_per_operation = {}

    def get_random_transformation(self, data, training=True, seed=None):
        images = data["images"] if isinstance(data, dict) else data
        if not training or seed is not None or not is_concrete(images):
            return super().get_random_transformation(data, training, seed)
        # Keras draws all eleven operations' parameters and keeps
        # ``num_ops`` of them. Eagerly the choice is known first, so an
        # operation that is not applied only moves the generator on by the
        # draws it would have made: the same generator state, and so the
        # same later draws, as Keras'.
        generator = self.generator
        drawn = self.backend.random.randint(
            (self.num_ops,), 0, len(self._AUGMENT_LAYERS), seed=generator
        )
        applied = set(keras.ops.convert_to_numpy(drawn).tolist())
        transforms = {}
        for index, name in enumerate(self._AUGMENT_LAYERS):
            draws = self._draws_per_operation.get(name)
            if index in applied or draws is None:
                transforms[name] = self._draw(name, data, generator)
            else:
                _skip_draws(generator, draws)
                transforms[name] = None
        return {"transforms": transforms, "layer_idxes": drawn}

    def _draw(self, name, data, generator):
        """``name``'s parameters from ``generator``, learning (the first
        time) how many draws they take: skippable only when every draw came
        from ``generator``, one step each."""
        operation = getattr(self, name)
        own = getattr(operation, "generator", None)
        measure = name not in self._draws_per_operation
        if measure:
            before = _seed_state(generator), _seed_state(own)
        transformation = operation.get_random_transformation(
            data, training=True, seed=generator
        )
        if measure:
            moved = _seed_state(generator) - before[0]
            own_unchanged = own is None or np.array_equal(
                _seed_state(own), before[1]
            )
            regular = moved[0] == 0 and own_unchanged
            self._draws_per_operation[name] = int(moved[1]) if regular else None
        return transformation

    def transform_images(self, images, transformation, training=True):
        drawn = transformation and transformation["layer_idxes"]
        if not training or drawn is None or not is_concrete(drawn):
            return super().transform_images(images, transformation, training)
        images = self.backend.cast(images, self.compute_dtype)
        for index in keras.ops.convert_to_numpy(drawn).tolist():
            name = self._AUGMENT_LAYERS[index]
            operation = getattr(self, name)
            images = _transform_concrete(
                operation,
                images,
                transformation["transforms"][name],
                operation.transform_images,
            )
        return self.backend.cast(images, self.compute_dtype)


@keras.saving.register_keras_serializable(package="kvision")
class RandomTranslation(keras.layers.RandomTranslation):
    """``keras.layers.RandomTranslation`` that, run eagerly, moves the whole
    batch in one resampling.

    Same arguments, random draws and images as Keras' layer (whose PyTorch
    and JAX versions resample one image at a time); traced, it is Keras'
    layer. kvision's augmentation uses it for the pad-and-crop.

    Args:
        height_factor: float or ``(low, high)``: the vertical shift as a
            fraction of the height (as in Keras).
        width_factor: float or ``(low, high)``: the horizontal shift.
        fill_mode: ``"constant"``, ``"reflect"``, ``"wrap"`` or
            ``"nearest"``.
        interpolation: ``"bilinear"`` or ``"nearest"``.
        seed: optional int.
        fill_value: float, for ``fill_mode="constant"``.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Shapes:
        ``(B, H, W, C)`` (or ``(B, C, H, W)``) images in, the same out.

    Example:

    >>> import numpy as np
    >>> from kvision.data import RandomTranslation
    >>> x = np.full((2, 8, 8, 3), 100.0, "float32")
    >>> layer = RandomTranslation(0.25, 0.25, fill_mode="constant", seed=0)
    >>> tuple(layer(x, training=True).shape)
    (2, 8, 8, 3)
    """

    def __init__(
        self,
        height_factor,
        width_factor,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        data_format=None,
        **kwargs,
    ):
        super().__init__(
            height_factor,
            width_factor,
            fill_mode=fill_mode,
            interpolation=interpolation,
            seed=seed,
            fill_value=fill_value,
            data_format=data_format,
            **kwargs,
        )

    def transform_images(self, images, transformation, training=True):
        if not training:
            return super().transform_images(images, transformation, training)
        return _transform_concrete(
            self, images, transformation, super().transform_images
        )


def _seed_state(generator):
    """A ``keras.random.SeedGenerator``'s state as NumPy (or None)."""
    if generator is None:
        return None
    return keras.ops.convert_to_numpy(generator.state.value).astype("int64")


def _skip_draws(generator, draws):
    """Moves ``generator`` on as ``draws`` random operations would (each
    one adds ``[0, 1]`` to its state)."""
    if draws:
        state = generator.state
        step = np.array(
            [0, draws], dtype=keras.backend.standardize_dtype(state.dtype)
        )
        state.assign(keras.ops.add(state.value, step))


def _transform_concrete(layer, images, transformation, keras_transform):
    """``keras_transform(images, transformation)`` (``layer``'s own), or the
    same images through a batched path where Keras computes them slowly:
    concrete (eager) batches, off TensorFlow for the resampling ones."""
    if is_concrete(images) and len(images.shape) == 4:
        if isinstance(layer, keras.layers.Equalization):
            return _equalize_concrete(layer, images)
        matrix = _affine_matrix(layer, transformation)
        # TensorFlow resamples a whole batch in one native operation.
        if matrix is not None and keras.backend.backend() != "tensorflow":
            return _affine_concrete(layer, images, matrix)
    return keras_transform(images, transformation)


def _affine_matrix(layer, transformation):
    """The ``(B, 8)`` transforms Keras' geometric ``layer`` resamples with
    (``[a0, a1, a2, b0, b1, b2, c0, c1]``, as
    ``keras.ops.image.affine_transform`` reads them), or ``None`` for any
    other layer."""
    ops = keras.ops
    if transformation is None:
        return None
    if isinstance(layer, keras.layers.RandomRotation):
        return transformation["rotation_matrix"]
    if isinstance(layer, keras.layers.RandomShear):
        shear = transformation["shear_factor"]
        one, zero = ops.ones_like(shear[:, 0]), ops.zeros_like(shear[:, 0])
        rows = [one, shear[:, 0], zero, shear[:, 1], one, zero, zero, zero]
        return ops.stack(rows, axis=1)
    if isinstance(layer, keras.layers.RandomTranslation):
        shift = transformation["translations"]  # pixels: (dx, dy)
        one, zero = ops.ones_like(shift[:, 0]), ops.zeros_like(shift[:, 0])
        rows = [one, zero, -shift[:, 0], zero, one, -shift[:, 1], zero, zero]
        return ops.stack(rows, axis=1)
    return None


def _affine_concrete(layer, images, matrix):
    """Keras' ``affine_transform`` of a batch in one pass.

    Keras' PyTorch and JAX versions resample each image on its own, the
    channels as a third interpolated axis (a Python loop of 64
    ``map_coordinates`` calls a batch on PyTorch: about 30 to 60 ms at
    32 px). Here every image's four bilinear neighbours (or its nearest
    one) are gathered at once from the flattened batch, with Keras'
    coordinates, fill modes and order of summation: the images are Keras'
    to float rounding (and to the rounding of exact halves in
    ``"nearest"``, where Keras' own backends differ). Only affine
    transforms (``c0 = c1 = 0``), as every layer here makes.
    """
    ops = keras.ops
    channels_first = layer.data_format == "channels_first"
    images = ops.cast(images, layer.compute_dtype)
    if channels_first:
        images = ops.moveaxis(images, 1, -1)
    batch, height, width, channels = ops.shape(images)
    matrix = ops.cast(matrix, "float32")
    a0, a1, a2, b0, b1, b2 = (matrix[:, i, None, None] for i in range(6))
    rows = ops.arange(height, dtype="float32")[None, :, None]
    cols = ops.arange(width, dtype="float32")[None, None, :]
    # Where each output pixel samples the input: (B, H, W) each.
    source_rows = rows * b1 + cols * b0 + b2
    source_cols = rows * a1 + cols * a0 + a2
    # One row gather from the whole batch per neighbour: pixel (b, r, c)
    # is row (b * H + r) * W + c of the flattened images.
    flat = ops.reshape(images, (-1, channels))
    first = ops.arange(batch, dtype="int32")[:, None, None] * height * width
    constant = layer.fill_mode == "constant"
    row_nodes = [
        (_fix_index(row, height, layer.fill_mode) * width, weight, row)
        for row, weight in _neighbours(source_rows, layer.interpolation)
    ]
    col_nodes = [
        (_fix_index(col, width, layer.fill_mode), weight, col)
        for col, weight in _neighbours(source_cols, layer.interpolation)
    ]
    resampled = 0.0
    for row_at, row_weight, row in row_nodes:
        for col_at, col_weight, col in col_nodes:
            at = ops.reshape(first + row_at + col_at, (-1,))
            values = ops.reshape(
                ops.take(flat, at, axis=0), (batch, height, width, channels)
            )
            if constant:
                inside = (row >= 0) & (row < height) & (col >= 0)
                inside = inside & (col < width)
                values = ops.where(inside[..., None], values, layer.fill_value)
            resampled = (
                resampled + (row_weight * col_weight)[..., None] * values
            )
    if channels_first:
        resampled = ops.moveaxis(resampled, -1, 1)
    return ops.cast(resampled, layer.compute_dtype)


def _neighbours(coordinates, interpolation):
    """``[(index, weight), ...]`` of the input pixels a coordinate reads."""
    ops = keras.ops
    if interpolation == "nearest":
        index = ops.cast(ops.round(coordinates), "int32")
        return [(index, ops.ones_like(coordinates))]
    lower = ops.floor(coordinates)
    upper_weight = coordinates - lower
    index = ops.cast(lower, "int32")
    return [(index, 1 - upper_weight), (index + 1, upper_weight)]


def _fix_index(index, size, fill_mode):
    """An index brought inside ``[0, size)`` the way ``fill_mode`` extends
    the image (scipy's, and so Keras', conventions; ``"constant"`` clips,
    the caller fills)."""
    ops = keras.ops
    if fill_mode == "wrap":
        return ops.mod(index, size)
    if fill_mode in ("mirror", "reflect"):
        if fill_mode == "reflect":
            index, size = 2 * index + 1, 2 * size + 1
        half = size - 1  # mirroring is a triangle wave of this half-period
        index = ops.abs(ops.mod(index + half, 2 * half) - half)
        return (
            ops.floor_divide(index - 1, 2) if fill_mode == "reflect" else index
        )
    return ops.clip(index, 0, size - 1)


def _rescale(values, source, target):
    # Keras' Equalization._scale_values, operation for operation.
    scale = (target[1] - target[0]) / (source[1] - source[0])
    return values * scale + (target[0] - source[0] * scale)


def _equalize_concrete(layer, images):
    """What ``layer`` (a ``keras.layers.Equalization``) makes of concrete
    ``images``, with one histogram count for all channels.

    Keras equalises each channel over the whole batch (one histogram per
    channel, not per image). On JAX it counts the histogram's bins one at a
    time (a traced program cannot ``bincount``), about 0.2 s a batch run
    eagerly against a few milliseconds for the rest of RandAugment. Run
    eagerly, shapes are known, so one ``bincount`` of channel-offset bin
    indices counts every channel at once. The arithmetic is otherwise
    Keras' own, operator for operator (its ``/`` of two integer tensors is
    the backend's own: float64 on TensorFlow), so the images are the same.
    """
    ops = keras.ops
    bins = layer.bins
    channel_axis = -3 if layer.data_format == "channels_first" else -1
    # Keras rescales even for (0, 255); the identity there.
    x = _rescale(
        ops.moveaxis(images, channel_axis, 0), layer.value_range, (0, 255)
    )
    channels = ops.shape(x)[0]
    flat = ops.reshape(x, (channels, -1))
    counted = ops.cast(
        (ops.cast(flat, "float32") - 0.0) * (bins - 1) / 255.0, "int32"
    )
    offsets = ops.arange(channels, dtype="int32")[:, None] * bins
    histogram = ops.reshape(
        ops.bincount(
            ops.reshape(ops.clip(counted, 0, bins - 1) + offsets, (-1,)),
            minlength=channels * bins,
        ),
        (channels, bins),
    )
    cdf = ops.cumsum(histogram, axis=-1)
    total = cdf[:, -1:]
    cdf_min = ops.min(ops.where(cdf > 0, cdf, total), axis=-1, keepdims=True)
    denominator = total - cdf_min
    denominator = ops.where(
        denominator == 0, ops.ones_like(denominator), denominator
    )
    lookup = ((cdf - cdf_min) * 255) / denominator
    lookup = ops.clip(ops.round(lookup), 0, 255)
    looked_up = ops.cast(
        ops.clip((flat / 255.0) * (bins - 1), 0, bins - 1), "int32"
    )
    equalized = ops.take(ops.reshape(lookup, (-1,)), looked_up + offsets)
    # (Not count_nonzero: Keras 3.15's warns on PyTorch for this shape.)
    used_bins = ops.sum(ops.cast(histogram > 0, "int32"), -1, keepdims=True)
    equalized = ops.where(used_bins <= 1, flat, equalized)
    equalized = _rescale(equalized, (0, 255), layer.value_range)
    equalized = ops.moveaxis(
        ops.reshape(equalized, ops.shape(x)), 0, channel_axis
    )
    return ops.cast(equalized, layer.compute_dtype)


def augmentation(
    image_size,
    crop_padding=4,
    flip=True,
    rand_augment_ops=2,
    rand_augment_factor=0.5,
    erasing=0.0,
    seed=None,
    name="augmentation",
):
    """The small-dataset recipe's image augmentation as a Keras model.

    Random crop of a zero-padded image (CIFAR's standard, as a random
    whole-pixel translation with zero fill), horizontal flip,
    RandAugment (:class:`RandAugment`) and random erasing, in that order.
    Images are float values in [0, 255], NHWC. Active when called with
    ``training=True`` (as inside ``fit``); the identity otherwise.

    Args:
        image_size: int, side of the (square) input and output images.
        crop_padding: int >= 0, zero padding before the random crop.
        flip: bool, random horizontal flips (off for digits, say).
        rand_augment_ops: int >= 0, RandAugment operations per image
            (0 disables it).
        rand_augment_factor: float, RandAugment strength in [0, 1].
        erasing: float in [0, 1), probability of erasing a random box.
        seed: optional int; each layer gets its own seed derived from it.
        name: the model's name.

    Returns:
        A ``keras.Sequential`` mapping ``(B, S, S, C)`` to ``(B, S, S, C)``.

    Example:

    >>> import numpy as np
    >>> from kvision.data import augmentation
    >>> augment = augmentation(32, seed=0)
    >>> x = np.full((2, 32, 32, 3), 128.0, "float32")
    >>> tuple(augment(x, training=True).shape)
    (2, 32, 32, 3)
    """
    _checks.positive_int("image_size", image_size)
    if not isinstance(crop_padding, int) or crop_padding < 0:
        raise ValueError(
            "`crop_padding` must be a non-negative int. "
            f"Received: crop_padding={crop_padding!r}"
        )
    if not isinstance(rand_augment_ops, int) or rand_augment_ops < 0:
        raise ValueError(
            "`rand_augment_ops` must be a non-negative int. "
            f"Received: rand_augment_ops={rand_augment_ops!r}"
        )
    _checks.rate("erasing", erasing)

    def seed_for(layer):
        return _seeds.child_seed(seed, layer)

    steps = [keras.Input((image_size, image_size, 3))]
    if crop_padding:
        # Shifting by up to `crop_padding` whole pixels with zero fill is
        # CIFAR's "pad and random crop", and is the identity at inference.
        shift = crop_padding / image_size
        steps.append(
            RandomTranslation(
                shift,
                shift,
                fill_mode="constant",
                interpolation="nearest",
                data_format="channels_last",
                seed=seed_for("crop"),
            )
        )
    if flip:
        steps.append(
            keras.layers.RandomFlip(
                "horizontal",
                data_format="channels_last",
                seed=seed_for("flip"),
            )
        )
    if rand_augment_ops:
        steps.append(
            RandAugment(
                value_range=(0, 255),
                num_ops=rand_augment_ops,
                factor=rand_augment_factor,
                data_format="channels_last",
                seed=seed_for("rand_augment"),
            )
        )
    if erasing:
        steps.append(
            keras.layers.RandomErasing(
                # Keras draws each image's erasing probability from
                # U(factor): a single float f means U(0, f), which erases
                # half as often as asked.
                factor=(erasing, erasing),
                value_range=(0, 255),
                data_format="channels_last",
                seed=seed_for("erasing"),
            )
        )
    if len(steps) == 1:
        steps.append(keras.layers.Identity())
    return keras.Sequential(steps, name=name)
