"""Augmentation from Keras' own preprocessing layers (every backend).

No keras-cv (deprecated upstream; its RandAugment fails inside ``fit`` on
TensorFlow and JAX) and no ``tf.data`` requirement: the layers run eagerly,
inside a model, or in a ``tf.data`` map alike.
"""

import keras

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
    most of a training step's input time). Traced (``tf.data``,
    ``tf.function``, ``jax.jit``), it is Keras' layer.

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

    def transform_images(self, images, transformation, training=True):
        drawn = transformation and transformation["layer_idxes"]
        if not training or drawn is None or not is_concrete(drawn):
            return super().transform_images(images, transformation, training)
        images = self.backend.cast(images, self.compute_dtype)
        for index in keras.ops.convert_to_numpy(drawn).tolist():
            name = self._AUGMENT_LAYERS[index]
            operation = getattr(self, name)
            images = operation.transform_images(
                images, transformation["transforms"][name]
            )
        return self.backend.cast(images, self.compute_dtype)


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
            keras.layers.RandomTranslation(
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
                factor=erasing,
                value_range=(0, 255),
                data_format="channels_last",
                seed=seed_for("erasing"),
            )
        )
    if len(steps) == 1:
        steps.append(keras.layers.Identity())
    return keras.Sequential(steps, name=name)
