"""Small image datasets as NumPy arrays: CIFAR, and two that work offline.

>>> from kvision.data import load_dataset
>>> (x, y), (x_test, y_test) = load_dataset("shapes", num_train=8, num_test=4)
>>> x.shape, x.dtype, y.shape
((8, 32, 32, 3), dtype('uint8'), (8,))
"""

from kvision.data.augment import augmentation
from kvision.data.augment import mix_batch
from kvision.data.datasets import class_names
from kvision.data.datasets import load_dataset
from kvision.data.shapes import SHAPE_NAMES
from kvision.data.shapes import make_shapes

__all__ = [
    "SHAPE_NAMES",
    "augmentation",
    "class_names",
    "load_dataset",
    "make_shapes",
    "mix_batch",
]
