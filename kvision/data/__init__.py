"""Small image datasets as NumPy arrays: CIFAR, and three that work offline.

>>> from kvision.data import load_dataset
>>> (x, y), (x_test, y_test) = load_dataset("shapes", num_train=8, num_test=4)
>>> x.shape, x.dtype, y.shape
((8, 32, 32, 3), dtype('uint8'), (8,))
"""

from kvision.data.augment import RandAugment
from kvision.data.augment import RandomTranslation
from kvision.data.augment import augmentation
from kvision.data.cluttered import make_cluttered_digits
from kvision.data.datasets import class_names
from kvision.data.datasets import has_masks
from kvision.data.datasets import load_dataset
from kvision.data.datasets import mirror_invariant
from kvision.data.datasets import split_validation
from kvision.data.images import to_model_range
from kvision.data.mixing import choose_mixing
from kvision.data.mixing import mix_batch
from kvision.data.shapes import SHAPE_NAMES
from kvision.data.shapes import make_shapes

__all__ = [
    "RandAugment",
    "RandomTranslation",
    "SHAPE_NAMES",
    "augmentation",
    "choose_mixing",
    "class_names",
    "has_masks",
    "load_dataset",
    "make_cluttered_digits",
    "make_shapes",
    "mirror_invariant",
    "mix_batch",
    "split_validation",
    "to_model_range",
]
