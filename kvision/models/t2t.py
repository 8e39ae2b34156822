"""Tokens-to-Token ViT, and the small-data SL-T2T (SPT + LSA)."""

import keras

from kvision import _checks
from kvision import layers
from kvision.layers.t2t import SinusoidalPositions
from kvision.models import base
from kvision.models import initialization
from kvision.models.registry import register_model


@keras.saving.register_keras_serializable(package="kvision")
class T2TViT(base.VisionModel):
    """T2T-ViT, and SL-T2T as the small-dataset paper trained it.

    References: Yuan et al., *Tokens-to-Token ViT: Training Vision
    Transformers from Scratch on ImageNet* (arXiv:2101.11986); Lee, Lee and
    Song, *Vision Transformer for Small-Size Datasets* (arXiv:2112.13492),
    Table 2, for the ``_32px`` variants.

    Layout: ``"tokens_to_token"`` (:class:`~kvision.layers.TokensToToken`:
    overlapping soft splits and token transformers instead of a patch
    embedding) → ``"class_token"`` → ``"position_embedding"`` (a frozen
    sine/cosine table by default) → dropout → pre-norm blocks ``"block_0"``
    … ``"block_{depth-1}"`` → ``"final_norm"`` → the class token →
    ``"head"``.

    Registered variants (parameters = trainable weights, with the variant's
    default ``num_classes``):

    | name | input | T2T rounds | width x depth | heads | classes | params |
    | --- | --- | --- | --- | --- | --- | --- |
    | ``t2t_32px`` | 32 | 1 | 256 x 12 | 4 x 64 | 10 | 6,486,080 |
    | ``sl_t2t_32px`` | 32 | SPT, 1 | 256 x 12 | 4 x 64 LSA | 10 | 6,507,081 |

    With 100 classes (CIFAR-100): 6,509,210 and 6,530,211, the counts of the
    SPT/LSA repository's code. Both use MLP width 512, no qkv bias, LayerNorm
    epsilon 1e-5 and a drop-path rate growing linearly over the blocks.

    **What the ``_32px`` variants reproduce.** The SPT/LSA repository merged
    T2T-ViT's files into one, where a second ``Attention`` class (the token
    transformer's) replaces the first: its blocks add the attention's input
    to its output, so each block computes ``x + DropPath(attn(LN(x)) +
    LN(x))`` (``attention_input_residual=True``; the official T2T-ViT:
    False). Its T2T module also creates a LayerNorm on the last soft split
    that it never applies: kvision applies it (``projection_norm=True``) so
    that the parameter count is the repository's; ``projection_norm=False``
    gives the exact function the paper measured, with 2 * 576 fewer
    parameters. SL-T2T shifts the image by one pixel diagonally before the
    first soft split (``shift_size=1``) and uses LSA in every attention,
    the token transformer's included.

    Args:
        input_shape: ``(height, width, channels)``; static. The model
            takes float images in [0, 1]: convert uint8 pixels with
            :func:`kvision.data.to_model_range`.
        embed_dim: int, token width.
        depth: int, number of transformer blocks.
        num_heads: int, attention heads per block.
        mlp_dim: int, hidden width of each block's MLP.
        head_dim: int or ``None`` for ``embed_dim // num_heads``.
        token_dim: int, width inside the T2T module.
        num_iterations: int, token-transformer rounds of the T2T module
            (1 at 32 px, 2 at 64 px in the SPT/LSA repository).
        shift_size: int or ``None``: SPT's shift before the first soft split
            (SL-T2T: 1).
        attention: ``"mhsa"`` or ``"lsa"``, in the blocks and in the T2T
            module.
        qkv_bias: bool, bias on the query/key/value projections.
        attention_input_residual: bool, see above.
        projection_norm: bool, see above.
        position_embedding: ``"sinusoidal"`` (frozen sine/cosine table, as
            both codes) or ``"learned"``.
        norm_epsilon: float, epsilon of every LayerNorm.
        dropout: float in [0, 1), dropout in blocks.
        embedding_dropout: float in [0, 1), dropout after the embeddings.
        drop_path_rate: float in [0, 1), stochastic depth.
        drop_path_schedule: ``"linear"`` (both codes) or ``"constant"``.
        include_top: bool, whether to end with the classifier.
        num_classes: int, classes of the classifier.
        pooling: headless output: ``None`` (all tokens), ``"avg"`` or
            ``"max"`` over tokens.
        classifier_activation: activation of the classifier (default
            ``None``: logits).
        weight_init: how kernels are drawn (see
            :mod:`kvision.models.initialization`): ``"trunc_normal"``
            (default; both T2T-ViT codes), ``"xavier_normal"``,
            ``"lecun_normal"``, ``"torch"`` or ``"keras"``.
        name: model name.

    Example:

    >>> from kvision.models import create_model
    >>> model = create_model("sl_t2t_32px", depth=2)
    >>> model.get_layer("tokens_to_token").output.shape
    (None, 64, 256)
    >>> sorted(model.attention_model().output)
    ['block_0', 'block_1']
    """

    def __init__(
        self,
        input_shape=(32, 32, 3),
        embed_dim=256,
        depth=12,
        num_heads=4,
        mlp_dim=512,
        head_dim=None,
        token_dim=64,
        num_iterations=1,
        shift_size=None,
        attention="mhsa",
        qkv_bias=False,
        attention_input_residual=False,
        projection_norm=False,
        position_embedding="sinusoidal",
        norm_epsilon=1e-5,
        dropout=0.0,
        embedding_dropout=0.0,
        drop_path_rate=0.0,
        drop_path_schedule="linear",
        include_top=True,
        num_classes=1000,
        pooling=None,
        classifier_activation=None,
        weight_init="trunc_normal",
        name="t2t_vit",
        **kwargs,
    ):
        config = base.constructor_arguments(locals())
        _checks.positive_int("depth", depth)
        _checks.one_of(
            "position_embedding",
            position_embedding,
            {"sinusoidal", "learned"},
        )
        base.check_head_arguments(include_top, num_classes, pooling)
        rates = base.drop_path_rates(drop_path_rate, depth, drop_path_schedule)

        inputs = base.image_input(input_shape)
        x = layers.TokensToToken(
            embed_dim,
            token_dim=token_dim,
            num_iterations=num_iterations,
            shift_size=shift_size,
            attention=attention,
            projection_norm=projection_norm,
            norm_epsilon=norm_epsilon,
            data_format="channels_last",
            name="tokens_to_token",
        )(inputs)
        x = layers.ClassToken(name="class_token")(x)
        if position_embedding == "sinusoidal":
            x = layers.PositionEmbedding(
                initializer=SinusoidalPositions(),
                trainable=False,
                name="position_embedding",
            )(x)
        else:
            x = layers.PositionEmbedding(name="position_embedding")(x)
        x = keras.layers.Dropout(embedding_dropout, name="embedding_dropout")(x)
        names = []
        for i, rate in enumerate(rates):
            names.append(f"block_{i}")
            x = layers.TransformerBlock(
                num_heads,
                mlp_dim,
                attention=attention,
                attention_input_residual=attention_input_residual,
                head_dim=head_dim,
                qkv_bias=qkv_bias,
                dropout=dropout,
                drop_path_rate=rate,
                norm_epsilon=norm_epsilon,
                name=names[-1],
            )(x)
        outputs = base.class_token_output(
            x,
            norm_epsilon,
            include_top,
            num_classes,
            classifier_activation,
            pooling,
        )
        self._build(inputs, outputs, config, names, name, **kwargs)
        initialization.initialize_weights(self, weight_init)


# The SPT/LSA repository's T2T-ViT for 32x32 images: one T2T round of
# width 64, width 256, depth 12, 4 heads, MLP ratio 2, no qkv bias, PyTorch's
# LayerNorm epsilon, and its departures from the official code (see the
# class docstring).
_SMALL_DATA = dict(
    input_shape=(32, 32, 3),
    embed_dim=256,
    depth=12,
    num_heads=4,
    mlp_dim=512,
    token_dim=64,
    num_iterations=1,
    qkv_bias=False,
    attention_input_residual=True,
    projection_norm=True,
    norm_epsilon=1e-5,
    drop_path_schedule="linear",
    num_classes=10,
)

register_model(
    "t2t_32px",
    T2TViT,
    "T2T-ViT for 32x32 images (CIFAR), as the small-dataset paper trained it",
    **_SMALL_DATA,
)
register_model(
    "sl_t2t_32px",
    T2TViT,
    "SL-T2T (SPT + LSA) for 32x32 images (CIFAR)",
    **_SMALL_DATA,
    shift_size=1,
    attention="lsa",
)
