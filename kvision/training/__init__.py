"""The papers' training recipes, built from Keras' own optimizers and
schedules, and :func:`fit_model`, which trains a model with one."""

from kvision.training.fit import FitResult
from kvision.training.fit import fit_model
from kvision.training.recipes import MIN_IMAGES_SEEN
from kvision.training.recipes import MIN_STEPS_PER_EPOCH
from kvision.training.recipes import PAPER_RECIPES
from kvision.training.recipes import Recipe
from kvision.training.recipes import adapt_recipe
from kvision.training.recipes import build_optimizer
from kvision.training.recipes import exempt_from_weight_decay
from kvision.training.recipes import get_recipe
from kvision.training.recipes import learning_rate_schedule
from kvision.training.recipes import paper_recipe
from kvision.training.schedules import PiecewiseLinear
from kvision.training.schedules import one_cycle
from kvision.training.schedules import warmup_cosine

__all__ = [
    "FitResult",
    "MIN_IMAGES_SEEN",
    "MIN_STEPS_PER_EPOCH",
    "PAPER_RECIPES",
    "PiecewiseLinear",
    "Recipe",
    "adapt_recipe",
    "build_optimizer",
    "exempt_from_weight_decay",
    "fit_model",
    "get_recipe",
    "learning_rate_schedule",
    "one_cycle",
    "paper_recipe",
    "warmup_cosine",
]
