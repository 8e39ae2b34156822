"""One small, fast configuration of every public layer, for shared checks.

A new public layer must get a case here: ``test_every_public_layer_has_a_case``
fails otherwise.
"""

import dataclasses

from kvision import layers


@dataclasses.dataclass(frozen=True)
class LayerCase:
    id: str
    cls: type
    kwargs: dict
    input_shape: tuple  # without the batch axis
    returns_scores: bool = False

    def make(self, **overrides):
        return self.cls(**{**self.kwargs, **overrides})


CASES = [
    LayerCase(
        "patch_embedding",
        layers.PatchEmbedding,
        dict(patch_size=4, embed_dim=16),
        (8, 8, 3),
    ),
    LayerCase(
        "patch_embedding_nchw",
        layers.PatchEmbedding,
        dict(patch_size=2, embed_dim=8, data_format="channels_first"),
        (3, 4, 6),
    ),
    LayerCase(
        "spt",
        layers.ShiftedPatchTokenization,
        dict(patch_size=4, embed_dim=16),
        (8, 8, 3),
    ),
    LayerCase(
        "spt_cardinal",
        layers.ShiftedPatchTokenization,
        dict(patch_size=2, embed_dim=8, shift_size=1, directions="cardinal"),
        (4, 6, 3),
    ),
    LayerCase(
        "spt_pool_cls",
        layers.ShiftedPatchTokenization,
        dict(patch_size=2, embed_dim=16, has_class_token=True),
        (17, 8),
    ),
    LayerCase(
        "spt_pool_grid",
        layers.ShiftedPatchTokenization,
        dict(patch_size=2, embed_dim=16, token_grid=(2, 4)),
        (8, 8),
    ),
    LayerCase("class_token", layers.ClassToken, {}, (4, 8)),
    LayerCase("position_embedding", layers.PositionEmbedding, {}, (5, 8)),
    LayerCase(
        "mhsa",
        layers.MultiHeadSelfAttention,
        dict(num_heads=2),
        (5, 8),
        returns_scores=True,
    ),
    LayerCase(
        "lsa",
        layers.LocalitySelfAttention,
        dict(num_heads=2, head_dim=3, attention_dropout=0.1),
        (5, 8),
        returns_scores=True,
    ),
    LayerCase(
        "mlp",
        layers.MLP,
        dict(hidden_dim=16, output_dim=4, dropout=0.1),
        (5, 8),
    ),
    LayerCase(
        "transformer_mhsa",
        layers.TransformerBlock,
        dict(
            num_heads=2,
            mlp_dim=16,
            drop_path_rate=0.1,
            layer_scale_init_value=0.1,
        ),
        (5, 8),
        returns_scores=True,
    ),
    LayerCase(
        "transformer_lsa",
        layers.TransformerBlock,
        dict(num_heads=2, mlp_dim=16, attention="lsa", dropout=0.1),
        (5, 8),
        returns_scores=True,
    ),
    LayerCase(
        "mixer_block",
        layers.MixerBlock,
        dict(tokens_mlp_dim=6, channels_mlp_dim=16, drop_path_rate=0.1),
        (4, 8),
    ),
    LayerCase(
        "convmixer_stem",
        layers.ConvMixerStem,
        dict(filters=8, patch_size=2),
        (8, 8, 3),
    ),
    LayerCase(
        "convmixer_block", layers.ConvMixerBlock, dict(kernel_size=3), (4, 4, 8)
    ),
    LayerCase(
        "convmixer_block_nchw",
        layers.ConvMixerBlock,
        dict(kernel_size=3, activation="relu", data_format="channels_first"),
        (8, 4, 4),
    ),
    LayerCase(
        "convnext_stem",
        layers.ConvNeXtStem,
        dict(filters=8, patch_size=2),
        (8, 8, 3),
    ),
    LayerCase(
        "depthwise_conv2d_shifted",
        layers.DepthwiseConv2D,
        dict(kernel_size=(3, 3), padding="same", implementation="shifted"),
        (5, 6, 4),
    ),
    LayerCase(
        "depthwise_conv2d_native",
        layers.DepthwiseConv2D,
        dict(kernel_size=(2, 3), activation="gelu"),
        (5, 6, 4),
    ),
    LayerCase(
        "convnext_block",
        layers.ConvNeXtBlock,
        dict(drop_path_rate=0.1),
        (4, 4, 8),
    ),
    LayerCase(
        "convnext_block_nchw",
        layers.ConvNeXtBlock,
        dict(kernel_size=3, data_format="channels_first"),
        (8, 4, 4),
    ),
    LayerCase(
        "convnext_downsampling",
        layers.ConvNeXtDownsampling,
        dict(filters=16),
        (4, 4, 8),
    ),
    LayerCase("drop_path", layers.DropPath, dict(rate=0.2, seed=3), (4, 8)),
    LayerCase("layer_scale", layers.LayerScale, dict(init_value=0.1), (4, 8)),
]

CASE_IDS = [case.id for case in CASES]
