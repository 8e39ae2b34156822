"""kvision's public layers: one implementation of each idea, on any backend.

Every layer is registered for serialization under the ``kvision`` package,
so models that use them save to and load from ``.keras`` files.
"""

from kvision.layers.attention import LocalitySelfAttention
from kvision.layers.attention import MultiHeadSelfAttention
from kvision.layers.convnext import ConvNeXtBlock
from kvision.layers.convnext import ConvNeXtDownsampling
from kvision.layers.convnext import ConvNeXtStem
from kvision.layers.convolution import DepthwiseConv2D
from kvision.layers.mixers import ConvMixerBlock
from kvision.layers.mixers import ConvMixerStem
from kvision.layers.mixers import MixerBlock
from kvision.layers.mlp import MLP
from kvision.layers.regularization import DropPath
from kvision.layers.regularization import LayerScale
from kvision.layers.tokenizers import ClassToken
from kvision.layers.tokenizers import PatchEmbedding
from kvision.layers.tokenizers import PositionEmbedding
from kvision.layers.tokenizers import ShiftedPatchTokenization
from kvision.layers.transformer import TransformerBlock

__all__ = [
    "ClassToken",
    "ConvMixerBlock",
    "ConvMixerStem",
    "ConvNeXtBlock",
    "ConvNeXtDownsampling",
    "ConvNeXtStem",
    "DepthwiseConv2D",
    "DropPath",
    "LayerScale",
    "LocalitySelfAttention",
    "MLP",
    "MixerBlock",
    "MultiHeadSelfAttention",
    "PatchEmbedding",
    "PositionEmbedding",
    "ShiftedPatchTokenization",
    "TransformerBlock",
]
