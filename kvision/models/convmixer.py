"""ConvMixer: patches, then depthwise and pointwise convolutions."""

import keras

from kvision import _checks
from kvision import layers
from kvision.models import base
from kvision.models import initialization
from kvision.models.registry import register_model


@keras.saving.register_keras_serializable(package="kvision")
class ConvMixer(base.VisionModel):
    """ConvMixer-h/d: a patch stem and ``depth`` ConvMixer blocks.

    Reference: Trockman and Kolter, *Patches Are All You Need?*
    (arXiv:2201.09792). Layout: ``"stem"``
    (:class:`~kvision.layers.ConvMixerStem`) → ``"block_0"`` …
    ``"block_{depth-1}"`` (:class:`~kvision.layers.ConvMixerBlock`) →
    global average pooling → ``"head"``. BatchNorm follows the official
    PyTorch code (Keras momentum 0.9, epsilon 1e-5).

    Registered variants (parameters = trainable weights; Keras'
    ``count_params()`` also counts BatchNorm's moving statistics, which
    PyTorch keeps as buffers):

    | name | h / d | patch | kernel | classes | params |
    | --- | --- | --- | --- | --- | --- |
    | ``convmixer_1536_20`` | 1536/20 | 7 | 9 | 1000 | 51,625,960 |
    | ``convmixer_768_32`` | 768/32 | 7 | 7 | 1000 | 21,110,248 |
    | ``convmixer_1024_20_ks9_p14`` | 1024/20 | 14 | 9 | 1000 | 24,383,464 |
    | ``convmixer_512_12`` | 512/12 | 7 | 8 | 1000 | 4,165,608 |
    | ``convmixer_256_8`` | 256/8 | 2 | 5 | 10 | 594,186 |

    ``convmixer_256_8`` takes 32x32 images (CIFAR), the others 224x224.
    All use GELU except ConvMixer-768/32, which uses ReLU as in the paper.

    Args:
        input_shape: ``(height, width, channels)``; static. The model
            takes float images in [0, 1]: convert uint8 pixels with
            :func:`kvision.data.to_model_range`.
        dim: int, the width ``h``.
        depth: int, number of ConvMixer blocks ``d``.
        patch_size: int, the stem's patch size ``p``.
        kernel_size: int, the depthwise kernel size ``k``.
        activation: activation of stem and blocks (default ``"gelu"``).
        include_top: bool, whether to end with the classifier.
        num_classes: int, classes of the classifier.
        pooling: headless output: ``None`` (feature map), ``"avg"`` or
            ``"max"``.
        classifier_activation: activation of the classifier (default
            ``None``: logits).
        weight_init: how kernels and biases are drawn (see
            :mod:`kvision.models.initialization`); default ``"torch"``,
            PyTorch's defaults, which the official code keeps.
        name: model name.

    Example:

    >>> from kvision.models import create_model
    >>> model = create_model("convmixer_256_8", depth=2)
    >>> model.feature_names
    ['stem', 'block_0', 'block_1']
    """

    def __init__(
        self,
        input_shape=(224, 224, 3),
        dim=1536,
        depth=20,
        patch_size=7,
        kernel_size=9,
        activation="gelu",
        include_top=True,
        num_classes=1000,
        pooling=None,
        classifier_activation=None,
        weight_init="torch",
        name="convmixer",
        **kwargs,
    ):
        config = base.constructor_arguments(locals())
        _checks.positive_int("depth", depth)
        base.check_head_arguments(include_top, num_classes, pooling)

        inputs = base.image_input(input_shape)
        x = layers.ConvMixerStem(
            dim,
            patch_size,
            activation=activation,
            data_format="channels_last",
            name="stem",
        )(inputs)
        names = ["stem"]
        for i in range(depth):
            names.append(f"block_{i}")
            x = layers.ConvMixerBlock(
                kernel_size,
                activation=activation,
                data_format="channels_last",
                name=names[-1],
            )(x)
        if include_top:
            x = keras.layers.GlobalAveragePooling2D(
                data_format="channels_last", name="avg_pool"
            )(x)
            outputs = base.classifier(x, num_classes, classifier_activation)
        else:
            outputs = base.pool_features(x, pooling, spatial=True)
        self._build(inputs, outputs, config, names, name, **kwargs)
        initialization.initialize_weights(self, weight_init)


_IMAGENET = dict(input_shape=(224, 224, 3), num_classes=1000)

register_model(
    "convmixer_1536_20",
    ConvMixer,
    "ConvMixer-1536/20, ImageNet",
    dim=1536,
    depth=20,
    patch_size=7,
    kernel_size=9,
    **_IMAGENET,
)
register_model(
    "convmixer_768_32",
    ConvMixer,
    "ConvMixer-768/32 (ReLU), ImageNet",
    dim=768,
    depth=32,
    patch_size=7,
    kernel_size=7,
    activation="relu",
    **_IMAGENET,
)
register_model(
    "convmixer_1024_20_ks9_p14",
    ConvMixer,
    "ConvMixer-1024/20 with kernel 9 and patch 14, ImageNet",
    dim=1024,
    depth=20,
    patch_size=14,
    kernel_size=9,
    **_IMAGENET,
)
register_model(
    "convmixer_512_12",
    ConvMixer,
    "ConvMixer-512/12 with kernel 8 and patch 7, ImageNet",
    dim=512,
    depth=12,
    patch_size=7,
    kernel_size=8,
    **_IMAGENET,
)
register_model(
    "convmixer_256_8",
    ConvMixer,
    "ConvMixer-256/8 for 32x32 images (CIFAR-10), kernel 5, patch 2",
    input_shape=(32, 32, 3),
    dim=256,
    depth=8,
    patch_size=2,
    kernel_size=5,
    num_classes=10,
)
