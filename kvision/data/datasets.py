"""``load_dataset``: CIFAR through Keras, and two datasets that work offline."""

import numpy as np

from kvision import _checks
from kvision.data import cluttered
from kvision.data import images as image_utils
from kvision.data import shapes as shapes_data

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# CIFAR-100's 100 fine labels, in label order (alphabetical, as the
# dataset's own meta file lists them).
CIFAR100_CLASSES = (
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
)
OFFLINE = ("digits", "shapes", "cluttered_digits")
# Datasets whose labels survive a horizontal mirror (a mirrored "2" is no
# digit): training recipes flip only these.
MIRROR_INVARIANT = ("cifar10", "cifar100", "shapes")
DATASETS = ("cifar10", "cifar100", "digits", "shapes", "cluttered_digits")
# Generated datasets with object masks: name -> (default train, test size).
WITH_MASKS = {"shapes": (10_000, 2_000), "cluttered_digits": (10_000, 2_000)}


def mirror_invariant(name):
    """Whether a horizontal flip keeps every image's label."""
    _checks.one_of("name", name, set(DATASETS))
    return name in MIRROR_INVARIANT


def has_masks(name):
    """Whether ``load_dataset(name, return_masks=True)`` gives masks.

    Args:
        name: a dataset name of :func:`load_dataset`.

    Returns:
        bool: ``True`` for the generated datasets with object or stroke
        masks (``shapes``, ``cluttered_digits``).

    >>> has_masks("cluttered_digits"), has_masks("digits")
    (True, False)
    """
    _checks.one_of("name", name, set(DATASETS))
    return name in WITH_MASKS


def class_names(name):
    """The class names of a dataset, indexed by label."""
    _checks.one_of("name", name, set(DATASETS))
    if name == "cifar10":
        return CIFAR10_CLASSES
    if name == "cifar100":
        return CIFAR100_CLASSES
    if name in ("digits", "cluttered_digits"):
        return tuple(str(i) for i in range(10))
    return shapes_data.SHAPE_NAMES


def load_dataset(
    name,
    image_size=None,
    num_train=None,
    num_test=None,
    seed=0,
    return_masks=False,
):
    """Loads a small image-classification dataset as NumPy arrays.

    Args:
        name: ``"cifar10"``, ``"cifar100"`` (downloaded once by
            ``keras.datasets`` and cached), ``"digits"`` (scikit-learn's
            1,797 real 8x8 handwritten digits, which ship with it, upscaled
            and made RGB), ``"shapes"`` (generated, see
            :func:`kvision.data.make_shapes`; has object masks) or
            ``"cluttered_digits"`` (the same real digits at random sizes,
            places and colours on textured clutter, see
            :func:`kvision.data.make_cluttered_digits`; has stroke masks).
        image_size: int or ``None`` (32 for digits and shapes, CIFAR's own
            32 otherwise); images are resized bilinearly.
        num_train: int or ``None``; generated datasets (shapes,
            cluttered_digits): number of training images (default 10,000);
            other datasets: keep the first ``num_train``.
        num_test: int or ``None``; likewise for the test split (generated
            default 2,000).
        seed: int; the digits split and the generation.
        return_masks: generated datasets only: also return the boolean
            object masks.

    Returns:
        ``(x_train, y_train), (x_test, y_test)`` with uint8 ``(N, S, S, 3)``
        images and int64 labels (plus ``masks`` as a third element of each
        split with ``return_masks=True``). :func:`class_names` names the
        labels.

    Raises:
        ValueError: an unknown name or bad size; masks asked of a dataset
            that has none.
        RuntimeError: CIFAR cannot be downloaded (offline); the message
            names the offline datasets.
    """
    _checks.one_of("name", name, set(DATASETS))
    if image_size is not None:
        _checks.positive_int("image_size", image_size)
    for arg, value in (("num_train", num_train), ("num_test", num_test)):
        _checks.optional_positive_int(arg, value)
    if return_masks and name not in WITH_MASKS:
        raise ValueError(
            f"Only the generated datasets {sorted(WITH_MASKS)} have object "
            f"masks. Received: name={name!r}, return_masks=True"
        )
    if name == "cluttered_digits":
        size = image_size or 32
        default_train, default_test = WITH_MASKS[name]
        train = cluttered.make_cluttered_digits(
            num_train or default_train, size, seed, split="train"
        )
        test = cluttered.make_cluttered_digits(
            num_test or default_test, size, seed, split="test"
        )
        keep = 3 if return_masks else 2
        return tuple(train[:keep]), tuple(test[:keep])
    if name == "shapes":
        size = image_size or 32
        train = shapes_data.make_shapes(num_train or 10_000, size, seed)
        test = shapes_data.make_shapes(num_test or 2_000, size, seed + 1)
        keep = 3 if return_masks else 2
        return tuple(train[:keep]), tuple(test[:keep])
    if name == "digits":
        splits = _digits(image_size or 32, seed)
    else:
        splits = _cifar(name)
        if image_size not in (None, 32):
            splits = [
                (
                    image_utils.to_uint8(
                        image_utils.resize_bilinear(x, image_size)
                    ),
                    y,
                )
                for x, y in splits
            ]
    (x_train, y_train), (x_test, y_test) = splits
    return (x_train[:num_train], y_train[:num_train]), (
        x_test[:num_test],
        y_test[:num_test],
    )


def split_validation(images, labels, fraction=0.1, seed=0):
    """Holds out a stratified validation split from a training split.

    Choices made while training (curves to watch, learning rates, epochs)
    belong on data the final evaluation never sees: train on the first
    part, choose on the second, and touch the test split once, at the end.

    Args:
        images: ``(N, ...)`` array.
        labels: ``(N,)`` integer labels.
        fraction: float in (0, 1), the share of each class held out
            (rounded, at least one image of every class with two or more).
        seed: int, which images are held out.

    Returns:
        ``(images, labels), (val_images, val_labels)``, each part in the
        original order.

    >>> import numpy as np
    >>> y = np.repeat(np.arange(4), 10)
    >>> (x_fit, y_fit), (x_val, y_val) = split_validation(y[:, None], y)
    >>> len(y_fit), np.bincount(y_val).tolist()
    (36, [1, 1, 1, 1])
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(
            "`images` and `labels` must have the same length. Received: "
            f"{len(images)} images and {len(labels)} labels"
        )
    if isinstance(fraction, bool) or not 0 < fraction < 1:
        raise ValueError(
            f"`fraction` must be in (0, 1). Received: fraction={fraction!r}"
        )
    rng = np.random.default_rng(seed)
    held_out = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = round(fraction * len(members))
        if len(members) > 1:
            count = min(max(count, 1), len(members) - 1)
        held_out[members[:count]] = True
    return (images[~held_out], labels[~held_out]), (
        images[held_out],
        labels[held_out],
    )


def digit_split(seed=0):
    """scikit-learn's 8x8 digits in [0, 1], split 80/20 by class.

    The split of ``load_dataset("digits", seed=seed)``; the generated
    ``"cluttered_digits"`` draws its training and test images from it.

    Returns:
        ``(images, labels), (test_images, test_labels)``: float32
        ``(N, 8, 8)`` and int64 ``(N,)``.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            "The 'digits' dataset comes with scikit-learn: "
            "pip install scikit-learn"
        ) from error
    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")
    labels = digits.target.astype("int64")
    # A stratified 80/20 split: every class keeps its share in both parts.
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test[members[: round(0.2 * len(members))]] = True
    train_order = rng.permutation(np.flatnonzero(~test))
    test_order = np.flatnonzero(test)
    return (images[train_order], labels[train_order]), (
        images[test_order],
        labels[test_order],
    )


def _digits(image_size, seed):
    splits = []
    for images, labels in digit_split(seed):
        images = image_utils.resize_bilinear(images * 255.0, image_size)
        images = np.repeat(image_utils.to_uint8(images)[..., None], 3, -1)
        splits.append((images, labels))
    return splits


def _cifar(name):
    import keras

    loader = getattr(keras.datasets, name)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as error:  # keras raises a bare Exception offline
        raise RuntimeError(
            f"Could not download {name!r} through keras.datasets ({error}). "
            f"Offline, use one of the datasets that need no network: "
            f"{', '.join(OFFLINE)}."
        ) from error
    return [
        (x_train, y_train.reshape(-1).astype("int64")),
        (x_test, y_test.reshape(-1).astype("int64")),
    ]
