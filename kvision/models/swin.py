"""Swin Transformer and the small-dataset SL-Swin (SPT + LSA)."""

import keras

from kvision import _checks
from kvision import layers
from kvision.models import base
from kvision.models.registry import register_model


def stage_windows(grid, window_size):
    """Swin's rule: a map no larger than the window is one unshifted window.

    Returns ``(window, shift)`` for a stage whose map is ``grid``.
    """
    if min(grid) <= window_size:
        return min(grid), 0
    return window_size, window_size // 2


@keras.saving.register_keras_serializable(package="kvision")
class SwinTransformer(base.VisionModel):
    """Swin Transformer, optionally with SPT and LSA (SL-Swin).

    References: Liu et al., *Swin Transformer: Hierarchical Vision
    Transformer using Shifted Windows* (arXiv:2103.14030); Lee, Lee and
    Song, *Vision Transformer for Small-Size Datasets* (arXiv:2112.13492)
    for ``tokenizer="spt"``, ``attention="lsa"`` and ``merging="spt"``.

    Layout on channels-last maps: tokenizer (``"patch_embedding"`` +
    ``"patch_norm"``, or ``"spt"``) → optional ``"position_embedding"`` →
    stages of :class:`~kvision.layers.SwinBlock` ``"stage_{s}_block_{i}"``
    whose windows alternate unshifted / shifted by ``window_size // 2``,
    each stage ending in an identity layer ``"stage_{s}"`` (its feature
    map), then ``"stage_{s}_merging"`` (:class:`~kvision.layers.PatchMerging`
    or SPT pooling ``"stage_{s}_spt"``) between stages → ``"final_norm"`` →
    average over positions → ``"head"``. A stage whose map is no larger than
    the window uses one window covering the map, without shift (the
    official rule; at 32 pixels the last stage of ``swin_32px`` attends
    globally). Stochastic depth grows linearly from 0 to
    ``drop_path_rate`` over all blocks, as in both official codes.

    Registered variants (trainable parameters, registered ``num_classes``;
    window 4 at 32 pixels, 7 at 224):

    | name | input | tokens | width | depths | heads | params |
    | --- | --- | --- | --- | --- | --- | --- |
    | ``swin_32px`` | 32 | patch 2 | 96 | 2, 6, 4 | 3, 6, 12 | 7,073,188 |
    | ``sl_swin_32px`` | 32 | SPT 2 | 96 | 2, 6, 4 | 3-12 LSA | 8,562,166 |
    | ``swin_tiny`` | 224 | patch 4 | 96 | 2, 2, 6, 2 | 3-24 | 28,288,354 |
    | ``swin_small`` | 224 | patch 4 | 96 | 2, 2, 18, 2 | 3-24 | 49,606,258 |
    | ``swin_base`` | 224 | patch 4 | 128 | 2, 2, 18, 2 | 4-32 | 87,768,224 |

    With a 100-class head (CIFAR-100, the counts the small-dataset paper's
    code gives) ``swin_32px`` has 7,107,838 and ``sl_swin_32px`` 8,596,816.
    The ImageNet variants count like the official code (and timm's
    ``swin_*_patch4_window7_224``). The ``_32px`` variants reproduce the
    Swin of the small-dataset paper's official code, counts included
    (registered with 10 classes, CIFAR-10): MLP ratio 2, and a learned
    absolute position embedding, which that code always adds while the
    original Swin does not (``absolute_position_embedding=False`` gives the
    original). ``sl_swin_32px`` replaces the patch embedding and every patch
    merging by Shifted Patch Tokenization (merging: LN(20C) → dense to 2C
    with bias, instead of LN(4C) → bias-free dense) and every attention by
    LSA, as that code does.

    Args:
        input_shape: ``(height, width, channels)``; static. The model
            takes float images in [0, 1]: convert uint8 pixels with
            :func:`kvision.data.to_model_range`.
        patch_size: int, patch side; divides height and width.
        embed_dim: int, width of the first stage; it doubles per stage.
        depths: blocks per stage.
        num_heads: attention heads per stage (same length as ``depths``).
        window_size: int, side of the attention windows; divides every
            stage's map larger than it.
        mlp_ratio: float, MLP hidden width over the block width.
        tokenizer: ``"patch"`` (:class:`~kvision.layers.PatchEmbedding` +
            LayerNorm) or ``"spt"``
            (:class:`~kvision.layers.ShiftedPatchTokenization`).
        attention: ``"mhsa"`` or ``"lsa"`` in every block.
        merging: ``"patch"`` (:class:`~kvision.layers.PatchMerging`) or
            ``"spt"`` (SPT pooling to twice the width).
        absolute_position_embedding: bool, add a learned position embedding
            after the tokenizer (the small-data code: True; original Swin:
            False).
        qkv_bias: bool, bias on the query/key/value projections.
        norm_epsilon: float, epsilon of every LayerNorm (1e-5, PyTorch's).
        dropout: float in [0, 1), dropout after the embedding, in the MLPs
            and after the attention projections.
        attention_dropout: float in [0, 1), dropout on attention weights.
        drop_path_rate: float in [0, 1), stochastic depth of the last block.
        drop_path_schedule: ``"linear"`` (0 → rate) or ``"constant"``.
        include_top: bool, whether to end with the classifier.
        num_classes: int, classes of the classifier.
        pooling: headless output: ``None`` (the normalised last map),
            ``"avg"`` or ``"max"``.
        classifier_activation: activation of the classifier (default
            ``None``: logits).
        name: model name.

    Example:

    >>> from kvision.models import create_model
    >>> model = create_model("sl_swin_32px", depths=(2, 2, 1))
    >>> sorted(model.attention_model().output)[:3]
    ['stage_0_block_0', 'stage_0_block_1', 'stage_1_block_0']
    >>> features = model.feature_model(["stage_0", "stage_2"]).output
    >>> tuple(features["stage_0"].shape), tuple(features["stage_2"].shape)
    ((None, 16, 16, 96), (None, 4, 4, 384))
    """

    def __init__(
        self,
        input_shape=(224, 224, 3),
        patch_size=4,
        embed_dim=96,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        window_size=7,
        mlp_ratio=4.0,
        tokenizer="patch",
        attention="mhsa",
        merging="patch",
        absolute_position_embedding=False,
        qkv_bias=True,
        norm_epsilon=1e-5,
        dropout=0.0,
        attention_dropout=0.0,
        drop_path_rate=0.0,
        drop_path_schedule="linear",
        include_top=True,
        num_classes=1000,
        pooling=None,
        classifier_activation=None,
        name="swin_transformer",
        **kwargs,
    ):
        config = base.constructor_arguments(locals())
        _checks.positive_int("patch_size", patch_size)
        _checks.positive_int("embed_dim", embed_dim)
        _checks.positive_int("window_size", window_size)
        depths, num_heads = tuple(depths), tuple(num_heads)
        for depth in depths:
            _checks.positive_int("depths", depth)
        if not depths or len(num_heads) != len(depths):
            raise ValueError(
                "`num_heads` needs one entry per stage of `depths`. "
                f"Received: depths={depths}, num_heads={num_heads}"
            )
        _checks.one_of("tokenizer", tokenizer, {"patch", "spt"})
        _checks.one_of("merging", merging, {"patch", "spt"})
        base.check_head_arguments(include_top, num_classes, pooling)
        rates = base.drop_path_rates(
            drop_path_rate, sum(depths), drop_path_schedule
        )
        grids = self._stage_grids(input_shape, patch_size, len(depths))

        inputs = base.image_input(input_shape)
        x = base.patch_tokens(
            inputs, tokenizer, patch_size, embed_dim, norm_epsilon
        )
        if tokenizer == "patch":
            x = keras.layers.LayerNormalization(
                epsilon=norm_epsilon, name="patch_norm"
            )(x)
        if absolute_position_embedding:
            x = layers.PositionEmbedding(name="position_embedding")(x)
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
        x = keras.layers.Reshape((*grids[0], embed_dim), name="to_map")(x)

        names = []
        block = 0
        for stage, (depth, heads) in enumerate(
            zip(depths, num_heads, strict=True)
        ):
            width = embed_dim * 2**stage
            window, shift = stage_windows(grids[stage], window_size)
            for i in range(depth):
                names.append(f"stage_{stage}_block_{i}")
                x = layers.SwinBlock(
                    heads,
                    window,
                    shift_size=shift if i % 2 else 0,
                    mlp_ratio=mlp_ratio,
                    attention=attention,
                    qkv_bias=qkv_bias,
                    dropout=dropout,
                    attention_dropout=attention_dropout,
                    drop_path_rate=rates[block],
                    norm_epsilon=norm_epsilon,
                    name=names[-1],
                )(x)
                block += 1
            names.append(f"stage_{stage}")
            x = keras.layers.Identity(name=names[-1])(x)
            if stage == len(depths) - 1:
                break
            if merging == "patch":
                x = layers.PatchMerging(
                    norm_epsilon=norm_epsilon, name=f"stage_{stage}_merging"
                )(x)
            else:
                x = self._spt_merging(x, stage, grids, width, norm_epsilon)

        x = keras.layers.LayerNormalization(
            epsilon=norm_epsilon, name="final_norm"
        )(x)
        if include_top:
            x = keras.layers.GlobalAveragePooling2D(
                data_format="channels_last", name="avg_pool"
            )(x)
            outputs = base.classifier(x, num_classes, classifier_activation)
        else:
            outputs = base.pool_features(x, pooling, spatial=True)
        self._build(inputs, outputs, config, names, name, **kwargs)

    @staticmethod
    def _stage_grids(input_shape, patch_size, stages):
        """Each stage's map size; checks the image fits patches and merges."""
        if input_shape is None or len(tuple(input_shape)) != 3:
            return [None] * stages  # image_input raises the clear error
        height, width = input_shape[0], input_shape[1]
        divisor = patch_size * 2 ** (stages - 1)
        if height % divisor or width % divisor:
            raise ValueError(
                f"The image ({height}x{width}) must be divisible by "
                f"patch_size * 2**(stages - 1) = {divisor} for the patches "
                "and the merges between stages. Received: "
                f"input_shape={tuple(input_shape)}, patch_size={patch_size}"
            )
        grid = (height // patch_size, width // patch_size)
        return [(grid[0] >> s, grid[1] >> s) for s in range(stages)]

    @staticmethod
    def _spt_merging(x, stage, grids, width, norm_epsilon):
        """SL-Swin's merging: SPT pooling on the stage's tokens."""
        grid = grids[stage]
        x = keras.layers.Reshape(
            (grid[0] * grid[1], width), name=f"stage_{stage}_tokens"
        )(x)
        x = layers.ShiftedPatchTokenization(
            2,
            2 * width,
            token_grid=grid,
            norm_epsilon=norm_epsilon,
            name=f"stage_{stage}_spt",
        )(x)
        return keras.layers.Reshape(
            (*grids[stage + 1], 2 * width), name=f"stage_{stage}_map"
        )(x)


# The Swin of the small-dataset paper's official code at 32 pixels: three
# stages at patch 2 (16x16 -> 8x8 -> 4x4 maps), window 4, MLP ratio 2, and
# an absolute position embedding.
_SMALL_DATA = dict(
    input_shape=(32, 32, 3),
    patch_size=2,
    embed_dim=96,
    depths=(2, 6, 4),
    num_heads=(3, 6, 12),
    window_size=4,
    mlp_ratio=2.0,
    absolute_position_embedding=True,
    num_classes=10,
)

register_model(
    "swin_32px",
    SwinTransformer,
    "Swin for 32x32 images (CIFAR), the small-dataset paper's baseline",
    **_SMALL_DATA,
)
register_model(
    "sl_swin_32px",
    SwinTransformer,
    "SL-Swin (SPT tokens and merging + LSA) for 32x32 images (CIFAR)",
    tokenizer="spt",
    attention="lsa",
    merging="spt",
    **_SMALL_DATA,
)
_IMAGENET = dict(
    input_shape=(224, 224, 3), num_classes=1000, patch_size=4, window_size=7
)
for _size, (_dim, _depths, _heads) in {
    "tiny": (96, (2, 2, 6, 2), (3, 6, 12, 24)),
    "small": (96, (2, 2, 18, 2), (3, 6, 12, 24)),
    "base": (128, (2, 2, 18, 2), (4, 8, 16, 32)),
}.items():
    register_model(
        f"swin_{_size}",
        SwinTransformer,
        f"Swin-{_size[0].upper()} (patch 4, window 7), ImageNet 224x224",
        embed_dim=_dim,
        depths=_depths,
        num_heads=_heads,
        **_IMAGENET,
    )
