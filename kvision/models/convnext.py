"""ConvNeXt: a ConvNet modernised toward the design of Swin Transformers."""

import keras

from kvision import _checks
from kvision import layers
from kvision.models import base
from kvision.models import initialization
from kvision.models.registry import register_model


@keras.saving.register_keras_serializable(package="kvision")
class ConvNeXt(base.VisionModel):
    """ConvNeXt: patchify stem, four stages of ConvNeXt blocks, LN head.

    Reference: Liu et al., *A ConvNet for the 2020s* (arXiv:2201.03545); the
    atto–nano sizes are the small variants of the timm library. Layout:
    ``"stem"`` (:class:`~kvision.layers.ConvNeXtStem`) → stage 0 blocks →
    for each later stage ``"stage_{s}_downsampling"``
    (:class:`~kvision.layers.ConvNeXtDownsampling`) then its blocks
    ``"stage_{s}_block_{i}"`` (:class:`~kvision.layers.ConvNeXtBlock`); each
    stage ends in an identity layer ``"stage_{s}"`` (its feature map) →
    global average pooling → ``"head_norm"`` → ``"head"``. Stochastic depth
    grows linearly over all blocks, as in the official code.

    Registered variants (parameters = trainable weights):

    | name | input | stem | depths | widths | classes | params |
    | --- | --- | --- | --- | --- | --- | --- |
    | ``convnext_atto`` | 224 | 4 | 2-2-6-2 | 40-320 | 1000 | 3,695,520 |
    | ``convnext_femto`` | 224 | 4 | 2-2-6-2 | 48-384 | 1000 | 5,217,784 |
    | ``convnext_pico`` | 224 | 4 | 2-2-6-2 | 64-512 | 1000 | 9,045,672 |
    | ``convnext_nano`` | 224 | 4 | 2-2-8-2 | 80-640 | 1000 | 15,593,560 |
    | ``convnext_tiny`` | 224 | 4 | 3-3-9-3 | 96-768 | 1000 | 28,589,128 |
    | ``convnext_small`` | 224 | 4 | 3-3-27-3 | 96-768 | 1000 | 50,223,688 |
    | ``convnext_base`` | 224 | 4 | 3-3-27-3 | 128-1024 | 1000 | 88,591,464 |
    | ``convnext_large`` | 224 | 4 | 3-3-27-3 | 192-1536 | 1000 | 197,767,336 |
    | ``convnext_xlarge`` | 224 | 4 | 3-3-27-3 | 256-2048 | 1000 | 350,196,968 |
    | ``convnext_32px`` | 32 | 2 | 2-2-4-2 | 32-256 | 10 | 1,901,802 |

    Widths double at every stage (``40-320`` is 40, 80, 160, 320).

    Args:
        input_shape: ``(height, width, channels)``; static. The model
            takes float images in [0, 1]: convert uint8 pixels with
            :func:`kvision.data.to_model_range`.
        depths: sequence of ints, blocks per stage.
        dims: sequence of ints, width of each stage (same length).
        stem_patch_size: int, the stem's patch size (4 in the paper).
        kernel_size: int, depthwise kernel size (7 in the paper).
        layer_scale_init_value: float, initial LayerScale (1e-6).
        drop_path_rate: float in [0, 1), the last block's stochastic depth.
        norm_epsilon: float, LayerNorm epsilon (1e-6).
        include_top: bool, whether to end with the classifier.
        num_classes: int, classes of the classifier.
        pooling: headless output: ``None`` (last feature map), ``"avg"`` or
            ``"max"``.
        classifier_activation: activation of the classifier (default
            ``None``: logits).
        weight_init: how kernels are drawn (see
            :mod:`kvision.models.initialization`); default
            ``"trunc_normal"``: standard deviation 0.02 and zero biases for
            every convolution and dense layer, the head included, as the
            official code.
        name: model name.

    Example:

    >>> from kvision.models import create_model
    >>> model = create_model("convnext_32px")
    >>> model.feature_names
    ['stage_0', 'stage_1', 'stage_2', 'stage_3']
    """

    def __init__(
        self,
        input_shape=(224, 224, 3),
        depths=(3, 3, 9, 3),
        dims=(96, 192, 384, 768),
        stem_patch_size=4,
        kernel_size=7,
        layer_scale_init_value=1e-6,
        drop_path_rate=0.0,
        norm_epsilon=1e-6,
        include_top=True,
        num_classes=1000,
        pooling=None,
        classifier_activation=None,
        weight_init="trunc_normal",
        name="convnext",
        **kwargs,
    ):
        config = base.constructor_arguments(locals())
        depths, dims = config["depths"], config["dims"]
        if not depths or len(depths) != len(dims):
            raise ValueError(
                "`depths` and `dims` must be non-empty and of equal length. "
                f"Received: depths={depths}, dims={dims}"
            )
        for depth in depths:
            _checks.positive_int("depths", depth)
        base.check_head_arguments(include_top, num_classes, pooling)
        rates = base.drop_path_rates(drop_path_rate, sum(depths), "linear")

        inputs = base.image_input(input_shape)
        x = layers.ConvNeXtStem(
            dims[0],
            stem_patch_size,
            norm_epsilon=norm_epsilon,
            data_format="channels_last",
            name="stem",
        )(inputs)
        names = []
        for stage, (depth, dim) in enumerate(zip(depths, dims, strict=True)):
            if stage > 0:
                x = layers.ConvNeXtDownsampling(
                    dim,
                    norm_epsilon=norm_epsilon,
                    data_format="channels_last",
                    name=f"stage_{stage}_downsampling",
                )(x)
            for i in range(depth):
                x = layers.ConvNeXtBlock(
                    kernel_size,
                    layer_scale_init_value=layer_scale_init_value,
                    drop_path_rate=rates.pop(0),
                    norm_epsilon=norm_epsilon,
                    data_format="channels_last",
                    name=f"stage_{stage}_block_{i}",
                )(x)
            names.append(f"stage_{stage}")
            x = keras.layers.Identity(name=names[-1])(x)
        if include_top:
            x = keras.layers.GlobalAveragePooling2D(
                data_format="channels_last", name="avg_pool"
            )(x)
            x = keras.layers.LayerNormalization(
                epsilon=norm_epsilon, name="head_norm"
            )(x)
            outputs = base.classifier(x, num_classes, classifier_activation)
        else:
            outputs = base.pool_features(x, pooling, spatial=True)
        self._build(inputs, outputs, config, names, name, **kwargs)
        initialization.initialize_weights(self, weight_init)


_IMAGENET = dict(input_shape=(224, 224, 3), num_classes=1000)
_SIZES = {
    # name: (depths, dims)
    "atto": ((2, 2, 6, 2), (40, 80, 160, 320)),
    "femto": ((2, 2, 6, 2), (48, 96, 192, 384)),
    "pico": ((2, 2, 6, 2), (64, 128, 256, 512)),
    "nano": ((2, 2, 8, 2), (80, 160, 320, 640)),
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768)),
    "base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
    "large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
    "xlarge": ((3, 3, 27, 3), (256, 512, 1024, 2048)),
}
for _size, (_depths, _dims) in _SIZES.items():
    register_model(
        f"convnext_{_size}",
        ConvNeXt,
        f"ConvNeXt-{_size.capitalize()}, ImageNet",
        depths=_depths,
        dims=_dims,
        **_IMAGENET,
    )
register_model(
    "convnext_32px",
    ConvNeXt,
    "A small ConvNeXt for 32x32 images (CIFAR): stem patch 2, 4 stages",
    input_shape=(32, 32, 3),
    depths=(2, 2, 4, 2),
    dims=(32, 64, 128, 256),
    stem_patch_size=2,
    num_classes=10,
)
