"""kvision's public layers: one implementation of each idea, on any backend.

Every layer is registered for serialization under the ``kvision`` package,
so models that use them save to and load from ``.keras`` files.
"""

from kvision.layers.attention import LocalitySelfAttention
from kvision.layers.attention import MultiHeadSelfAttention
from kvision.layers.cait import ClassAttention
from kvision.layers.cait import ClassAttentionBlock
from kvision.layers.cait import TalkingHeadsAttention
from kvision.layers.convnext import ConvNeXtBlock
from kvision.layers.convnext import ConvNeXtDownsampling
from kvision.layers.convnext import ConvNeXtStem
from kvision.layers.convolution import DepthwiseConv2D
from kvision.layers.davit import ChannelGroupAttention
from kvision.layers.davit import ConvPositionEncoding
from kvision.layers.davit import DaViTChannelBlock
from kvision.layers.davit import DaViTSpatialBlock
from kvision.layers.metaformer import MetaFormerBlock
from kvision.layers.metaformer import PoolingMixer
from kvision.layers.mixers import ConvMixerBlock
from kvision.layers.mixers import ConvMixerStem
from kvision.layers.mixers import MixerBlock
from kvision.layers.mlp import MLP
from kvision.layers.pit import PiTPooling
from kvision.layers.regularization import DropPath
from kvision.layers.regularization import LayerScale
from kvision.layers.swin import PatchMerging
from kvision.layers.swin import SwinBlock
from kvision.layers.t2t import TokensToToken
from kvision.layers.tokenizers import ClassToken
from kvision.layers.tokenizers import PatchEmbedding
from kvision.layers.tokenizers import PositionEmbedding
from kvision.layers.tokenizers import ShiftedPatchTokenization
from kvision.layers.transformer import TransformerBlock
from kvision.layers.windows import WindowAttention

__all__ = [
    "ChannelGroupAttention",
    "ClassAttention",
    "ClassAttentionBlock",
    "ClassToken",
    "ConvMixerBlock",
    "ConvMixerStem",
    "ConvNeXtBlock",
    "ConvNeXtDownsampling",
    "ConvNeXtStem",
    "ConvPositionEncoding",
    "DaViTChannelBlock",
    "DaViTSpatialBlock",
    "DepthwiseConv2D",
    "DropPath",
    "LayerScale",
    "LocalitySelfAttention",
    "MLP",
    "MetaFormerBlock",
    "MixerBlock",
    "MultiHeadSelfAttention",
    "PatchEmbedding",
    "PatchMerging",
    "PiTPooling",
    "PoolingMixer",
    "PositionEmbedding",
    "ShiftedPatchTokenization",
    "SwinBlock",
    "TalkingHeadsAttention",
    "TokensToToken",
    "TransformerBlock",
    "WindowAttention",
]
