"""Pooling-based Vision Transformer (PiT) and the small-dataset SL-PiT."""

import keras

from kvision import _checks
from kvision import layers
from kvision.models import base
from kvision.models.registry import register_model


def pit_drop_path_rates(rate, count, schedule):
    """PiT's stochastic depth: ``rate * i / count`` for block ``i``.

    The official PiT code's linear rule stops one step short of ``rate``;
    ``"constant"`` gives every block ``rate`` (the small-dataset code).
    """
    rates = base.drop_path_rates(rate, count, schedule)  # validates
    if schedule == "linear":
        return [rate * i / count for i in range(count)]
    return rates


@keras.saving.register_keras_serializable(package="kvision")
class PoolingVisionTransformer(base.VisionModel):
    """PiT: a ViT whose stages pool tokens and widen them, optionally SL-PiT.

    References: Heo et al., *Rethinking Spatial Dimensions of Vision
    Transformers* (arXiv:2103.16302); Lee, Lee and Song, *Vision Transformer
    for Small-Size Datasets* (arXiv:2112.13492) for ``tokenizer="spt"``,
    ``attention="lsa"`` and ``token_pooling="spt"``.

    Layout on tokens: ``"patch_embedding"`` (a convolution with kernel
    ``patch_size`` and stride ``stride``, overlapping in the original PiT)
    or ``"spt"`` → ``"position_embedding"`` and ``"class_token"`` →
    stages of :class:`~kvision.layers.TransformerBlock`
    ``"stage_{s}_block_{i}"`` of width ``head_dim * num_heads[s]``, each
    stage ending in an identity layer ``"stage_{s}"`` (class token first,
    then the stage's token grid, row-major), with ``"stage_{s}_pooling"``
    (:class:`~kvision.layers.PiTPooling`) or SPT pooling ``"stage_{s}_spt"``
    between stages → ``"final_norm"`` → the class token → ``"head"``.

    Registered variants (trainable parameters, registered ``num_classes``;
    width = head width x heads, doubling per stage):

    | name | input | embedding | width | depths | heads | params |
    | --- | --- | --- | --- | --- | --- | --- |
    | ``pit_32px`` | 32 | patch 2 | 96 | 2, 6, 4 | 2, 4, 8 | 6,972,586 |
    | ``sl_pit_32px`` | 32 | SPT 2 | 96 | 2, 6, 4 | 2, 4, 8 LSA | 8,642,014 |
    | ``pit_ti`` | 224 | 16, stride 8 | 64 | 2, 6, 4 | 2, 4, 8 | 4,847,272 |
    | ``pit_xs`` | 224 | 16, stride 8 | 96 | 2, 6, 4 | 2, 4, 8 | 10,618,888 |
    | ``pit_s`` | 224 | 16, stride 8 | 144 | 2, 6, 4 | 3, 6, 12 | 23,461,912 |
    | ``pit_b`` | 224 | 14, stride 7 | 256 | 3, 6, 4 | 4, 8, 16 | 73,764,840 |

    With a 100-class head (CIFAR-100, the counts the small-dataset paper's
    code gives) ``pit_32px`` has 7,007,236 and ``sl_pit_32px`` 8,676,664.
    The ImageNet variants follow the official PiT code (head width 32, 48,
    48 and 64; MLP ratio 4; qkv bias; LayerNorm epsilon 1e-6; position
    embedding on the visual tokens only). The ``_32px`` variants reproduce
    the PiT baseline of the small-dataset paper's official code, whose
    parameter counts they match (registered with 10 classes, CIFAR-10): a
    non-overlapping patch-2 embedding, MLP ratio 2, no qkv bias, PyTorch's
    LayerNorm epsilon 1e-5, a position embedding on the class token too
    (``class_position_embedding=True``), a 1x1 convolution after each
    pooling's depthwise convolution (``pointwise_pooling=True``; the
    original PiT has none) and one stochastic-depth rate for every block.
    ``sl_pit_32px`` replaces the embedding and the pooling layers by Shifted
    Patch Tokenization (the class token through its own dense layer) and
    every attention by LSA, as that code does.

    Args:
        input_shape: ``(height, width, channels)``; static. The model
            takes float images in [0, 1]: convert uint8 pixels with
            :func:`kvision.data.to_model_range`.
        patch_size: int, the embedding's kernel (patch) size.
        stride: int or ``None`` for ``patch_size`` (non-overlapping).
        head_dim: int, width of every attention head (PiT's ``base_dim``);
            stage ``s`` is ``head_dim * num_heads[s]`` wide.
        depths: blocks per stage.
        num_heads: heads per stage; each stage's width must be a multiple
            of the previous one (the pooling's channel multiplier).
        mlp_ratio: float, MLP hidden width over the block width.
        tokenizer: ``"conv"`` (the strided convolution) or ``"spt"``
            (:class:`~kvision.layers.ShiftedPatchTokenization`; needs
            ``stride`` equal to ``patch_size``).
        attention: ``"mhsa"`` or ``"lsa"``.
        token_pooling: ``"conv"`` (:class:`~kvision.layers.PiTPooling`) or
            ``"spt"`` (SPT pooling with the class token).
        pointwise_pooling: bool, the small-data code's 1x1 convolution in
            :class:`~kvision.layers.PiTPooling`.
        class_position_embedding: bool, whether the class token gets a
            position embedding too (small-data code: True; PiT: False).
        qkv_bias: bool, bias on the query/key/value projections.
        norm_epsilon: float, epsilon of every LayerNorm.
        dropout: float in [0, 1), dropout in the blocks.
        embedding_dropout: float in [0, 1), dropout after the embeddings.
        drop_path_rate: float in [0, 1), stochastic depth.
        drop_path_schedule: ``"linear"`` (PiT's ``rate * i / blocks``) or
            ``"constant"`` (the small-data code).
        include_top: bool, whether to end with the classifier.
        num_classes: int, classes of the classifier.
        pooling: headless output: ``None`` (all tokens), ``"avg"`` or
            ``"max"`` over tokens.
        classifier_activation: activation of the classifier (default
            ``None``: logits).
        name: model name.

    Example:

    >>> from kvision.models import create_model
    >>> model = create_model("sl_pit_32px", depths=(1, 1, 1))
    >>> scores = model.attention_model().output
    >>> [tuple(scores[f"stage_{s}_block_0"].shape) for s in range(3)]
    [(None, 2, 257, 257), (None, 4, 65, 65), (None, 8, 17, 17)]
    """

    def __init__(
        self,
        input_shape=(224, 224, 3),
        patch_size=16,
        stride=8,
        head_dim=48,
        depths=(2, 6, 4),
        num_heads=(3, 6, 12),
        mlp_ratio=4.0,
        tokenizer="conv",
        attention="mhsa",
        token_pooling="conv",
        pointwise_pooling=False,
        class_position_embedding=False,
        qkv_bias=True,
        norm_epsilon=1e-6,
        dropout=0.0,
        embedding_dropout=0.0,
        drop_path_rate=0.0,
        drop_path_schedule="linear",
        include_top=True,
        num_classes=1000,
        pooling=None,
        classifier_activation=None,
        name="pit",
        **kwargs,
    ):
        config = base.constructor_arguments(locals())
        _checks.positive_int("patch_size", patch_size)
        stride = _checks.optional_positive_int("stride", stride) or patch_size
        _checks.positive_int("head_dim", head_dim)
        depths, num_heads = tuple(depths), tuple(num_heads)
        for depth in depths:
            _checks.positive_int("depths", depth)
        if not depths or len(num_heads) != len(depths):
            raise ValueError(
                "`num_heads` needs one entry per stage of `depths`. "
                f"Received: depths={depths}, num_heads={num_heads}"
            )
        for previous, heads in zip(num_heads, num_heads[1:], strict=False):
            if heads % previous:
                raise ValueError(
                    "Each stage's heads must be a multiple of the previous "
                    "stage's: the pooling widens channels by an integer "
                    f"factor. Received: num_heads={num_heads}"
                )
        _checks.one_of("tokenizer", tokenizer, {"conv", "spt"})
        _checks.one_of("token_pooling", token_pooling, {"conv", "spt"})
        if tokenizer == "spt" and stride != patch_size:
            raise ValueError(
                "SPT cuts non-overlapping patches: `stride` must equal "
                f"`patch_size`. Received: stride={stride}, "
                f"patch_size={patch_size}"
            )
        base.check_head_arguments(include_top, num_classes, pooling)
        rates = pit_drop_path_rates(
            drop_path_rate, sum(depths), drop_path_schedule
        )
        widths = [head_dim * heads for heads in num_heads]

        inputs = base.image_input(input_shape)
        if tokenizer == "spt":
            x = layers.ShiftedPatchTokenization(
                patch_size,
                widths[0],
                norm_epsilon=norm_epsilon,
                data_format="channels_last",
                name="spt",
            )(inputs)
            grid = (input_shape[0] // patch_size, input_shape[1] // patch_size)
        else:
            x = keras.layers.Conv2D(
                widths[0],
                patch_size,
                strides=stride,
                data_format="channels_last",
                name="patch_embedding",
            )(inputs)
            grid = (x.shape[1], x.shape[2])
            x = keras.layers.Reshape(
                (grid[0] * grid[1], widths[0]), name="to_tokens"
            )(x)
        if class_position_embedding:
            x = layers.ClassToken(name="class_token")(x)
            x = layers.PositionEmbedding(name="position_embedding")(x)
        else:
            x = layers.PositionEmbedding(name="position_embedding")(x)
            x = layers.ClassToken(name="class_token")(x)
        x = keras.layers.Dropout(embedding_dropout, name="embedding_dropout")(x)

        names = []
        block = 0
        for stage, (depth, heads) in enumerate(
            zip(depths, num_heads, strict=True)
        ):
            for i in range(depth):
                names.append(f"stage_{stage}_block_{i}")
                x = layers.TransformerBlock(
                    heads,
                    int(widths[stage] * mlp_ratio),
                    attention=attention,
                    head_dim=head_dim,
                    qkv_bias=qkv_bias,
                    dropout=dropout,
                    drop_path_rate=rates[block],
                    norm_epsilon=norm_epsilon,
                    name=names[-1],
                )(x)
                block += 1
            names.append(f"stage_{stage}")
            x = keras.layers.Identity(name=names[-1])(x)
            if stage == len(depths) - 1:
                break
            if token_pooling == "spt":
                x = layers.ShiftedPatchTokenization(
                    2,
                    widths[stage + 1],
                    has_class_token=True,
                    token_grid=grid,
                    norm_epsilon=norm_epsilon,
                    name=f"stage_{stage}_spt",
                )(x)
                grid = (grid[0] // 2, grid[1] // 2)
            else:
                x = layers.PiTPooling(
                    depth_multiplier=widths[stage + 1] // widths[stage],
                    pointwise=pointwise_pooling,
                    token_grid=grid,
                    name=f"stage_{stage}_pooling",
                )(x)
                grid = ((grid[0] - 1) // 2 + 1, (grid[1] - 1) // 2 + 1)

        outputs = base.class_token_output(
            x,
            norm_epsilon,
            include_top,
            num_classes,
            classifier_activation,
            pooling,
        )
        self._build(inputs, outputs, config, names, name, **kwargs)


# The PiT baseline of the small-dataset paper's official code at 32 pixels:
# patch 2 (16x16 tokens -> 8x8 -> 4x4), heads of width 48, MLP ratio 2.
_SMALL_DATA = dict(
    input_shape=(32, 32, 3),
    patch_size=2,
    stride=2,
    head_dim=48,
    depths=(2, 6, 4),
    num_heads=(2, 4, 8),
    mlp_ratio=2.0,
    pointwise_pooling=True,
    class_position_embedding=True,
    qkv_bias=False,
    norm_epsilon=1e-5,
    drop_path_schedule="constant",
    num_classes=10,
)

register_model(
    "pit_32px",
    PoolingVisionTransformer,
    "PiT for 32x32 images (CIFAR), the small-dataset paper's baseline",
    **_SMALL_DATA,
)
register_model(
    "sl_pit_32px",
    PoolingVisionTransformer,
    "SL-PiT (SPT tokens and pooling + LSA) for 32x32 images (CIFAR)",
    tokenizer="spt",
    attention="lsa",
    token_pooling="spt",
    **_SMALL_DATA,
)
_IMAGENET = dict(input_shape=(224, 224, 3), num_classes=1000)
for _size, (_patch, _stride, _head_dim, _depths, _heads) in {
    "ti": (16, 8, 32, (2, 6, 4), (2, 4, 8)),
    "xs": (16, 8, 48, (2, 6, 4), (2, 4, 8)),
    "s": (16, 8, 48, (2, 6, 4), (3, 6, 12)),
    "b": (14, 7, 64, (3, 6, 4), (4, 8, 16)),
}.items():
    register_model(
        f"pit_{_size}",
        PoolingVisionTransformer,
        f"PiT-{_size.upper()}, ImageNet 224x224",
        patch_size=_patch,
        stride=_stride,
        head_dim=_head_dim,
        depths=_depths,
        num_heads=_heads,
        **_IMAGENET,
    )
