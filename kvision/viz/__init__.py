"""Looking inside models: attention, its statistics, class activation maps,
token-mixing filters, how well maps land on objects, and figures.

Numbers come back as NumPy arrays and are read from a model's public named
outputs (``model.attention_model()``, named layers), on every backend;
figures are ``matplotlib.figure.Figure`` objects, never shown.
"""

from kvision.viz.attention import attention_divergence
from kvision.viz.attention import attention_entropy
from kvision.viz.attention import attention_rollout
from kvision.viz.attention import distance_of
from kvision.viz.attention import divergence_of
from kvision.viz.attention import entropy_of
from kvision.viz.attention import mean_attention_distance
from kvision.viz.attention import rollout
from kvision.viz.maps import attention_maps
from kvision.viz.maps import class_activation_map
from kvision.viz.maps import cls_attention
from kvision.viz.maps import localization_score
from kvision.viz.maps import token_mixing_weights
from kvision.viz.plots import plot_attention_distance
from kvision.viz.plots import plot_attention_heads
from kvision.viz.plots import plot_history
from kvision.viz.plots import plot_overlays
from kvision.viz.plots import plot_spt_views
from kvision.viz.plots import plot_token_mixing

__all__ = [
    "attention_divergence",
    "attention_entropy",
    "attention_maps",
    "attention_rollout",
    "class_activation_map",
    "cls_attention",
    "distance_of",
    "divergence_of",
    "entropy_of",
    "localization_score",
    "mean_attention_distance",
    "plot_attention_distance",
    "plot_attention_heads",
    "plot_history",
    "plot_overlays",
    "plot_spt_views",
    "plot_token_mixing",
    "rollout",
    "token_mixing_weights",
]
