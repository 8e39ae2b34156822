"""MetaFormer and PoolFormer: one hierarchical skeleton, any token mixer."""

import keras

from kvision import _checks
from kvision import layers
from kvision.layers.metaformer import TOKEN_MIXERS
from kvision.models import base
from kvision.models.registry import register_model


def _mixer_config(token_mixer):
    """A token mixer as it goes into a config: a name or a layer's config."""
    if isinstance(token_mixer, keras.layers.Layer):
        config = keras.saving.serialize_keras_object(token_mixer)
        config.pop("build_config", None)
        return config
    if isinstance(token_mixer, dict):
        return token_mixer
    return _checks.one_of("token_mixer", token_mixer, set(TOKEN_MIXERS))


@keras.saving.register_keras_serializable(package="kvision")
class MetaFormer(base.VisionModel):
    """MetaFormer: a convolutional stem, four stages of MetaFormer blocks.

    Reference: Yu et al., *MetaFormer Is Actually What You Need for Vision*
    (arXiv:2111.11418); with ``token_mixer="pooling"`` (the default) this is
    **PoolFormer**, with the layout of the official code. ``"stem"``: a
    ``stem_patch_size`` convolution, stride ``stem_stride``, after
    ``stem_padding`` zeros on each side (``"stem_padding"``) → the blocks
    ``"stage_{s}_block_{i}"`` (:class:`~kvision.layers.MetaFormerBlock`),
    each stage ending in an identity layer ``"stage_{s}"`` (its feature
    map), and between stages ``"stage_{s}_downsampling"``: a 3×3, stride-2
    convolution after one zero of padding, without a norm → ``"final_norm"``
    (the blocks' norm) → global average pooling ``"avg_pool"`` → ``"head"``.
    Stochastic depth grows linearly from 0 to ``drop_path_rate`` over all
    blocks (``rate * i / (n - 1)``), as in the official code.

    Registered variants (parameters = trainable weights; 224-pixel images
    and 1000 classes, or 32 pixels and 10 classes for ``*_32px``):

    | name | stem | depths | widths | LayerScale | params |
    | --- | --- | --- | --- | --- | --- |
    | ``poolformer_s12`` | 7/4 | 2-2-6-2 | 64-128-320-512 | 1e-5 | 11,915,176 |
    | ``poolformer_s24`` | 7/4 | 4-4-12-4 | 64-128-320-512 | 1e-5 | 21,388,968 |
    | ``poolformer_s36`` | 7/4 | 6-6-18-6 | 64-128-320-512 | 1e-6 | 30,862,760 |
    | ``poolformer_m36`` | 7/4 | 6-6-18-6 | 96-192-384-768 | 1e-6 | 56,172,520 |
    | ``poolformer_m48`` | 7/4 | 8-8-24-8 | 96-192-384-768 | 1e-6 | 73,473,448 |
    | ``poolformer_32px`` | 3/2 | 2-2-6-2 | 32-64-160-256 | 1e-5 | 2,861,290 |
    | ``metaformer_32px`` | 3/2 | 2-2-6-2 | 32-64-160-256 | 1e-5 | 4,042,602 |

    The paper trains the ImageNet variants with stochastic depth 0.1, 0.1,
    0.2, 0.3 and 0.4 (S12 to M48); pass it as ``drop_path_rate``.

    **The 32-pixel variants** are kvision's own configuration, not the
    paper's. PoolFormer's 7×7, stride-4 stem would leave a 32×32 image an
    8×8 grid, and the three stride-2 downsamplings 4×4, 2×2 and finally
    1×1, where pooling minus the input is identically zero and no token
    mixer has anything to mix. A 3×3, stride-2 stem with one pixel of
    padding (the shape of the model's own downsampling layers) keeps 16×16,
    8×8, 4×4 and 2×2 grids, so every stage mixes tokens; S12's depths are
    kept, with half its widths (about a quarter of its parameters).
    ``metaformer_32px`` is the same skeleton with an attention mixer by
    default; pass ``token_mixer=`` any mixer :class:`MetaFormerBlock`
    accepts to compare them under one skeleton (its row above counts the
    attention mixer).

    Args:
        input_shape: ``(height, width, channels)``; static. The model
            takes float images in [0, 1]: convert uint8 pixels with
            :func:`kvision.data.to_model_range`.
        depths: sequence of ints, blocks per stage.
        dims: sequence of ints, width of each stage (same length).
        token_mixer: the blocks' token mixer: ``"pooling"``,
            ``"attention"``, ``"spatial_mlp"``, ``"depthwise_conv"``,
            ``"identity"``, a Keras layer (each block gets its own copy,
            made from the layer's config) or such a layer's serialized
            config; or a sequence of these, one per stage (the paper's
            hybrid models, e.g. pooling in the first two stages and
            attention in the last two).
        mlp_ratio: int, the MLPs' expansion (4).
        pool_size: odd int, the pooling window (3).
        kernel_size: int, the depthwise kernel of ``"depthwise_conv"`` (3).
        num_heads: int, or ``None`` for one head per 32 channels.
        tokens_mlp_dim: int, or ``None`` for the stage's token count: the
            hidden width of ``"spatial_mlp"``.
        stem_patch_size: int, the stem's kernel (7).
        stem_stride: int, the stem's stride (4).
        stem_padding: int, zeros added on each side before the stem (2).
        norm: ``"group"`` (GroupNorm with one group, default) or
            ``"layer"`` (LayerNorm over channels).
        norm_epsilon: float, the norms' epsilon (1e-5).
        layer_scale_init_value: float, initial LayerScale, or ``None``.
        drop_path_rate: float in [0, 1), the last block's stochastic depth.
        include_top: bool, whether to end with the classifier.
        num_classes: int, classes of the classifier.
        pooling: headless output: ``None`` (last feature map), ``"avg"`` or
            ``"max"``.
        classifier_activation: activation of the classifier (default
            ``None``: logits).
        name: model name.

    Example:

    >>> from kvision.models import create_model
    >>> model = create_model("metaformer_32px", depths=(1, 1, 1, 1))
    >>> model.feature_names
    ['stage_0', 'stage_1', 'stage_2', 'stage_3']
    >>> sorted(model.attention_model().output)[:2]
    ['stage_0_block_0', 'stage_1_block_0']
    """

    def __init__(
        self,
        input_shape=(224, 224, 3),
        depths=(2, 2, 6, 2),
        dims=(64, 128, 320, 512),
        token_mixer="pooling",
        mlp_ratio=4,
        pool_size=3,
        kernel_size=3,
        num_heads=None,
        tokens_mlp_dim=None,
        stem_patch_size=7,
        stem_stride=4,
        stem_padding=2,
        norm="group",
        norm_epsilon=1e-5,
        layer_scale_init_value=1e-5,
        drop_path_rate=0.0,
        include_top=True,
        num_classes=1000,
        pooling=None,
        classifier_activation=None,
        name="metaformer",
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
        if isinstance(token_mixer, (list, tuple)):
            if len(token_mixer) != len(depths):
                raise ValueError(
                    "A sequence of token mixers needs one per stage "
                    f"({len(depths)}). Received: token_mixer={token_mixer!r}"
                )
            mixers = tuple(_mixer_config(m) for m in token_mixer)
            config["token_mixer"] = mixers
        else:
            config["token_mixer"] = _mixer_config(token_mixer)
            mixers = (config["token_mixer"],) * len(depths)
        _checks.positive_int("stem_patch_size", stem_patch_size)
        _checks.positive_int("stem_stride", stem_stride)
        if (
            isinstance(stem_padding, bool)
            or not isinstance(stem_padding, int)
            or stem_padding < 0
        ):
            raise ValueError(
                "`stem_padding` must be a non-negative integer. "
                f"Received: stem_padding={stem_padding!r}"
            )
        base.check_head_arguments(include_top, num_classes, pooling)
        rates = base.drop_path_rates(drop_path_rate, sum(depths), "linear")

        inputs = base.image_input(input_shape)
        x = keras.layers.ZeroPadding2D(
            stem_padding, data_format="channels_last", name="stem_padding"
        )(inputs)
        x = keras.layers.Conv2D(
            dims[0],
            stem_patch_size,
            strides=stem_stride,
            data_format="channels_last",
            name="stem",
        )(x)
        names = []
        for stage, (depth, dim) in enumerate(zip(depths, dims, strict=True)):
            if stage > 0:
                x = keras.layers.ZeroPadding2D(
                    1,
                    data_format="channels_last",
                    name=f"stage_{stage}_padding",
                )(x)
                x = keras.layers.Conv2D(
                    dim,
                    3,
                    strides=2,
                    data_format="channels_last",
                    name=f"stage_{stage}_downsampling",
                )(x)
            for i in range(depth):
                block = layers.MetaFormerBlock(
                    mixers[stage],
                    mlp_ratio=mlp_ratio,
                    pool_size=pool_size,
                    kernel_size=kernel_size,
                    num_heads=num_heads,
                    tokens_mlp_dim=tokens_mlp_dim,
                    norm=norm,
                    norm_epsilon=norm_epsilon,
                    layer_scale_init_value=layer_scale_init_value,
                    drop_path_rate=rates.pop(0),
                    data_format="channels_last",
                    name=f"stage_{stage}_block_{i}",
                )
                x = block(x)
            names.append(f"stage_{stage}")
            x = keras.layers.Identity(name=names[-1])(x)
        if include_top:
            if norm == "group":
                x = keras.layers.GroupNormalization(
                    groups=1, epsilon=norm_epsilon, name="final_norm"
                )(x)
            else:
                x = keras.layers.LayerNormalization(
                    epsilon=norm_epsilon, name="final_norm"
                )(x)
            x = keras.layers.GlobalAveragePooling2D(
                data_format="channels_last", name="avg_pool"
            )(x)
            outputs = base.classifier(x, num_classes, classifier_activation)
        else:
            outputs = base.pool_features(x, pooling, spatial=True)
        self._build(inputs, outputs, config, names, name, **kwargs)

    def _attention_candidates(self):
        # Blocks, not the stage outputs, carry the attention scores.
        return [
            layer.name
            for layer in self.layers
            if isinstance(layer, layers.MetaFormerBlock)
        ]


_POOLFORMER = dict(
    input_shape=(224, 224, 3),
    stem_patch_size=7,
    stem_stride=4,
    stem_padding=2,
    num_classes=1000,
)
_SIZES = {
    # name: (depths, dims, LayerScale init)
    "s12": ((2, 2, 6, 2), (64, 128, 320, 512), 1e-5),
    "s24": ((4, 4, 12, 4), (64, 128, 320, 512), 1e-5),
    "s36": ((6, 6, 18, 6), (64, 128, 320, 512), 1e-6),
    "m36": ((6, 6, 18, 6), (96, 192, 384, 768), 1e-6),
    "m48": ((8, 8, 24, 8), (96, 192, 384, 768), 1e-6),
}
for _size, (_depths, _dims, _scale) in _SIZES.items():
    register_model(
        f"poolformer_{_size}",
        MetaFormer,
        f"PoolFormer-{_size.upper()}, ImageNet",
        depths=_depths,
        dims=_dims,
        layer_scale_init_value=_scale,
        **_POOLFORMER,
    )
# See the class docstring: a 3x3 stride-2 stem keeps a 2x2 grid at the end.
_SMALL = dict(
    input_shape=(32, 32, 3),
    depths=(2, 2, 6, 2),
    dims=(32, 64, 160, 256),
    stem_patch_size=3,
    stem_stride=2,
    stem_padding=1,
    num_classes=10,
)
register_model(
    "poolformer_32px",
    MetaFormer,
    "A small PoolFormer for 32x32 images (CIFAR): 3x3/2 stem, 2-2-6-2",
    **_SMALL,
)
register_model(
    "metaformer_32px",
    MetaFormer,
    "poolformer_32px's skeleton with any token mixer (default attention)",
    token_mixer="attention",
    **_SMALL,
)
