"""``load_dataset``: CIFAR through Keras, and two datasets that work offline."""

import numpy as np

from kvision import _checks
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
OFFLINE = ("digits", "shapes")
DATASETS = ("cifar10", "cifar100", "digits", "shapes")


def class_names(name):
    """The class names of a dataset, indexed by label."""
    _checks.one_of("name", name, set(DATASETS))
    if name == "cifar10":
        return CIFAR10_CLASSES
    if name == "cifar100":
        return tuple(f"class_{i}" for i in range(100))
    if name == "digits":
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
            and made RGB) or ``"shapes"`` (generated, see
            :func:`kvision.data.make_shapes`; has object masks).
        image_size: int or ``None`` (32 for digits and shapes, CIFAR's own
            32 otherwise); images are resized bilinearly.
        num_train: int or ``None``; shapes: number of training images
            (default 10,000); other datasets: keep the first ``num_train``.
        num_test: int or ``None``; likewise for the test split (shapes
            default 2,000).
        seed: int; the digits split and the shapes generation.
        return_masks: shapes only: also return the boolean object masks.

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
    if return_masks and name != "shapes":
        raise ValueError(
            "Only the 'shapes' dataset has object masks. "
            f"Received: name={name!r}, return_masks=True"
        )
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


def _digits(image_size, seed):
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise ImportError(
            "The 'digits' dataset comes with scikit-learn: "
            "pip install scikit-learn"
        ) from error
    digits = load_digits()
    images = image_utils.resize_bilinear(digits.images * (255 / 16), image_size)
    images = np.repeat(image_utils.to_uint8(images)[..., None], 3, axis=-1)
    labels = digits.target.astype("int64")
    # A stratified 80/20 split: every class keeps its share in both parts.
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test[members[: round(0.2 * len(members))]] = True
    train_order = rng.permutation(np.flatnonzero(~test))
    test_order = np.flatnonzero(test)
    return [
        (images[train_order], labels[train_order]),
        (images[test_order], labels[test_order]),
    ]


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
