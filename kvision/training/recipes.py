"""The papers' training recipes as data, and the optimizer they describe."""

import dataclasses

import keras

from kvision import _checks
from kvision.training import schedules


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a paper trains its model; every field is a plain value.

    Attributes:
        name: the recipe's name.
        source: where the numbers come from.
        epochs: training epochs.
        batch_size: images per step.
        learning_rate: the peak learning rate at ``batch_size``.
        schedule: ``"warmup_cosine"`` or ``"one_cycle"``.
        warmup_epochs: linear warm-up length (``"warmup_cosine"`` only).
        weight_decay: AdamW's decoupled weight decay; biases, norm
            parameters and other 1-D weights, position embeddings and class
            tokens are excluded.
        label_smoothing: for the cross-entropy loss.
        drop_path_rate: stochastic depth of the model.
        clipnorm: gradient-norm clipping, or ``None``.
        rand_augment_ops: RandAugment operations (0: none).
        rand_augment_factor: RandAugment strength in [0, 1].
        mixup: a batch is mixed with MixUp with probability ``mixup / 2``
            (timm's 0.8 / 1.0 pair mixes 90 % of batches, about half each
            way).
        cutmix: likewise, CutMix with probability ``cutmix / 2``.
        erasing: random-erasing probability.
        flip: horizontal flips.
    """

    name: str
    source: str
    epochs: int
    batch_size: int
    learning_rate: float
    schedule: str = "warmup_cosine"
    warmup_epochs: int = 0
    weight_decay: float = 0.05
    label_smoothing: float = 0.0
    drop_path_rate: float = 0.0
    clipnorm: float | None = None
    rand_augment_ops: int = 0
    rand_augment_factor: float = 0.5
    mixup: float = 0.0
    cutmix: float = 0.0
    erasing: float = 0.0
    flip: bool = True

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


PAPER_RECIPES = {
    "vit": Recipe(
        name="vit_small_data",
        source=(
            "Vision Transformer for Small-Size Datasets (arXiv:2112.13492), "
            "Section 4.1 and the official training script"
        ),
        epochs=100,
        batch_size=128,
        learning_rate=1e-3,
        warmup_epochs=10,
        weight_decay=5e-2,
        label_smoothing=0.1,
        drop_path_rate=0.1,
        rand_augment_ops=2,
        rand_augment_factor=0.5,
        mixup=0.8,
        cutmix=1.0,
        erasing=0.25,
    ),
    "convmixer": Recipe(
        name="convmixer_cifar",
        source=(
            "Patches Are All You Need? (arXiv:2201.09792), the official "
            "CIFAR-10 script: one-cycle AdamW, RandAugment (2, 12/30)"
        ),
        epochs=25,
        batch_size=512,
        learning_rate=1e-2,
        schedule="one_cycle",
        weight_decay=1e-2,
        clipnorm=1.0,
        rand_augment_ops=2,
        rand_augment_factor=0.4,
        erasing=0.2,
    ),
    "mixer": Recipe(
        name="mixer_small_data",
        source=(
            "MLP-Mixer (arXiv:2105.01601), Section 3: Adam-type optimizer "
            "with linear warm-up, gradient clipping at 1, weight decay, "
            "RandAugment, MixUp and stochastic depth; scaled to CIFAR size"
        ),
        epochs=100,
        batch_size=128,
        learning_rate=1e-3,
        warmup_epochs=10,
        weight_decay=0.1,
        clipnorm=1.0,
        drop_path_rate=0.1,
        rand_augment_ops=2,
        rand_augment_factor=0.5,
        mixup=0.5,
    ),
    "convnext": Recipe(
        name="convnext_imagenet",
        source=(
            "A ConvNet for the 2020s (arXiv:2201.03545), Appendix A.1: AdamW "
            "4e-3 at batch 4096, 300 epochs, 20 warm-up, RandAugment "
            "(2 ops, magnitude 9 of 10), MixUp 0.8, CutMix 1.0, erasing "
            "0.25, smoothing 0.1"
        ),
        epochs=300,
        batch_size=4096,
        learning_rate=4e-3,
        warmup_epochs=20,
        weight_decay=5e-2,
        label_smoothing=0.1,
        drop_path_rate=0.1,
        rand_augment_ops=2,
        rand_augment_factor=0.9,
        mixup=0.8,
        cutmix=1.0,
        erasing=0.25,
    ),
}


def family(model_name):
    """The recipe family of a registered model name."""
    for prefix, key in (
        ("sl_vit", "vit"),
        ("vit", "vit"),
        ("convmixer", "convmixer"),
        ("mixer", "mixer"),
        ("convnext", "convnext"),
    ):
        if model_name.startswith(prefix):
            return key
    raise ValueError(
        f"No recipe for model {model_name!r}; families: "
        f"{sorted(PAPER_RECIPES)}. Received: model_name={model_name!r}"
    )


def get_recipe(model_name, kind="paper", batch_size=None, epochs=None):
    """The recipe for a registered model.

    Args:
        model_name: a registry name (its family picks the paper recipe).
        kind: ``"paper"`` (the paper's recipe) or ``"quick"`` (the same
            optimizer and schedule, short and without heavy augmentation,
            for smoke runs and small CPU budgets).
        batch_size: optional override; the learning rate is scaled
            linearly with it, as the papers do.
        epochs: optional override.

    Returns:
        A :class:`Recipe`.
    """
    _checks.one_of("kind", kind, {"paper", "quick"})
    recipe = PAPER_RECIPES[family(model_name)]
    if kind == "quick":
        recipe = recipe.replace(
            name=f"{recipe.name}_quick",
            epochs=10,
            batch_size=min(recipe.batch_size, 128),
            warmup_epochs=min(recipe.warmup_epochs, 1),
            rand_augment_ops=0,
            mixup=0.0,
            cutmix=0.0,
            erasing=0.0,
        )
        recipe = recipe.replace(
            learning_rate=_scaled(PAPER_RECIPES[family(model_name)], recipe)
        )
    if batch_size is not None:
        _checks.positive_int("batch_size", batch_size)
        scaled = recipe.replace(batch_size=batch_size)
        recipe = scaled.replace(learning_rate=_scaled(recipe, scaled))
    if epochs is not None:
        _checks.positive_int("epochs", epochs)
        recipe = recipe.replace(
            epochs=epochs, warmup_epochs=min(recipe.warmup_epochs, epochs - 1)
        )
    return recipe


def _scaled(reference, recipe):
    """Linear learning-rate scaling with the batch size."""
    return reference.learning_rate * recipe.batch_size / reference.batch_size


def learning_rate_schedule(recipe, steps_per_epoch):
    """The recipe's schedule, in optimizer steps."""
    _checks.positive_int("steps_per_epoch", steps_per_epoch)
    total = recipe.epochs * steps_per_epoch
    if recipe.schedule == "one_cycle":
        return schedules.one_cycle(recipe.learning_rate, total)
    return schedules.warmup_cosine(
        recipe.learning_rate, total, recipe.warmup_epochs * steps_per_epoch
    )


def exempt_from_weight_decay(variable):
    """Biases, norm scales and shifts, LayerScale, LSA temperatures (all
    1-D), position embeddings and class tokens are not decayed."""
    return len(variable.shape) <= 1 or variable.name in ("embedding", "token")


def build_optimizer(recipe, model, steps_per_epoch):
    """AdamW with the recipe's schedule, clipping and decay exclusions.

    Args:
        recipe: a :class:`Recipe`.
        model: the built model whose weights the optimizer will train.
        steps_per_epoch: optimizer steps per epoch.

    Returns:
        A ``keras.optimizers.AdamW`` driven by the recipe's schedule.
    """
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate_schedule(recipe, steps_per_epoch),
        weight_decay=recipe.weight_decay,
        clipnorm=recipe.clipnorm,
    )
    optimizer.exclude_from_weight_decay(
        var_list=[
            v for v in model.trainable_weights if exempt_from_weight_decay(v)
        ]
    )
    return optimizer
