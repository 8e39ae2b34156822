"""MixUp and CutMix as the papers' training scripts apply them.

timm (which the ConvNeXt and ImageNet-ConvMixer recipes run on) and the
SL-ViT script share one scheme, with different numbers:

- a batch is mixed with probability ``prob`` (timm's ``--mixup-prob``, 1.0;
  the SL-ViT script's ``--mix_prob``, 0.5);
- with both methods on, it gets CutMix with probability ``switch_prob``
  (0.5 in both) and MixUp otherwise;
- one mixing weight ``lam ~ Beta(alpha, alpha)`` per batch, where ``alpha``
  is the method's value (timm's ``--mixup 0.8 --cutmix 1.0`` for ConvNeXt;
  1.0 for both in the SL-ViT script), and every image is mixed with a
  partner from the same batch;
- MixUp blends whole images, ``lam * x + (1 - lam) * partner``; CutMix pastes
  the partner's box of area ``(1 - lam)`` (side ``sqrt(1 - lam)`` times the
  image's, centred uniformly, clipped at the border) and the label weight
  becomes the exact kept area;
- the targets are mixed with the same weight.

The partner is a random permutation of the batch (the SL-ViT script's; timm
pairs each image with the reversed batch, which is a random pairing of a
shuffled batch too). Keras' ``MixUp``/``CutMix`` layers draw one weight per
image and CutMix's alpha from a range, so they do not follow these sources:
this is NumPy, run where the batches are made.
"""

import numpy as np

from kvision import _checks

METHODS = ("mixup", "cutmix")


def choose_mixing(rng, mixup=0.0, cutmix=0.0, prob=1.0, switch_prob=0.5):
    """Draws the mixing of one batch.

    Args:
        rng: a ``numpy.random.Generator``.
        mixup: MixUp's Beta alpha; 0 switches it off.
        cutmix: CutMix's Beta alpha; 0 switches it off.
        prob: probability that the batch is mixed at all.
        switch_prob: with both on, the probability of CutMix.

    Returns:
        ``None``, or ``(method, alpha)`` with ``method`` in :data:`METHODS`.
    """
    if mixup <= 0 and cutmix <= 0:
        return None
    if rng.uniform() >= prob:
        return None
    if mixup > 0 and cutmix > 0:
        if rng.uniform() < switch_prob:
            return "cutmix", cutmix
        return "mixup", mixup
    return ("mixup", mixup) if mixup > 0 else ("cutmix", cutmix)


def mix_batch(
    images,
    labels,
    num_classes,
    method="mixup",
    alpha=1.0,
    seed=None,
    rng=None,
):
    """Mixes a batch with MixUp or CutMix, one weight for the whole batch.

    Args:
        images: ``(B, H, W, C)`` array-like, channels last.
        labels: int ``(B,)`` class indices.
        num_classes: int, for the one-hot targets.
        method: ``"mixup"`` or ``"cutmix"``.
        alpha: float > 0, the Beta distribution's alpha (= beta).
        seed: optional int, used when ``rng`` is ``None``.
        rng: optional ``numpy.random.Generator``.

    Returns:
        ``(images, soft_labels)``: float32 NumPy arrays, the images mixed and
        ``soft_labels`` of shape ``(B, num_classes)``, rows summing to one.

    Example:

    >>> import numpy as np
    >>> x = np.zeros((4, 8, 8, 3), "float32")
    >>> x[1] = 255.0
    >>> mixed, soft = mix_batch(x, [0, 1, 2, 3], 4, "cutmix", seed=0)
    >>> mixed.shape, soft.shape
    ((4, 8, 8, 3), (4, 4))
    >>> bool(np.allclose(soft.sum(axis=1), 1.0))
    True
    """
    _checks.one_of("method", method, set(METHODS))
    _checks.positive_int("num_classes", num_classes)
    if isinstance(alpha, bool) or not alpha > 0:
        raise ValueError(
            f"`alpha` must be a positive number. Received: alpha={alpha!r}"
        )
    rng = np.random.default_rng(seed) if rng is None else rng
    images = np.asarray(images, "float32")
    one_hot = np.eye(num_classes, dtype="float32")[np.asarray(labels)]
    partner = rng.permutation(len(images))
    lam = float(rng.beta(alpha, alpha))
    if method == "mixup":
        mixed = lam * images + (1.0 - lam) * images[partner]
    else:
        mixed, lam = _paste_box(images, partner, lam, rng)
    soft = lam * one_hot + (1.0 - lam) * one_hot[partner]
    return mixed.astype("float32"), soft.astype("float32")


def _paste_box(images, partner, lam, rng):
    """CutMix's box of area ``1 - lam``; returns the images and the weight
    of the kept area."""
    _, height, width, _ = images.shape
    cut = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * cut), int(width * cut)
    centre_y, centre_x = rng.integers(height), rng.integers(width)
    top, bottom = np.clip(
        [centre_y - cut_h // 2, centre_y + cut_h // 2], 0, height
    )
    left, right = np.clip(
        [centre_x - cut_w // 2, centre_x + cut_w // 2], 0, width
    )
    mixed = images.copy()
    mixed[:, top:bottom, left:right] = images[partner, top:bottom, left:right]
    kept = 1.0 - (bottom - top) * (right - left) / (height * width)
    return mixed, float(kept)
