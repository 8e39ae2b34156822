"""One small, fast configuration of every public layer, for shared checks.

A new public layer must get a case here: ``test_every_public_layer_has_a_case``
fails otherwise.
"""

import dataclasses

import keras

from kvision import layers


@dataclasses.dataclass(frozen=True)
class LayerCase:
    id: str
    cls: type
    kwargs: dict
    input_shape: tuple  # without the batch axis
    returns_scores: bool = False
    # Scores shape without the batch axis, for layers whose scores are not
    # (heads, N, N) over the input tokens (e.g. windowed attention).
    scores_shape: tuple = None

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
    LayerCase(
        "talking_heads_spt_lsa",
        layers.TalkingHeadsAttention,
        dict(
            num_heads=2,
            head_dim=3,
            qkv_bias=False,
            talking_heads="matrix",
            attention="lsa",
            diagonal_mask="official_spt",
        ),
        (5, 8),
        returns_scores=True,
    ),
    LayerCase(
        "class_attention_spt",
        layers.ClassAttention,
        dict(
            num_heads=2,
            head_dim=3,
            qkv_bias=False,
            key_tokens="patches",
            talking_heads="matrix",
            attention="lsa",
            attention_dropout=0.1,
        ),
        (5, 8),
        returns_scores=True,
        scores_shape=(2, 1, 4),
    ),
    LayerCase(
        "class_attention_block",
        layers.ClassAttentionBlock,
        dict(num_heads=2, mlp_dim=16, drop_path_rate=0.1),
        (5, 8),
        returns_scores=True,
        scores_shape=(2, 1, 5),
    ),
    LayerCase(
        "transformer_talking_heads",
        layers.TransformerBlock,
        dict(
            num_heads=2,
            mlp_dim=16,
            attention="talking_heads",
            attention_input_residual=True,
            layer_scale_init_value=0.1,
            dropout=0.1,
        ),
        (5, 8),
        returns_scores=True,
    ),
    LayerCase(
        "tokens_to_token_spt_lsa",
        layers.TokensToToken,
        dict(
            embed_dim=8,
            token_dim=4,
            num_heads=2,
            mlp_ratio=2.0,
            shift_size=1,
            attention="lsa",
            qkv_bias=True,
            projection_norm=True,
        ),
        (8, 6, 3),
    ),
    LayerCase("pooling_mixer", layers.PoolingMixer, {}, (5, 6, 4)),
    LayerCase(
        "metaformer_pooling",
        layers.MetaFormerBlock,
        dict(drop_path_rate=0.1, seed=1),
        (4, 5, 8),
    ),
    LayerCase(
        "metaformer_attention",
        layers.MetaFormerBlock,
        dict(token_mixer="attention", num_heads=2, mlp_ratio=2),
        (4, 5, 8),
        returns_scores=True,
        scores_shape=(2, 20, 20),
    ),
    LayerCase(
        "metaformer_spatial_mlp",
        layers.MetaFormerBlock,
        dict(token_mixer="spatial_mlp", tokens_mlp_dim=6, dropout=0.1),
        (4, 5, 8),
    ),
    LayerCase(
        "metaformer_depthwise_conv_ln",
        layers.MetaFormerBlock,
        dict(token_mixer="depthwise_conv", kernel_size=3, norm="layer"),
        (4, 5, 8),
    ),
    LayerCase(
        "metaformer_identity",
        layers.MetaFormerBlock,
        dict(token_mixer="identity", layer_scale_init_value=None),
        (4, 5, 8),
    ),
    LayerCase(
        "metaformer_custom_mixer",
        layers.MetaFormerBlock,
        dict(
            token_mixer=keras.saving.serialize_keras_object(
                keras.layers.Conv2D(
                    8, 3, padding="same", data_format="channels_last"
                )
            )
        ),
        (4, 5, 8),
    ),
    LayerCase(
        "window_attention",
        layers.WindowAttention,
        dict(num_heads=2, window_size=2),
        (4, 4, 8),
        returns_scores=True,
        scores_shape=(4, 2, 4, 4),
    ),
    LayerCase(
        "window_attention_shifted_lsa",
        layers.WindowAttention,
        dict(
            num_heads=2,
            window_size=2,
            shift_size=1,
            head_dim=3,
            attention="lsa",
            attention_dropout=0.1,
        ),
        (4, 4, 8),
        returns_scores=True,
        scores_shape=(4, 2, 4, 4),
    ),
    LayerCase(
        "window_attention_padded",
        layers.WindowAttention,
        dict(
            num_heads=2,
            window_size=2,
            relative_position_bias=False,
            pad_to_window=True,
            dropout=0.1,
        ),
        (3, 5, 8),
        returns_scores=True,
        scores_shape=(6, 2, 4, 4),
    ),
    LayerCase("patch_merging", layers.PatchMerging, {}, (4, 6, 8)),
    LayerCase(
        "swin_block_shifted",
        layers.SwinBlock,
        dict(
            num_heads=2,
            window_size=2,
            shift_size=1,
            mlp_ratio=2,
            drop_path_rate=0.1,
        ),
        (4, 4, 8),
        returns_scores=True,
        scores_shape=(4, 2, 4, 4),
    ),
    LayerCase(
        "swin_block_lsa",
        layers.SwinBlock,
        dict(num_heads=2, window_size=2, attention="lsa", dropout=0.1),
        (2, 4, 8),
        returns_scores=True,
        scores_shape=(2, 2, 4, 4),
    ),
    LayerCase("pit_pooling", layers.PiTPooling, {}, (1 + 5 * 5, 8)),
    LayerCase(
        "pit_pooling_pointwise_grid",
        layers.PiTPooling,
        dict(pointwise=True, num_class_tokens=2, token_grid=(2, 4)),
        (2 + 2 * 4, 8),
    ),
    LayerCase(
        # On tokens; davit_channel_block runs it on maps.
        "channel_group_attention",
        layers.ChannelGroupAttention,
        dict(num_groups=4, qkv_bias=False, attention_dropout=0.1, dropout=0.1),
        (5, 8),
        returns_scores=True,
        scores_shape=(4, 2, 2),
    ),
    LayerCase(
        "conv_position_encoding",
        layers.ConvPositionEncoding,
        dict(kernel_size=3),
        (4, 5, 8),
    ),
    LayerCase(
        # A 3x5 map in 2x2 windows: padded to 4x6, six windows.
        "davit_spatial_block",
        layers.DaViTSpatialBlock,
        dict(num_heads=2, window_size=2, mlp_ratio=2, drop_path_rate=0.1),
        (3, 5, 8),
        returns_scores=True,
        scores_shape=(6, 2, 4, 4),
    ),
    LayerCase(
        "davit_channel_block",
        layers.DaViTChannelBlock,
        dict(num_groups=2, mlp_ratio=1.5, qkv_bias=False, drop_path_rate=0.1),
        (3, 5, 8),
        returns_scores=True,
        scores_shape=(2, 4, 4),
    ),
]

CASE_IDS = [case.id for case in CASES]
