"""The papers' training recipes, built from Keras' own optimizers and
schedules."""

from kvision.training.recipes import PAPER_RECIPES
from kvision.training.recipes import Recipe
from kvision.training.recipes import build_optimizer
from kvision.training.recipes import exempt_from_weight_decay
from kvision.training.recipes import get_recipe
from kvision.training.recipes import learning_rate_schedule
from kvision.training.schedules import PiecewiseLinear
from kvision.training.schedules import one_cycle
from kvision.training.schedules import warmup_cosine

__all__ = [
    "PAPER_RECIPES",
    "PiecewiseLinear",
    "Recipe",
    "build_optimizer",
    "exempt_from_weight_decay",
    "get_recipe",
    "learning_rate_schedule",
    "one_cycle",
    "warmup_cosine",
]
