"""Small NumPy image utilities the datasets share (no backend involved)."""

import numpy as np


def resize_bilinear(images, size):
    """Bilinear resize of ``(N, H, W[, C])`` arrays to ``size x size``
    (``size`` an int) or ``height x width`` (``size`` a pair).

    Pixel centres are aligned as in ``keras.ops.image.resize`` (half-pixel
    offsets). Pure NumPy, so every backend sees the same data.
    """
    images = np.asarray(images, dtype="float32")
    squeeze = images.ndim == 3
    if squeeze:
        images = images[..., None]
    sizes = (size, size) if np.isscalar(size) else tuple(size)
    for axis, size in zip((1, 2), sizes, strict=True):
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


def to_model_range(images):
    """Images as kvision models take them: float32 in [0, 1].

    Every kvision model expects float images scaled to [0, 1], as the
    training code feeds them; raw uint8 pixels (0-255) would give silent
    garbage. Integer images are divided by 255; float images must already
    be in [0, 1] and are only cast. To put the scaling inside a model
    instead, start it with ``keras.layers.Rescaling(1 / 255)``.

    Args:
        images: NumPy-convertible images, uint8 (or other integers) in
            [0, 255], or floats in [0, 1].

    Returns:
        A float32 NumPy array of the same shape, in [0, 1].

    Raises:
        ValueError: float images outside [0, 1] (probably 0-255 values
            already cast to float: divide them by 255).

    >>> import numpy as np
    >>> to_model_range(np.array([0, 51, 255], "uint8")).tolist()
    [0.0, 0.20000000298023224, 1.0]
    """
    images = np.asarray(images)
    if images.dtype == bool or not np.issubdtype(images.dtype, np.number):
        raise ValueError(
            "`images` must be integer pixels in [0, 255] or floats in "
            f"[0, 1]. Received: images.dtype={images.dtype}"
        )
    if np.issubdtype(images.dtype, np.integer):
        if images.size and (images.min() < 0 or images.max() > 255):
            raise ValueError(
                "Integer `images` must lie in [0, 255]. Received values in "
                f"[{images.min()}, {images.max()}]"
            )
        return images.astype("float32") / np.float32(255)
    if images.size and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            "Float `images` must lie in [0, 1] (divide 0-255 values by "
            f"255). Received values in [{images.min():g}, {images.max():g}]"
        )
    return images.astype("float32")
