"""Small NumPy image utilities the datasets share (no backend involved)."""

import numpy as np


def resize_bilinear(images, size):
    """Bilinear resize of ``(N, H, W[, C])`` arrays to ``size x size``.

    Pixel centres are aligned as in ``keras.ops.image.resize`` (half-pixel
    offsets). Pure NumPy, so every backend sees the same data.
    """
    images = np.asarray(images, dtype="float32")
    squeeze = images.ndim == 3
    if squeeze:
        images = images[..., None]
    for axis in (1, 2):
        old = images.shape[axis]
        position = (np.arange(size) + 0.5) * old / size - 0.5
        position = np.clip(position, 0, old - 1)
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, old - 1)
        weight = (position - low).reshape(
            [-1 if a == axis else 1 for a in range(images.ndim)]
        )
        images = (
            np.take(images, low, axis=axis) * (1 - weight)
            + np.take(images, high, axis=axis) * weight
        )
    return images[..., 0] if squeeze else images


def to_uint8(images):
    return np.clip(np.rint(images), 0, 255).astype("uint8")
