"""Looking inside models: attention, class activation maps, and figures."""

from kvision.viz.maps import attention_maps
from kvision.viz.maps import class_activation_map
from kvision.viz.maps import cls_attention
from kvision.viz.plots import plot_history
from kvision.viz.plots import plot_overlays

__all__ = [
    "attention_maps",
    "class_activation_map",
    "cls_attention",
    "plot_history",
    "plot_overlays",
]
