"""Vision Transformers: ViT and the small-dataset SL-ViT (SPT + LSA)."""

import keras

from kvision import _checks
from kvision import layers
from kvision.models import base
from kvision.models import initialization
from kvision.models.registry import register_model


@keras.saving.register_keras_serializable(package="kvision")
class VisionTransformer(base.VisionModel):
    """Vision Transformer, optionally with SPT and LSA (SL-ViT).

    References: Dosovitskiy et al., *An Image is Worth 16x16 Words*
    (arXiv:2010.11929); Lee, Lee and Song, *Vision Transformer for Small-Size
    Datasets* (arXiv:2112.13492) for ``tokenizer="spt"`` and
    ``attention="lsa"``.

    Layout: tokenizer (``"patch_embedding"`` or ``"spt"``) →
    ``"class_token"`` → ``"position_embedding"`` → dropout → pre-norm
    blocks ``"block_0"`` … ``"block_{depth-1}"`` → ``"final_norm"`` → the
    class token → ``"head"``. The official small-data ViT normalises only the
    class token in its head; normalising all tokens gives the same logits
    and the same parameters, and lets ``include_top=False`` return normalised
    tokens.

    Registered variants (parameters = trainable weights, with the variant's
    default ``num_classes``):

    | name | input | tokens | width x depth | heads | classes | params |
    | --- | --- | --- | --- | --- | --- | --- |
    | ``vit_32px`` | 32 | patch 4 | 192 x 9 | 12 x 16 | 10 | 2,692,426 |
    | ``sl_vit_32px`` | 32 | SPT 4 | 192 x 9 | 12 x 16 LSA | 10 | 2,729,878 |
    | ``vit_64px`` | 64 | patch 8 | 192 x 9 | 12 x 16 | 200 | 2,756,744 |
    | ``sl_vit_64px`` | 64 | SPT 8 | 192 x 9 | 12 x 16 LSA | 200 | 2,906,228 |
    | ``vit_b16`` | 224 | patch 16 | 768 x 12 | 12 x 64 | 1000 | 86,567,656 |

    The small-data variants use MLP width 384 (ratio 2), no qkv bias and
    LayerNorm epsilon 1e-5, as the official code; ViT-B/16 uses MLP width
    3072, qkv bias and epsilon 1e-6 (timm's ``vit_base_patch16_224``).

    Args:
        input_shape: ``(height, width, channels)``; static. The model
            takes float images in [0, 1]: convert uint8 pixels with
            :func:`kvision.data.to_model_range`.
        patch_size: int, patch side; divides height and width.
        embed_dim: int, token width.
        depth: int, number of transformer blocks.
        num_heads: int, attention heads per block.
        mlp_dim: int, hidden width of each block's MLP.
        head_dim: int or ``None`` for ``embed_dim // num_heads``.
        tokenizer: ``"patch"`` (:class:`~kvision.layers.PatchEmbedding`) or
            ``"spt"`` (:class:`~kvision.layers.ShiftedPatchTokenization`).
        attention: ``"mhsa"`` or ``"lsa"``.
        qkv_bias: bool, bias on the query/key/value projection.
        norm_epsilon: float, epsilon of every LayerNorm.
        dropout: float in [0, 1), dropout in blocks.
        embedding_dropout: float in [0, 1), dropout after the embeddings.
        drop_path_rate: float in [0, 1), stochastic depth.
        drop_path_schedule: ``"linear"`` (0 → rate over the blocks) or
            ``"constant"`` (the official small-data code).
        include_top: bool, whether to end with the classifier.
        num_classes: int, classes of the classifier.
        pooling: headless output: ``None`` (all tokens), ``"avg"`` or
            ``"max"`` over tokens.
        classifier_activation: activation of the classifier (default
            ``None``: logits).
        weight_init: how kernels are drawn (see
            :mod:`kvision.models.initialization`): ``"trunc_normal"``
            (default, timm's ViT) or ``"xavier_normal"`` (the official
            SL-ViT code, which also draws the class token and position
            embedding from a standard normal; the registered small-data
            variants use it), ``"lecun_normal"``, ``"torch"`` or
            ``"keras"``.
        zero_head: bool, start the classifier at zero (Google's ViT code).
        name: model name.

    Example:

    >>> from kvision.models import create_model
    >>> model = create_model("sl_vit_32px", depth=2)
    >>> attention = model.attention_model()
    >>> sorted(attention.output)
    ['block_0', 'block_1']
    """

    def __init__(
        self,
        input_shape=(224, 224, 3),
        patch_size=16,
        embed_dim=768,
        depth=12,
        num_heads=12,
        mlp_dim=3072,
        head_dim=None,
        tokenizer="patch",
        attention="mhsa",
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
        weight_init="trunc_normal",
        zero_head=False,
        name="vision_transformer",
        **kwargs,
    ):
        config = base.constructor_arguments(locals())
        _checks.positive_int("depth", depth)
        _checks.one_of("tokenizer", tokenizer, {"patch", "spt"})
        base.check_head_arguments(include_top, num_classes, pooling)
        rates = base.drop_path_rates(drop_path_rate, depth, drop_path_schedule)

        inputs = base.image_input(input_shape)
        x = base.patch_tokens(
            inputs, tokenizer, patch_size, embed_dim, norm_epsilon
        )
        token_init = base.token_initializer(weight_init)
        x = layers.ClassToken(initializer=token_init, name="class_token")(x)
        x = layers.PositionEmbedding(
            initializer=token_init, name="position_embedding"
        )(x)
        x = keras.layers.Dropout(embedding_dropout, name="embedding_dropout")(x)
        names = []
        for i, rate in enumerate(rates):
            names.append(f"block_{i}")
            x = layers.TransformerBlock(
                num_heads,
                mlp_dim,
                attention=attention,
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
        initialization.initialize_weights(
            self, weight_init, zero_head=zero_head and include_top
        )


# The official small-dataset configuration (arXiv:2112.13492, Section 4.1):
# width 192, depth 9, 12 heads of 16, MLP ratio 2, no qkv bias, PyTorch's
# LayerNorm epsilon, one stochastic-depth rate for every block, and its
# initialisation (xavier-normal kernels, std-1 class token and position
# embedding).
_SMALL_DATA = dict(
    embed_dim=192,
    depth=9,
    num_heads=12,
    head_dim=16,
    mlp_dim=384,
    qkv_bias=False,
    norm_epsilon=1e-5,
    drop_path_schedule="constant",
    weight_init="xavier_normal",
)
_SPT_LSA = dict(tokenizer="spt", attention="lsa")
_CIFAR = dict(input_shape=(32, 32, 3), patch_size=4, num_classes=10)
_TINY_IMAGENET = dict(input_shape=(64, 64, 3), patch_size=8, num_classes=200)

register_model(
    "vit_32px",
    VisionTransformer,
    "ViT for 32x32 images (CIFAR), the small-dataset paper's baseline",
    **_SMALL_DATA,
    **_CIFAR,
)
register_model(
    "sl_vit_32px",
    VisionTransformer,
    "SL-ViT (SPT + LSA) for 32x32 images (CIFAR)",
    **_SMALL_DATA,
    **_SPT_LSA,
    **_CIFAR,
)
register_model(
    "vit_64px",
    VisionTransformer,
    "ViT for 64x64 images (Tiny-ImageNet), the paper's baseline",
    **_SMALL_DATA,
    **_TINY_IMAGENET,
)
register_model(
    "sl_vit_64px",
    VisionTransformer,
    "SL-ViT (SPT + LSA) for 64x64 images (Tiny-ImageNet)",
    **_SMALL_DATA,
    **_SPT_LSA,
    **_TINY_IMAGENET,
)
register_model(
    "vit_b16",
    VisionTransformer,
    "ViT-B/16 for 224x224 ImageNet",
    input_shape=(224, 224, 3),
    patch_size=16,
    embed_dim=768,
    depth=12,
    num_heads=12,
    mlp_dim=3072,
    num_classes=1000,
)
