"""Wrong arguments and inputs fail early, naming the argument and value."""

import re

import keras
import pytest

from kvision import layers as L


def build(layer, shape):
    """Calls the layer on a symbolic input (``None`` batch) of ``shape``."""
    layer(keras.Input(batch_shape=(None, *shape)))


CONSTRUCTION = [
    # non-positive or non-integer sizes
    (lambda: L.PatchEmbedding(0, 8), "patch_size=0"),
    (lambda: L.PatchEmbedding(4, -1), "embed_dim=-1"),
    (lambda: L.PatchEmbedding(4.0, 8), "patch_size=4.0"),
    (lambda: L.ShiftedPatchTokenization(4, 0), "embed_dim=0"),
    (lambda: L.ShiftedPatchTokenization(True, 8), "patch_size=True"),
    (lambda: L.MultiHeadSelfAttention(0), "num_heads=0"),
    (lambda: L.LocalitySelfAttention(2, head_dim=0), "head_dim=0"),
    (lambda: L.MLP(0), "hidden_dim=0"),
    (lambda: L.MLP(8, output_dim=-3), "output_dim=-3"),
    (lambda: L.TransformerBlock(2, 0), "mlp_dim=0"),
    (lambda: L.MixerBlock(0, 8), "tokens_mlp_dim=0"),
    (lambda: L.MixerBlock(8, -8), "channels_mlp_dim=-8"),
    (lambda: L.ConvMixerBlock(0), "kernel_size=0"),
    (lambda: L.ConvMixerStem(0, 2), "filters=0"),
    (lambda: L.ConvMixerStem(8, 0), "patch_size=0"),
    (lambda: L.ConvNeXtBlock(kernel_size=-7), "kernel_size=-7"),
    (lambda: L.ConvNeXtBlock(mlp_ratio=0), "mlp_ratio=0"),
    (lambda: L.ConvNeXtStem(0), "filters=0"),
    (lambda: L.ConvNeXtDownsampling(0), "filters=0"),
    # rates outside [0, 1)
    (lambda: L.DropPath(1.0), "rate=1.0"),
    (lambda: L.DropPath(-0.1), "rate=-0.1"),
    (lambda: L.TransformerBlock(2, 8, drop_path_rate=1.0), "drop_path_rate"),
    (lambda: L.MixerBlock(8, 8, drop_path_rate=-0.5), "drop_path_rate=-0.5"),
    (lambda: L.ConvNeXtBlock(drop_path_rate=1.5), "drop_path_rate=1.5"),
    (lambda: L.MLP(8, dropout=1.2), "dropout=1.2"),
    (lambda: L.MultiHeadSelfAttention(2, attention_dropout=2), "dropout=2"),
    # unsupported choices
    (lambda: L.PatchEmbedding(4, 8, data_format="NHWC"), "data_format='NHWC'"),
    (lambda: L.ConvMixerBlock(3, data_format="nchw"), "data_format='nchw'"),
    (lambda: L.ConvNeXtBlock(data_format="channels"), "data_format="),
    (lambda: L.ConvNeXtStem(8, data_format=1), "data_format=1"),
    (
        lambda: L.TransformerBlock(2, 8, attention="linear"),
        "attention='linear'",
    ),
    (lambda: L.ShiftedPatchTokenization(4, 8, directions="up"), "directions"),
    (lambda: L.ShiftedPatchTokenization(4, 8, shift_size=0), "shift_size=0"),
    (lambda: L.ShiftedPatchTokenization(1, 8), "patch_size=1"),
    (lambda: L.ShiftedPatchTokenization(2, 8, token_grid=(4,)), "token_grid"),
    (lambda: L.LayerScale("small"), "init_value='small'"),
    (
        lambda: L.DepthwiseConv2D(3, implementation="fft"),
        "implementation='fft'",
    ),
    (
        lambda: L.DepthwiseConv2D(3, dilation_rate=2, implementation="shifted"),
        "dilation_rate=(2, 2)",
    ),
    # MetaFormer
    (lambda: L.PoolingMixer(4), "pool_size=4"),
    (lambda: L.PoolingMixer(0), "pool_size=0"),
    (lambda: L.MetaFormerBlock("conv"), "token_mixer='conv'"),
    (lambda: L.MetaFormerBlock(norm="batch"), "norm='batch'"),
    (lambda: L.MetaFormerBlock(pool_size=2), "pool_size=2"),
    (lambda: L.MetaFormerBlock(mlp_ratio=0), "mlp_ratio=0"),
    (lambda: L.MetaFormerBlock(num_heads=0), "num_heads=0"),
    (lambda: L.MetaFormerBlock(tokens_mlp_dim=-2), "tokens_mlp_dim=-2"),
    (lambda: L.MetaFormerBlock(drop_path_rate=1.0), "drop_path_rate=1.0"),
    (
        lambda: L.MetaFormerBlock(layer_scale_init_value=-1),
        "layer_scale_init_value=-1",
    ),
    # windowed attention
    (lambda: L.WindowAttention(2, 0), "window_size=0"),
    (lambda: L.WindowAttention(2, 4, shift_size=4), "shift_size=4"),
    (lambda: L.WindowAttention(2, 4, shift_size=-1), "shift_size=-1"),
    (lambda: L.WindowAttention(2, 4, attention="gqa"), "attention='gqa'"),
    (lambda: L.WindowAttention(2, 1, attention="lsa"), "window_size=1"),
    (lambda: L.SwinBlock(2, 4, shift_size=5), "shift_size=5"),
    (lambda: L.SwinBlock(2, 4, mlp_ratio=0), "mlp_ratio=0"),
    (lambda: L.SwinBlock(2, 4, drop_path_rate=1.0), "drop_path_rate=1.0"),
    (lambda: L.PatchMerging(norm_epsilon=-1), "norm_epsilon=-1"),
    (lambda: L.PiTPooling(depth_multiplier=0), "depth_multiplier=0"),
    (lambda: L.PiTPooling(num_class_tokens=-1), "num_class_tokens=-1"),
    (lambda: L.PiTPooling(token_grid=(2, 2, 2)), "token_grid=(2, 2, 2)"),
    # DaViT
    (lambda: L.ChannelGroupAttention(0), "num_groups=0"),
    (lambda: L.ChannelGroupAttention(2, dropout=1.0), "dropout=1.0"),
    (lambda: L.ConvPositionEncoding(4), "kernel_size=4"),
    (lambda: L.ConvPositionEncoding(0), "kernel_size=0"),
    (lambda: L.DaViTSpatialBlock(2, window_size=0), "window_size=0"),
    (lambda: L.DaViTSpatialBlock(0), "num_heads=0"),
    (lambda: L.DaViTChannelBlock(2, mlp_ratio=0), "mlp_ratio=0"),
    (lambda: L.DaViTChannelBlock(2, mlp_ratio="4"), "mlp_ratio='4'"),
    (lambda: L.DaViTChannelBlock(-1), "num_groups=-1"),
    (
        lambda: L.DaViTChannelBlock(2, drop_path_rate=1.0),
        "drop_path_rate=1.0",
    ),
    # CaiT and T2T
    (lambda: L.TalkingHeadsAttention(0), "num_heads=0"),
    (lambda: L.TalkingHeadsAttention(2, talking_heads="full"), "='full'"),
    (lambda: L.TalkingHeadsAttention(2, talking_heads=None), "=None"),
    (lambda: L.TalkingHeadsAttention(2, diagonal_mask="soft"), "='soft'"),
    (lambda: L.TalkingHeadsAttention(2, attention="gqa"), "attention='gqa'"),
    (lambda: L.ClassAttention(-1), "num_heads=-1"),
    (lambda: L.ClassAttention(2, key_tokens="cls"), "key_tokens='cls'"),
    (lambda: L.ClassAttention(2, talking_heads="x"), "talking_heads='x'"),
    (lambda: L.ClassAttentionBlock(2, 0), "mlp_dim=0"),
    (
        lambda: L.ClassAttentionBlock(2, 8, layer_scale_init_value=-1),
        "layer_scale_init_value=-1",
    ),
    (
        lambda: L.TransformerBlock(2, 8, attention_kwargs=[1]),
        "attention_kwargs=[1]",
    ),
    (
        lambda: L.TransformerBlock(
            2, 8, attention="talking_heads", attention_kwargs={"num_heads": 4}
        ),
        "attention_kwargs={'num_heads': 4}",
    ),
    (lambda: L.TokensToToken(0), "embed_dim=0"),
    (lambda: L.TokensToToken(8, num_iterations=0), "num_iterations=0"),
    (lambda: L.TokensToToken(8, token_dim=6, num_heads=4), "num_heads=4"),
    (lambda: L.TokensToToken(8, mlp_ratio=0), "mlp_ratio=0"),
    (lambda: L.TokensToToken(8, padding=-1), "padding=-1"),
    (lambda: L.TokensToToken(8, shift_size=0), "shift_size=0"),
    (lambda: L.TokensToToken(8, attention="mhsa2"), "attention='mhsa2'"),
]


@pytest.mark.parametrize("make, message", CONSTRUCTION)
def test_bad_arguments_fail_at_construction(make, message):
    with pytest.raises(ValueError, match=_literal(message)):
        make()


BUILD = [
    # image size not divisible by patch_size
    (lambda: L.PatchEmbedding(5, 8), (32, 32, 3), "patch_size=5"),
    (lambda: L.ShiftedPatchTokenization(3, 8), (32, 32, 3), "patch_size=3"),
    (lambda: L.ConvMixerStem(8, 3), (32, 30, 3), "patch_size=3"),
    (lambda: L.ConvNeXtStem(8, 3), (32, 32, 3), "patch_size=3"),
    (lambda: L.ShiftedPatchTokenization(2, 8), (9, 4), "patch_size=2"),
    # token grids SPT pooling cannot use
    (lambda: L.ShiftedPatchTokenization(2, 8), (10, 4), "token_grid"),
    (
        lambda: L.ShiftedPatchTokenization(2, 8, token_grid=(2, 4)),
        (9, 4),
        "token_grid",
    ),
    (
        lambda: L.ShiftedPatchTokenization(2, 8, has_class_token=True),
        (8, 8, 3),
        "has_class_token=True",
    ),
    # embed_dim not divisible by num_heads
    (lambda: L.MultiHeadSelfAttention(5), (4, 8), "num_heads=5"),
    (lambda: L.LocalitySelfAttention(3), (4, 8), "num_heads=3"),
    (lambda: L.TransformerBlock(3, 8), (4, 8), "num_heads=3"),
    # LSA masks the diagonal: a single token would attend to nothing
    (lambda: L.LocalitySelfAttention(2), (1, 8), "input_shape=(None, 1, 8)"),
    # wrong input rank
    (lambda: L.PatchEmbedding(4, 8), (8, 3), "input_shape=(None, 8, 3)"),
    (lambda: L.ShiftedPatchTokenization(4, 8), (8,), "input_shape=(None, 8)"),
    (lambda: L.MultiHeadSelfAttention(2), (4, 4, 8), "input_shape="),
    (lambda: L.TransformerBlock(2, 8), (4, 4, 8), "input_shape="),
    (lambda: L.MixerBlock(4, 4), (4, 4, 8), "input_shape="),
    (lambda: L.ConvMixerBlock(3), (4, 8), "input_shape=(None, 4, 8)"),
    (lambda: L.ConvMixerStem(8, 2), (4, 8), "input_shape="),
    (lambda: L.ConvNeXtBlock(), (4, 8), "input_shape=(None, 4, 8)"),
    (lambda: L.ConvNeXtStem(8), (4, 8), "input_shape="),
    (lambda: L.ConvNeXtDownsampling(8), (16,), "input_shape="),
    (lambda: L.ClassToken(), (8,), "input_shape=(None, 8)"),
    (lambda: L.PositionEmbedding(), (2, 4, 8), "input_shape="),
    (lambda: L.MLP(8), (), "input_shape=(None,)"),
    # unknown sizes where a static one is needed
    (lambda: L.PatchEmbedding(4, 8), (None, None, 3), "image size"),
    (lambda: L.ShiftedPatchTokenization(4, 8), (None, 32, 3), "image size"),
    (lambda: L.ShiftedPatchTokenization(2, 8), (None, 8), "token count"),
    (lambda: L.ConvMixerStem(8, 2), (None, None, 3), "image size"),
    (lambda: L.ConvNeXtStem(8), (None, 32, 3), "image size"),
    (lambda: L.ConvMixerBlock(3), (8, 8, None), "channel dimension"),
    (lambda: L.PositionEmbedding(), (None, 8), "token count"),
    (lambda: L.LocalitySelfAttention(2), (None, 8), "number of tokens"),
    (lambda: L.MixerBlock(4, 4), (None, 8), "token count"),
    (lambda: L.MultiHeadSelfAttention(2), (4, None), "channel dimension"),
    (lambda: L.ConvNeXtDownsampling(8), (1, 8, 4), "height and width >= 2"),
    # MetaFormer: static image sizes, divisible heads, shape-keeping mixers
    (lambda: L.PoolingMixer(), (None, None, 4), "image size"),
    (lambda: L.PoolingMixer(), (4, 8), "input_shape=(None, 4, 8)"),
    (lambda: L.MetaFormerBlock(), (4, 8), "input_shape=(None, 4, 8)"),
    (lambda: L.MetaFormerBlock("spatial_mlp"), (None, 4, 8), "image size"),
    (lambda: L.MetaFormerBlock("attention", num_heads=3), (4, 4, 8), "=3"),
    (
        lambda: L.MetaFormerBlock(keras.layers.Dense(4)),
        (4, 4, 8),
        "token_mixer=Dense",
    ),
    # windows that do not tile the map, and maps it cannot window
    (lambda: L.WindowAttention(2, 4), (8, 6, 8), "window_size=4"),
    (lambda: L.WindowAttention(3, 2), (4, 4, 8), "num_heads=3"),
    (lambda: L.WindowAttention(2, 2), (4, 8), "input_shape=(None, 4, 8)"),
    (lambda: L.WindowAttention(2, 2), (None, 4, 8), "map size"),
    (lambda: L.SwinBlock(2, 4), (8, 6, 8), "window_size=4"),
    (lambda: L.SwinBlock(2, 2), (4, 8), "input_shape=(None, 4, 8)"),
    # odd maps cannot be merged 2x2; token counts PiT cannot put on a grid
    (lambda: L.PatchMerging(), (4, 5, 8), "input_shape=(None, 4, 5, 8)"),
    (lambda: L.PatchMerging(), (16, 8), "input_shape=(None, 16, 8)"),
    (lambda: L.PiTPooling(), (11, 8), "token_grid"),
    (lambda: L.PiTPooling(token_grid=(2, 3)), (10, 8), "token_grid"),
    (lambda: L.PiTPooling(), (4, 4, 8), "input_shape=(None, 4, 4, 8)"),
    (lambda: L.PiTPooling(stride=3), (2, 8), "stride=3"),
    # DaViT: channels divisible by groups / heads, maps with static sizes
    (lambda: L.ChannelGroupAttention(3), (4, 8), "num_groups=3"),
    (lambda: L.ChannelGroupAttention(3), (2, 2, 8), "channels=8"),
    (lambda: L.ChannelGroupAttention(2), (8,), "input_shape=(None, 8)"),
    (lambda: L.ChannelGroupAttention(2), (4, None), "channel dimension"),
    (lambda: L.ConvPositionEncoding(), (4, 8), "input_shape=(None, 4, 8)"),
    (lambda: L.DaViTChannelBlock(3), (4, 4, 8), "num_groups=3"),
    (lambda: L.DaViTSpatialBlock(3), (4, 4, 8), "num_heads=3"),
    (lambda: L.DaViTSpatialBlock(2), (16, 8), "input_shape=(None, 16, 8)"),
    (lambda: L.DaViTChannelBlock(2), (None, 4, 8), "map size"),
    # CaiT: divisible heads, enough tokens for the mask and for the keys
    (lambda: L.TalkingHeadsAttention(3), (4, 8), "num_heads=3"),
    (
        lambda: L.TalkingHeadsAttention(2, attention="lsa"),
        (1, 8),
        "input_shape=(None, 1, 8)",
    ),
    (
        lambda: L.TalkingHeadsAttention(2, diagonal_mask="official_spt"),
        (None, 8),
        "number of tokens",
    ),
    (
        lambda: L.ClassAttention(2, key_tokens="patches"),
        (1, 8),
        "input_shape=(None, 1, 8)",
    ),
    (lambda: L.ClassAttention(2), (4, 4, 8), "input_shape=(None, 4, 4, 8)"),
    (lambda: L.ClassAttentionBlock(2, 8), (8,), "input_shape=(None, 8)"),
    # T2T: images too small for the splits, static sizes
    (lambda: L.TokensToToken(8, padding=0), (4, 4, 3), "padding=0"),
    (
        lambda: L.TokensToToken(8, attention="lsa"),
        (2, 2, 3),
        "input_shape=(None, 2, 2, 3)",
    ),
    (lambda: L.TokensToToken(8), (None, None, 3), "image size"),
    (lambda: L.TokensToToken(8), (64, 3), "input_shape=(None, 64, 3)"),
]


@pytest.mark.parametrize("make, shape, message", BUILD)
def test_bad_inputs_fail_at_build(make, shape, message):
    with pytest.raises(ValueError, match=_literal(message)):
        build(make(), shape)


def test_channels_first_shapes_are_read_in_their_layout():
    # 3 channels first: the 30x32 image is not divisible by 4 in height.
    layer = L.PatchEmbedding(4, 8, data_format="channels_first")
    with pytest.raises(ValueError, match="30x32"):
        build(layer, (3, 30, 32))


def test_dynamic_token_count_is_fine_without_diagonal_masking():
    layer = L.MultiHeadSelfAttention(2)
    outputs = layer(keras.Input(batch_shape=(None, None, 8)))
    assert tuple(outputs.shape) == (None, None, 8)


def _literal(text):
    return re.escape(text)


def test_only_the_attention_mixer_returns_scores():
    block = L.MetaFormerBlock("pooling")
    with pytest.raises(ValueError, match="return_attention_scores=True"):
        block(keras.Input((4, 4, 8)), return_attention_scores=True)
