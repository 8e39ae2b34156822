"""A generated dataset of coloured shapes on textured backgrounds, with masks.

Deterministic for a given seed. The class is the shape; its colour, size,
position and rotation and the background texture are random, so neither a
colour histogram nor a fixed pixel template separates the classes, while the
per-pixel object masks let us measure where a model looks.
"""

import numpy as np

SHAPE_NAMES = (
    "circle",
    "square",
    "triangle",
    "ellipse",
    "cross",
    "ring",
)


def _inside(kind, u, v, size):
    """Mask of ``kind`` in the shape's rotated frame ``(u, v)``."""
    radius = np.hypot(u, v)
    if kind == "circle":
        return radius <= size
    if kind == "square":
        return (np.abs(u) <= 0.8 * size) & (np.abs(v) <= 0.8 * size)
    if kind == "ellipse":
        return (u / (1.1 * size)) ** 2 + (v / (0.5 * size)) ** 2 <= 1.0
    if kind == "cross":
        arm = 0.35 * size
        return ((np.abs(u) <= arm) & (np.abs(v) <= size)) | (
            (np.abs(v) <= arm) & (np.abs(u) <= size)
        )
    if kind == "ring":
        return (radius <= size) & (radius >= 0.55 * size)
    if kind == "triangle":
        # Equilateral, centred: inside all three edges' half-planes.
        inside = np.ones(u.shape, bool)
        for k in range(3):
            angle = np.pi / 2 + 2 * np.pi * k / 3
            inside &= u * np.cos(angle) + v * np.sin(angle) <= 0.55 * size
        return inside
    raise ValueError(f"Unknown shape {kind!r}")


def _textures(rng, count, image_size):
    """Two random colours mixed by random gratings plus pixel noise."""
    y, x = np.mgrid[0:image_size, 0:image_size].astype("float32")
    pattern = np.zeros((count, image_size, image_size), "float32")
    for _ in range(2):
        frequency = rng.uniform(0.15, 0.9, (count, 1, 1))
        angle = rng.uniform(0, np.pi, (count, 1, 1))
        phase = rng.uniform(0, 2 * np.pi, (count, 1, 1))
        pattern += np.sin(
            frequency * (x * np.cos(angle) + y * np.sin(angle)) + phase
        )
    pattern = (pattern / 4 + 0.5)[..., None]
    first = rng.uniform(0, 255, (count, 1, 1, 3))
    second = rng.uniform(0, 255, (count, 1, 1, 3))
    noise = rng.normal(0, 12, (count, image_size, image_size, 3))
    return first * pattern + second * (1 - pattern) + noise


def make_shapes(count, image_size=32, seed=0):
    """Generates ``count`` images with labels and object masks.

    Args:
        count: int, number of images.
        image_size: int >= 16, side of the square images.
        seed: int, the NumPy seed; the same seed gives the same data.

    Returns:
        ``(images, labels, masks)``: uint8 ``(count, S, S, 3)``, int64
        ``(count,)`` indices into :data:`SHAPE_NAMES`, and bool
        ``(count, S, S)`` object masks.
    """
    if image_size < 16:
        raise ValueError(
            "`image_size` must be at least 16. "
            f"Received: image_size={image_size}"
        )
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(SHAPE_NAMES), count)
    size = rng.uniform(0.16, 0.3, count) * image_size
    centre = (
        rng.uniform(0, 1, (count, 2)) * (image_size - 2.2 * size)[:, None]
        + 1.1 * size[:, None]
    )
    angle = rng.uniform(0, 2 * np.pi, count)

    y, x = np.mgrid[0:image_size, 0:image_size].astype("float32") + 0.5
    dx = x[None] - centre[:, 0, None, None]
    dy = y[None] - centre[:, 1, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    masks = np.zeros((count, image_size, image_size), bool)
    for index, kind in enumerate(SHAPE_NAMES):
        chosen = labels == index
        masks[chosen] = _inside(
            kind, u[chosen], v[chosen], size[chosen, None, None]
        )

    images = _textures(rng, count, image_size)
    colour = rng.uniform(0, 255, (count, 1, 1, 3))
    shade = rng.normal(0, 10, images.shape)
    images = np.where(masks[..., None], colour + shade, images)
    images = np.clip(np.rint(images), 0, 255).astype("uint8")
    return images, labels.astype("int64"), masks
