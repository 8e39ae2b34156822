"""Real handwritten digits on textured clutter, with stroke masks.

scikit-learn's 1,797 handwritten digits (8x8, real, shipped with it) are
scaled to a random size, given a random colour and drawn at a random place
on a random texture strewn with strokes cut from other digits. The class is
the digit; the object mask is the digit's own strokes. Nothing but the
digit's shape tells the class: colour, size, position and the background
(clutter included) are drawn independently of it, so a linear model on the
pixels stays far below a small CNN (numbers in :func:`make_cluttered_digits`).

Training images are made from the digits of the training split, test images
from the held-out digits (the split of ``load_dataset("digits")``), so the
test measures new handwriting, not new placements of known digits.
"""

import numpy as np

from kvision.data import images as image_utils

CLASS_NAMES = tuple(str(i) for i in range(10))
# Stroke intensity (0..1 after scaling) above which a pixel is the digit.
_STROKE = 0.5


def _textures(rng, count, size):
    """Two nearby random colours mixed by two random gratings, plus noise."""
    y, x = np.mgrid[0:size, 0:size].astype("float32") * (32.0 / size)
    pattern = np.zeros((count, size, size), "float32")
    for _ in range(2):
        frequency = rng.uniform(0.15, 0.9, (count, 1, 1)).astype("float32")
        angle = rng.uniform(0, np.pi, (count, 1, 1)).astype("float32")
        phase = rng.uniform(0, 2 * np.pi, (count, 1, 1)).astype("float32")
        pattern += np.sin(
            frequency * (x * np.cos(angle) + y * np.sin(angle)) + phase
        )
    pattern = (pattern / 4 + 0.5)[..., None]
    first = rng.uniform(0, 255, (count, 1, 1, 3))
    second = np.clip(first + rng.normal(0, 50, (count, 1, 1, 3)), 0, 255)
    noise = rng.normal(0, 8, (count, size, size, 3)).astype("float32")
    return first * pattern + second * (1 - pattern) + noise


def _stamp(canvas, alpha, colour, top, left):
    """Alpha-blends a colour into ``canvas`` where ``alpha`` is placed."""
    h, w = alpha.shape
    region = canvas[top : top + h, left : left + w]
    a = alpha[..., None]
    canvas[top : top + h, left : left + w] = region * (1 - a) + colour * a


def _contrasting(candidates, background):
    """The candidate colour farthest from the background's mean colour."""
    mean = background.reshape(-1, 3).mean(axis=0)
    return candidates[np.argmax(np.square(candidates - mean).sum(axis=1))]


def _overlap(top, left, h, w, box):
    """Area a ``h x w`` box at ``(top, left)`` shares with ``box``."""
    rows = min(top + h, box[0] + box[2]) - max(top, box[0])
    cols = min(left + w, box[1] + box[3]) - max(left, box[1])
    return max(rows, 0) * max(cols, 0)


def _draw(sources, labels, count, size, rng, clutter):
    """Makes ``count`` images from the 8x8 ``sources`` (values 0..1)."""
    low, high = max(8, round(0.4 * size)), round(0.65 * size)
    # Every source digit at every side it can be drawn at, once.
    scaled = {
        side: np.clip(
            image_utils.resize_bilinear(sources, side) * 1.5, 0.0, 1.0
        )
        for side in range(low, high + 1)
    }
    # Every random number first (fast), then the drawing loop.
    chosen = rng.integers(0, len(sources), count)
    sides = rng.integers(low, high + 1, count)
    corners = rng.uniform(size=(count, 2))
    pieces = rng.integers(clutter[0], clutter[1] + 1, count)
    most = max(clutter[1], 1)
    others = rng.integers(0, len(sources), (count, most))
    fractions = rng.uniform(size=(count, most, 4))
    places = rng.uniform(size=(count, most, 4, 2))
    colours = rng.uniform(0, 255, (count, most + 1, 6, 3))
    images = _textures(rng, count, size)
    masks = np.zeros((count, size, size), bool)
    for i in range(count):
        canvas, side = images[i], int(sides[i])
        room = size - side + 1
        box = (int(corners[i, 0] * room), int(corners[i, 1] * room), side, side)
        # Clutter first, under the digit: pieces (a third to a half of the
        # side) of other digits at the digit's scale, each placed where it
        # covers the least of the digit out of four tries.
        for k in range(pieces[i]):
            smallest, span = side // 3, side // 2 - side // 3 + 1
            h, w = (
                smallest + (fractions[i, k, :2] * span).astype(int)
            ).tolist()
            y0 = int(fractions[i, k, 2] * (side - h + 1))
            x0 = int(fractions[i, k, 3] * (side - w + 1))
            tries = [
                (int(p[0] * (size - h + 1)), int(p[1] * (size - w + 1)))
                for p in places[i, k]
            ]
            top, left = min(tries, key=lambda t: _overlap(*t, h, w, box))
            piece = scaled[side][others[i, k], y0 : y0 + h, x0 : x0 + w]
            region = canvas[top : top + h, left : left + w]
            colour = _contrasting(colours[i, k], region)
            _stamp(canvas, piece, colour, top, left)
        top, left = box[:2]
        alpha = scaled[side][chosen[i]]
        stroke = alpha > _STROKE
        # The mask's pixels are painted solid, so that under the mask is
        # the digit's colour alone; only the edge around it stays blended.
        alpha = np.where(stroke, 1.0, alpha)
        region = canvas[top : top + side, left : left + side]
        _stamp(canvas, alpha, _contrasting(colours[i, -1], region), top, left)
        masks[i, top : top + side, left : left + side] = stroke
    return (
        image_utils.to_uint8(images),
        labels[chosen].astype("int64"),
        masks,
    )


def make_cluttered_digits(
    count, image_size=32, seed=0, split="train", clutter=(1, 2)
):
    """Generates ``count`` cluttered digits with labels and stroke masks.

    Measured (``benchmarks/cluttered_digits.py``, PyTorch, 32 px, 10,000
    training and 2,000 test images, seed 0): logistic regression on the
    pixels scores 0.111, chance 0.108; a small VGG-style CNN (six 3x3
    convolutions, 289,642 parameters, Adam 1e-3, batch 64) reaches 0.921 /
    0.939 / 0.951 (three seeds) after 8 epochs, about 3 minutes of
    training on a 2-core CPU, and passes 0.9 after 4 to 6 epochs.

    Args:
        count: int, number of images.
        image_size: int >= 16, side of the square images.
        seed: int; the split of the source digits and the drawing. The same
            seed gives the same images.
        split: ``"train"`` or ``"test"``: which source digits to draw
            from (the 80/20 stratified split of ``load_dataset("digits")``).
        clutter: ``(min, max)`` digit fragments strewn behind the digit.

    Returns:
        ``(images, labels, masks)``: uint8 ``(count, S, S, 3)``, int64
        ``(count,)`` digit labels and bool ``(count, S, S)`` stroke masks.
    """
    if image_size < 16:
        raise ValueError(
            "`image_size` must be at least 16. "
            f"Received: image_size={image_size}"
        )
    if split not in ("train", "test"):
        raise ValueError(
            f"`split` must be 'train' or 'test'. Received: split={split!r}"
        )
    from kvision.data.datasets import digit_split

    (train_x, train_y), (test_x, test_y) = digit_split(seed)
    sources, labels = (
        (train_x, train_y) if split == "train" else (test_x, test_y)
    )
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    return _draw(sources, labels, count, image_size, rng, tuple(clutter))
