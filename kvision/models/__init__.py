"""kvision's paper models and their registry.

>>> from kvision.models import create_model, list_models
>>> "sl_vit_32px" in list_models("*vit*")
True
"""

from kvision.models.base import VisionModel
from kvision.models.cait import CaiT
from kvision.models.convmixer import ConvMixer
from kvision.models.convnext import ConvNeXt
from kvision.models.davit import DaViT
from kvision.models.mlp_mixer import MLPMixer
from kvision.models.pit import PoolingVisionTransformer
from kvision.models.poolformer import MetaFormer
from kvision.models.registry import create_model
from kvision.models.registry import describe_model
from kvision.models.registry import list_models
from kvision.models.registry import model_class
from kvision.models.registry import model_config
from kvision.models.registry import register_model
from kvision.models.swin import SwinTransformer
from kvision.models.t2t import T2TViT
from kvision.models.vit import VisionTransformer

__all__ = [
    "CaiT",
    "ConvMixer",
    "ConvNeXt",
    "DaViT",
    "MLPMixer",
    "MetaFormer",
    "PoolingVisionTransformer",
    "SwinTransformer",
    "T2TViT",
    "VisionModel",
    "VisionTransformer",
    "create_model",
    "describe_model",
    "list_models",
    "model_class",
    "model_config",
    "register_model",
]
