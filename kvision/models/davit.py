"""DaViT: Dual Attention Vision Transformers (spatial windows and channel
groups, alternating)."""

import keras

from kvision import _checks
from kvision import layers
from kvision.models import base
from kvision.models.registry import register_model


def dual_attention_stage(
    x,
    stage,
    depth,
    num_heads,
    window_size=7,
    mlp_ratio=4.0,
    qkv_bias=True,
    drop_path_rates=None,
    norm_epsilon=1e-5,
):
    """Applies ``depth`` DaViT block pairs (spatial, then channel) to ``x``.

    Reference: DaViT (arXiv:2204.03645): a stage of depth ``d`` is ``d``
    dual blocks, each a :class:`~kvision.layers.DaViTSpatialBlock` followed
    by a :class:`~kvision.layers.DaViTChannelBlock` with the same number of
    heads (spatial) and groups (channel). Each block is named, so a model
    built from it exposes every block's attention through
    :meth:`~kvision.models.VisionModel.attention_model`.

    Args:
        x: symbolic channels-last maps ``(B, H, W, C)``.
        stage: int, the stage index used in the block names.
        depth: int, the number of block pairs.
        num_heads: int, heads of the spatial attention and groups of the
            channel attention.
        window_size: int, side of the spatial attention windows.
        mlp_ratio: positive number, MLP width over the channel count.
        qkv_bias: bool, bias on every query/key/value projection.
        drop_path_rates: ``2 * depth`` stochastic depth rates, one per
            block in order, or ``None`` for none.
        norm_epsilon: float, epsilon of the blocks' LayerNorms.

    Returns:
        ``(x, names)``: the output maps and the ``2 * depth`` block names,
        ``"stage_{s}_block_{i}_spatial"`` and
        ``"stage_{s}_block_{i}_channel"``.

    Example:

    >>> import keras
    >>> x = keras.Input((8, 8, 32))
    >>> y, names = dual_attention_stage(x, 0, 1, num_heads=2, window_size=4)
    >>> tuple(y.shape), names
    ((None, 8, 8, 32), ['stage_0_block_0_spatial', 'stage_0_block_0_channel'])
    """
    _checks.positive_int("depth", depth)
    rates = list(drop_path_rates or [0.0] * (2 * depth))
    if len(rates) != 2 * depth:
        raise ValueError(
            "`drop_path_rates` needs one rate per block (2 * depth). "
            f"Received: drop_path_rates={drop_path_rates} for depth={depth}"
        )
    shared = dict(
        mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, norm_epsilon=norm_epsilon
    )
    names = []
    for i in range(depth):
        names.append(f"stage_{stage}_block_{i}_spatial")
        x = layers.DaViTSpatialBlock(
            num_heads,
            window_size,
            drop_path_rate=rates[2 * i],
            name=names[-1],
            **shared,
        )(x)
        names.append(f"stage_{stage}_block_{i}_channel")
        x = layers.DaViTChannelBlock(
            num_heads,
            drop_path_rate=rates[2 * i + 1],
            name=names[-1],
            **shared,
        )(x)
    return x, names


@keras.saving.register_keras_serializable(package="kvision")
class DaViT(base.VisionModel):
    """DaViT: four stages of alternating spatial and channel attention.

    Reference: Ding, Xiao, Codella, Luo, Wang and Yuan, *DaViT: Dual
    Attention Vision Transformers* (arXiv:2204.03645), following the
    official code. Layout (every tensor a channels-last map):

    - stem: ``"stem_padding"`` (3 pixels) → ``"stem_conv"`` (7×7,
      stride 4) → ``"stem_norm"`` (LayerNorm);
    - for each stage ``s``: after the first,
      ``"stage_{s}_downsampling"`` (LayerNorm, then a 2×2 stride-2
      convolution: :class:`~kvision.layers.ConvNeXtDownsampling`); then
      ``depths[s]`` block pairs ``"stage_{s}_block_{i}_spatial"``
      (:class:`~kvision.layers.DaViTSpatialBlock`, window attention) and
      ``"stage_{s}_block_{i}_channel"``
      (:class:`~kvision.layers.DaViTChannelBlock`, channel group
      attention) — see :func:`dual_attention_stage`; then an identity
      layer ``"stage_{s}"`` (the stage's feature map);
    - head: ``"avg_pool"`` (mean over positions) → ``"head_norm"``
      (LayerNorm) → ``"head"``.

    :attr:`feature_names` lists every block and every stage, so
    :meth:`attention_model` returns each block's attention (spatial blocks
    ``(B, windows, heads, w², w²)``, channel blocks ``(B, groups, Cg,
    Cg)``) and :meth:`feature_model` every block's and stage's maps.
    Stochastic depth grows linearly from 0 to ``drop_path_rate`` over all
    ``2 · sum(depths)`` blocks, as in the official code.

    Registered variants (parameters = trainable weights):

    | name | input | depths | widths | heads | window | classes | params |
    | --- | --- | --- | --- | --- | --- | --- | --- |
    | ``davit_tiny`` | 224 | 1-1-3-1 | 96-768 | 3-24 | 7 | 1000 | 28,360,168 |
    | ``davit_small`` | 224 | 1-1-9-1 | 96-768 | 3-24 | 7 | 1000 | 49,745,896 |
    | ``davit_base`` | 224 | 1-1-9-1 | 128-1024 | 4-32 | 7 | 1000 | 87,954,408 |
    | ``davit_32px`` | 32 | 1-1-1 | 32-128 | 1-4 | 4 | 10 | 578,570 |

    Widths and heads double at every stage (``96-768`` is 96, 192, 384,
    768). The ImageNet sizes are the paper's DaViT-Tiny, -Small and -Base.

    ``davit_32px`` is kvision's own configuration for 32×32 images (the
    paper has none): the official 7×7 stride-4 stem turns 32 pixels into an
    8×8 map; three stages (8×8, 4×4, 2×2) keep every map at least 2×2 (a
    fourth would run attention on a single position); widths 32-64-128
    with 32 channels per head and per channel group, DaViT's own ratio;
    window 4, so the first stage's spatial attention is local (four windows
    of 4×4) while its channel attention sees the whole image, the second
    stage's window covers its whole map, and the last stage's 2×2 map is
    padded into one window, as the official code pads. One block pair per
    stage keeps it at 0.58M parameters, trainable from scratch on a CPU in
    minutes.

    Args:
        input_shape: ``(height, width, channels)``; static. The model
            takes float images in [0, 1]: convert uint8 pixels with
            :func:`kvision.data.to_model_range`.
        depths: sequence of ints, block pairs per stage.
        dims: sequence of ints, width of each stage (same length).
        num_heads: sequence of ints, heads (spatial) and groups (channel)
            per stage (same length); each divides its stage's width.
        window_size: int, side of the spatial attention windows.
        mlp_ratio: positive number, MLP width over the channel count.
        qkv_bias: bool, bias on every query/key/value projection.
        drop_path_rate: float in [0, 1), the last block's stochastic depth
            (0.1 in the official training script).
        norm_epsilon: float, epsilon of every LayerNorm (1e-5, PyTorch's).
        include_top: bool, whether to end with the classifier.
        num_classes: int, classes of the classifier.
        pooling: headless output: ``None`` (last feature map), ``"avg"`` or
            ``"max"``.
        classifier_activation: activation of the classifier (default
            ``None``: logits).
        name: model name.

    Example:

    >>> from kvision.models import create_model
    >>> model = create_model("davit_32px")
    >>> model.feature_names[:3]
    ['stage_0_block_0_spatial', 'stage_0_block_0_channel', 'stage_0']
    >>> scores = model.attention_model().output
    >>> tuple(scores["stage_0_block_0_spatial"].shape)
    (None, 4, 1, 16, 16)
    >>> tuple(scores["stage_0_block_0_channel"].shape)
    (None, 1, 32, 32)
    """

    def __init__(
        self,
        input_shape=(224, 224, 3),
        depths=(1, 1, 3, 1),
        dims=(96, 192, 384, 768),
        num_heads=(3, 6, 12, 24),
        window_size=7,
        mlp_ratio=4.0,
        qkv_bias=True,
        drop_path_rate=0.1,
        norm_epsilon=1e-5,
        include_top=True,
        num_classes=1000,
        pooling=None,
        classifier_activation=None,
        name="davit",
        **kwargs,
    ):
        config = base.constructor_arguments(locals())
        depths, dims = config["depths"], config["dims"]
        heads = config["num_heads"]
        if not depths or not len(depths) == len(dims) == len(heads):
            raise ValueError(
                "`depths`, `dims` and `num_heads` must be non-empty and of "
                f"equal length. Received: depths={depths}, dims={dims}, "
                f"num_heads={heads}"
            )
        for depth in depths:
            _checks.positive_int("depths", depth)
        for dim, head in zip(dims, heads, strict=True):
            _checks.positive_int("dims", dim)
            _checks.positive_int("num_heads", head)
            if dim % head:
                raise ValueError(
                    "Every stage's width must be divisible by its number of "
                    f"heads. Received: dims={dims}, num_heads={heads}"
                )
        _checks.positive_int("window_size", window_size)
        base.check_head_arguments(include_top, num_classes, pooling)
        rates = base.drop_path_rates(drop_path_rate, 2 * sum(depths), "linear")

        inputs = base.image_input(input_shape)
        x = keras.layers.ZeroPadding2D(
            3, data_format="channels_last", name="stem_padding"
        )(inputs)
        x = keras.layers.Conv2D(
            dims[0],
            7,
            strides=4,
            data_format="channels_last",
            name="stem_conv",
        )(x)
        x = keras.layers.LayerNormalization(
            epsilon=norm_epsilon, name="stem_norm"
        )(x)
        names = []
        for stage, (depth, dim, head) in enumerate(
            zip(depths, dims, heads, strict=True)
        ):
            if stage > 0:
                x = layers.ConvNeXtDownsampling(
                    dim,
                    norm_epsilon=norm_epsilon,
                    data_format="channels_last",
                    name=f"stage_{stage}_downsampling",
                )(x)
            x, block_names = dual_attention_stage(
                x,
                stage,
                depth,
                head,
                window_size=window_size,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                drop_path_rates=[rates.pop(0) for _ in range(2 * depth)],
                norm_epsilon=norm_epsilon,
            )
            names += block_names
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


_IMAGENET = dict(input_shape=(224, 224, 3), num_classes=1000, window_size=7)
_SIZES = {
    # name: (depths, dims, num_heads)
    "tiny": ((1, 1, 3, 1), (96, 192, 384, 768), (3, 6, 12, 24)),
    "small": ((1, 1, 9, 1), (96, 192, 384, 768), (3, 6, 12, 24)),
    "base": ((1, 1, 9, 1), (128, 256, 512, 1024), (4, 8, 16, 32)),
}
for _size, (_depths, _dims, _heads) in _SIZES.items():
    register_model(
        f"davit_{_size}",
        DaViT,
        f"DaViT-{_size.capitalize()}, ImageNet",
        depths=_depths,
        dims=_dims,
        num_heads=_heads,
        **_IMAGENET,
    )
register_model(
    "davit_32px",
    DaViT,
    "A small DaViT for 32x32 images (CIFAR): 3 stages, window 4",
    input_shape=(32, 32, 3),
    depths=(1, 1, 1),
    dims=(32, 64, 128),
    num_heads=(1, 2, 4),
    window_size=4,
    num_classes=10,
)
