"""Augmentation from Keras' own preprocessing layers (every backend).

No keras-cv (deprecated upstream; its RandAugment fails inside ``fit`` on
TensorFlow and JAX) and no ``tf.data`` requirement: the layers run eagerly,
inside a model, or in a ``tf.data`` map alike.
"""

import keras

from kvision import _checks
from kvision import _seeds


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
    RandAugment and random erasing, in that order. Images are float values
    in [0, 255], NHWC. Active when called with ``training=True`` (as inside
    ``fit``); the identity otherwise.

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
            keras.layers.RandAugment(
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
