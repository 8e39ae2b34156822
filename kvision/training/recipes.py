"""The papers' training recipes as data, how one adapts to a dataset, and
the optimizer it describes.

A :class:`Recipe` holds the numbers of one official training command, chosen
for the paper's dataset: 50,000 CIFAR images or 1.28 million ImageNet ones.
:func:`adapt_recipe` applies it to another dataset and changes only what has
to change, each change with its rule; ``print(recipe)`` shows the paper's
values and the applied ones side by side.

**Input range.** kvision feeds images scaled to [0, 1]. The official SL-ViT
and ConvMixer scripts standardise each channel by the dataset's mean and
standard deviation, so the zeros that SPT's shifts and the random crop pad
with are the mean colour there and black here; on digits, black is the
background. Every kvision model and notebook shares this one input range.
"""

import dataclasses
import math

import keras

from kvision import _checks
from kvision.training import schedules

LR_SCALING = ("linear", "sqrt", "none")
MIN_STEPS_PER_EPOCH = 20
MIN_BATCH_SIZE = 16
# The shortest run the papers regularise with RandAugment, erasing and
# MixUp/CutMix is ConvMixer's 25 CIFAR-10 epochs: 1.25 million images seen.
# Below a million, :func:`adapt_recipe` switches them off (measured on
# digits: ViT 0.613 with them after 30 epochs, 0.978 without).
MIN_IMAGES_SEEN = 1_000_000
_HEAVY_AUGMENTATION_OFF = dict(
    rand_augment_ops=0, erasing=0.0, mixup=0.0, cutmix=0.0
)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a paper trains its model; every field is a plain value.

    Images reach the model scaled to [0, 1]. The official SL-ViT and
    ConvMixer scripts standardise them by the dataset's channel mean and
    standard deviation instead, so what their zero padding (SPT's shifts,
    the random crop) adds is the mean colour there and black here, the
    background of digits; ``departures`` lists this with the rest.

    Attributes:
        name: the recipe's name.
        source: where the numbers come from (paper and official command).
        epochs: training epochs (passes over the training set).
        batch_size: images per step.
        learning_rate: the peak learning rate at ``batch_size``.
        schedule: ``"warmup_cosine"`` or ``"one_cycle"``.
        warmup_epochs: linear warm-up length (``"warmup_cosine"`` only).
        weight_decay: AdamW's decoupled weight decay.
        label_smoothing: for the cross-entropy loss.
        drop_path_rate: stochastic depth of the model.
        clipnorm: gradient-norm clipping, or ``None``.
        rand_augment_ops: RandAugment operations (0: none).
        rand_augment_factor: RandAugment strength in [0, 1] (Keras'
            ``factor``: timm's magnitude 9 of 10 is 0.9, torchvision's 12
            of 30 bins is 0.4).
        mixup: MixUp's Beta-distribution alpha (0: off), as timm's
            ``--mixup``: one mixing weight ``lam ~ Beta(alpha, alpha)`` per
            batch.
        cutmix: CutMix's Beta alpha (0: off), as timm's ``--cutmix``.
        erasing: random-erasing probability.
        flip: horizontal flips.
        mix_prob: probability that a batch is mixed at all (timm's
            ``--mixup-prob``, 1.0 in timm and ConvNeXt; 0.5 in the SL-ViT
            script).
        mix_switch_prob: with both alphas on, the probability that a mixed
            batch gets CutMix rather than MixUp (0.5 in every source here).
        lr_scaling: how the learning rate follows the batch size:
            ``"linear"``, ``"sqrt"`` or ``"none"`` (see :func:`adapt_recipe`).
        min_learning_rate: the floor the cosine schedule decays to.
        optimizer_epsilon: AdamW's epsilon (1e-8 is PyTorch's default, which
            the official scripts use; the ImageNet ConvMixers used 1e-3).
        decay_exemptions: ``True`` spares biases, norm parameters and other
            1-D weights, position embeddings and class tokens from weight
            decay (timm, ConvNeXt); ``False`` decays every weight (the SL-ViT
            script).
        image_size: the image side the recipe was written for.
        crop_padding: pixels of the random pad-and-crop at ``image_size``
            (0: no random crop).
        departures: where kvision's version departs from the official code.
        paper: the recipe this one was adapted from (:func:`adapt_recipe`),
            or ``None``.
        adaptations: ``(field, rule)`` pairs, one per adapted field.
    """

    name: str
    source: str
    epochs: int
    batch_size: int
    learning_rate: float
    schedule: str = "warmup_cosine"
    warmup_epochs: float = 0
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
    mix_prob: float = 1.0
    mix_switch_prob: float = 0.5
    lr_scaling: str = "linear"
    min_learning_rate: float = 0.0
    optimizer_epsilon: float = 1e-8
    decay_exemptions: bool = True
    image_size: int = 32
    crop_padding: int = 4
    departures: tuple = ()
    paper: "Recipe | None" = dataclasses.field(
        default=None, compare=False, repr=False
    )
    adaptations: tuple = ()

    def __post_init__(self):
        _checks.one_of("lr_scaling", self.lr_scaling, set(LR_SCALING))
        _checks.one_of(
            "schedule", self.schedule, {"warmup_cosine", "one_cycle"}
        )
        for name in ("mixup", "cutmix"):
            _checks.non_negative_float(name, getattr(self, name))
        for name in ("mix_prob", "mix_switch_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"`{name}` is a probability in [0, 1]. "
                    f"Received: {name}={value!r}"
                )

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def scaled_learning_rate(self, batch_size):
        """The learning rate at ``batch_size`` by this recipe's rule."""
        _checks.positive_int("batch_size", batch_size)
        ratio = batch_size / self.batch_size
        factor = {
            "linear": ratio,
            "sqrt": math.sqrt(ratio),
            "none": 1.0,
        }[self.lr_scaling]
        return self.learning_rate * factor

    def describe(self):
        """The recipe as text: the paper's and the applied values side by
        side (adapted recipes), the rule behind each change and the
        departures from the official code."""
        paper = self.paper or self
        rules = dict(self.adaptations)
        lines = [f"Recipe {self.name!r}", f"  source: {self.source}"]
        rows = [("field", "paper", "applied", "rule")]
        for field in _SHOWN_FIELDS:
            before = _shown(getattr(paper, field))
            after = _shown(getattr(self, field))
            rows.append((field, before, after, rules.get(field, "")))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:
            cells = [row[i].ljust(widths[i]) for i in range(3)]
            lines.append("  " + "  ".join(cells + [row[3]]).rstrip())
        if self.departures:
            lines.append("  departures from the official code:")
            lines += [f"  - {note}" for note in self.departures]
        return "\n".join(lines)

    def __str__(self):
        return self.describe()

    def applied(self):
        """The applied values of :data:`_SHOWN_FIELDS` as a plain dict."""
        return {field: getattr(self, field) for field in _SHOWN_FIELDS}


_SHOWN_FIELDS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "lr_scaling",
    "schedule",
    "warmup_epochs",
    "min_learning_rate",
    "weight_decay",
    "decay_exemptions",
    "optimizer_epsilon",
    "clipnorm",
    "label_smoothing",
    "drop_path_rate",
    "image_size",
    "crop_padding",
    "flip",
    "rand_augment_ops",
    "rand_augment_factor",
    "erasing",
    "mixup",
    "cutmix",
    "mix_prob",
    "mix_switch_prob",
)


def _shown(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_RANDOM_CROP_SMALL = (
    "the random-resized crop of the ImageNet recipe becomes, on small "
    "images, a pad-and-crop of an eighth of the side (as DeiT III's "
    "small-image option)"
)
_STANDARDISED = (
    "inputs scaled to [0, 1] instead of standardised by the dataset's "
    "channel mean and standard deviation"
)
_BATCH_RAND_AUGMENT = (
    "RandAugment draws its operations once per batch (Keras' layer); the "
    "official code draws them for each image"
)
_KERAS_ERASING = (
    "Keras' RandomErasing (one box, random values) for timm's pixel-mode "
    "random erasing"
)

# What the timm-based ImageNet recipes (ConvNeXt, DaViT, PoolFormer) share:
# RandAugment m9, random erasing 0.25, smoothing 0.1, weight decay 0.05;
# and kvision's departures from them, the square-root learning-rate rule
# among them.
_TIMM_IMAGENET = dict(
    lr_scaling="sqrt",
    weight_decay=5e-2,
    label_smoothing=0.1,
    rand_augment_ops=2,
    rand_augment_factor=0.9,
    erasing=0.25,
    image_size=224,
    crop_padding=28,
)
_TIMM_IMAGENET_DEPARTURES = (
    "the learning rate follows the batch by the square root of the batch "
    "ratio, the scaling rule for Adam of Malladi et al. (NeurIPS 2022), "
    "not linearly (DeiT's rule, PoolFormer's stated one): from 4,096 images "
    "per step to 64 the linear rule gives 6.25e-5, at which ConvNeXt "
    "stalled at 0.891 test accuracy on digits after 30 epochs, against "
    "0.972 at the square root's 5e-4 (PyTorch, seed 0)",
    _RANDOM_CROP_SMALL,
    "Keras' RandAugment (2 ops, factor 0.9) for timm's "
    "rand-m9-mstd0.5-inc1; no colour jitter",
    _KERAS_ERASING,
    _STANDARDISED,
    _BATCH_RAND_AUGMENT,
)

PAPER_RECIPES = {
    "vit": Recipe(
        name="sl_vit_cifar",
        source=(
            "Vision Transformer for Small-Size Datasets (arXiv:2112.13492), "
            "the official main.py defaults: AdamW 1e-3 at batch 128, 100 "
            "epochs with 10 of warm-up, cosine to 1e-6, weight decay 0.05 "
            "on every weight, smoothing 0.1, stochastic depth 0.1, "
            "pad-4 crop and flips, MixUp and CutMix (alpha 1) on half of "
            "the batches, random erasing 0.25"
        ),
        epochs=100,
        batch_size=128,
        learning_rate=1e-3,
        lr_scaling="none",
        warmup_epochs=10,
        min_learning_rate=1e-6,
        weight_decay=5e-2,
        decay_exemptions=False,
        label_smoothing=0.1,
        drop_path_rate=0.1,
        rand_augment_ops=2,
        rand_augment_factor=0.5,
        mixup=1.0,
        cutmix=1.0,
        mix_prob=0.5,
        erasing=0.25,
        departures=(
            "Keras' RandAugment (2 ops, factor 0.5) for the script's "
            "AutoAugment CIFAR policy, which Keras does not have",
            "an epoch is one pass over the data; the script's `--ra 3` "
            "makes each of its epochs three passes (its 100 epochs are "
            "300 passes)",
            "the warm-up starts at 0, the script's at 1e-6",
            _KERAS_ERASING,
            _BATCH_RAND_AUGMENT,
            _STANDARDISED,
        ),
    ),
    "convmixer": Recipe(
        name="convmixer_cifar",
        source=(
            "Patches Are All You Need? (arXiv:2201.09792), the "
            "convmixer-cifar10 README command (92.5 % in 25 epochs): "
            "train.py --lr-max=0.05 --ra-n=2 --ra-m=12 --wd=0.005 "
            "--scale=1.0 --jitter=0 --reprob=0, batch 512, one-cycle "
            "AdamW, no clipping, no label smoothing"
        ),
        epochs=25,
        batch_size=512,
        learning_rate=0.05,
        lr_scaling="linear",
        schedule="one_cycle",
        weight_decay=5e-3,
        decay_exemptions=False,
        rand_augment_ops=2,
        rand_augment_factor=0.4,
        crop_padding=0,
        departures=(
            "Keras' RandAugment (2 ops, factor 12/30) for torchvision's",
            "the script keeps its learning rate whatever the batch size; "
            "with fewer images per step it is scaled linearly here",
            _BATCH_RAND_AUGMENT,
            _STANDARDISED,
        ),
    ),
    "convmixer_imagenet": Recipe(
        name="convmixer_imagenet",
        source=(
            "Patches Are All You Need? (arXiv:2201.09792), the "
            "locuslab/convmixer README command for ConvMixer-1536/20 "
            "(timm train.py): AdamW 0.01 at batch 640 (64 x 10 GPUs), "
            "one-cycle over 150 epochs (300 for ConvMixer-768/32), "
            "epsilon 1e-3, clipping 1.0, RandAugment m9, MixUp and CutMix "
            "0.5, random erasing 0.25, timm's defaults otherwise (weight "
            "decay 2e-5, smoothing 0.1)"
        ),
        epochs=150,
        batch_size=640,
        learning_rate=0.01,
        lr_scaling="linear",
        schedule="one_cycle",
        weight_decay=2e-5,
        optimizer_epsilon=1e-3,
        clipnorm=1.0,
        label_smoothing=0.1,
        rand_augment_ops=2,
        rand_augment_factor=0.9,
        mixup=0.5,
        cutmix=0.5,
        erasing=0.25,
        image_size=224,
        crop_padding=28,
        departures=(
            _RANDOM_CROP_SMALL,
            "Keras' RandAugment (2 ops, factor 0.9) for timm's "
            "rand-m9-mstd0.5-inc1",
            "timm's train.py keeps its learning rate whatever the batch "
            "size; with fewer images per step it is scaled linearly here",
            _KERAS_ERASING,
            _BATCH_RAND_AUGMENT,
            _STANDARDISED,
        ),
    ),
    "mixer": Recipe(
        name="mixer_small_data",
        source=(
            "MLP-Mixer (arXiv:2105.01601), Section 3: Adam-type optimizer "
            "with linear warm-up, gradient clipping at 1, weight decay, "
            "RandAugment, MixUp and stochastic depth; kvision's own "
            "numbers at CIFAR size (the paper trains at ImageNet scale)"
        ),
        epochs=100,
        batch_size=128,
        learning_rate=1e-3,
        lr_scaling="linear",
        warmup_epochs=10,
        weight_decay=0.1,
        clipnorm=1.0,
        drop_path_rate=0.1,
        rand_augment_ops=2,
        rand_augment_factor=0.5,
        mixup=0.5,
        departures=(
            "no official small-data recipe exists: the values are "
            "kvision's, in the spirit of the paper's ImageNet-1k runs",
            _BATCH_RAND_AUGMENT,
            _STANDARDISED,
        ),
    ),
    "convnext": Recipe(
        name="convnext_imagenet",
        source=(
            "A ConvNet for the 2020s (arXiv:2201.03545), Appendix A.1 and "
            "the official main.py/TRAINING.md: AdamW 4e-3 at batch 4096, "
            "300 epochs, 20 warm-up, cosine to 1e-6, weight decay 0.05, "
            "RandAugment m9, MixUp 0.8 and CutMix 1.0 on every batch, "
            "random erasing 0.25, smoothing 0.1, stochastic depth "
            "T 0.1 / S 0.4 / B 0.5 / L 0.5"
        ),
        epochs=300,
        batch_size=4096,
        learning_rate=4e-3,
        warmup_epochs=20,
        min_learning_rate=1e-6,
        drop_path_rate=0.1,
        mixup=0.8,
        cutmix=1.0,
        departures=(
            "no model EMA (the official commands evaluate an EMA of the "
            "weights)",
            *_TIMM_IMAGENET_DEPARTURES,
        ),
        **_TIMM_IMAGENET,
    ),
    "davit": Recipe(
        name="davit_imagenet",
        source=(
            "DaViT (arXiv:2204.03645), the official train.py defaults and "
            "README: AdamW 1e-3 at batch 1024 (8 x 128), 300 epochs, 5 "
            "warm-up, cosine, weight decay 0.05, gradient clipping 1.0, "
            "stochastic depth 0.1, RandAugment m9, MixUp 0.8, random "
            "erasing 0.25, smoothing 0.1"
        ),
        epochs=300,
        batch_size=1024,
        learning_rate=1e-3,
        warmup_epochs=5,
        clipnorm=1.0,
        drop_path_rate=0.1,
        mixup=0.8,
        departures=_TIMM_IMAGENET_DEPARTURES,
        **_TIMM_IMAGENET,
    ),
    "poolformer": Recipe(
        name="poolformer_imagenet",
        source=(
            "MetaFormer Is Actually What You Need for Vision "
            "(arXiv:2111.11418), the official train.py and README: AdamW "
            "1e-3 at batch 1024 (lr = batch / 1024 x 1e-3), 300 epochs, 5 "
            "warm-up, cosine, weight decay 0.05, RandAugment m9, MixUp 0.8 "
            "and CutMix 1.0, random erasing 0.25, smoothing 0.1, "
            "stochastic depth S12 0.1 / S24 0.1 / S36 0.2 / M36 0.3 / "
            "M48 0.4"
        ),
        epochs=300,
        batch_size=1024,
        learning_rate=1e-3,
        warmup_epochs=5,
        drop_path_rate=0.1,
        mixup=0.8,
        cutmix=1.0,
        departures=_TIMM_IMAGENET_DEPARTURES,
        **_TIMM_IMAGENET,
    ),
}

# The models of the SL-ViT paper's Table 2 at 32 px: its one script
# (main.py) trains every one of them with the same defaults, the "vit"
# recipe. Their ImageNet sizes have recipes of their own papers, which
# kvision does not carry.
_SL_VIT_SCRIPT_MODELS = {
    f"{prefix}{name}_32px"
    for prefix in ("", "sl_")
    for name in ("swin", "pit", "cait", "t2t")
}
# Stochastic depth of PoolFormer's official commands, per size.
_POOLFORMER_DROP_PATH = {
    "poolformer_s36": 0.2,
    "poolformer_m36": 0.3,
    "poolformer_m48": 0.4,
}

# Stochastic depth of the official ImageNet-1k commands (TRAINING.md);
# sizes without one keep the recipe's (ConvNeXt-T's) 0.1.
_CONVNEXT_DROP_PATH = {
    "convnext_small": 0.4,
    "convnext_base": 0.5,
    "convnext_large": 0.5,
}
_CONVMIXER_EPOCHS = {"convmixer_768_32": 300}


def family(model_name):
    """The recipe family (a key of :data:`PAPER_RECIPES`) of a model name."""
    if model_name.startswith("convmixer"):
        # Only the CIFAR variant trains with the CIFAR script.
        if model_name == "convmixer_256_8":
            return "convmixer"
        return "convmixer_imagenet"
    if model_name in _SL_VIT_SCRIPT_MODELS:
        return "vit"
    for prefix, key in (
        ("sl_vit", "vit"),
        ("vit", "vit"),
        ("mixer", "mixer"),
        ("convnext", "convnext"),
        ("davit", "davit"),
        ("poolformer", "poolformer"),
        ("metaformer", "poolformer"),
    ):
        if model_name.startswith(prefix):
            return key
    raise ValueError(
        f"No recipe for model {model_name!r}; families: "
        f"{sorted(PAPER_RECIPES)}. Received: model_name={model_name!r}"
    )


def paper_recipe(model_name):
    """The official recipe of a registered model, with its per-size values
    (ConvNeXt's and PoolFormer's stochastic depth, ConvMixer-768/32's 300
    epochs)."""
    recipe = PAPER_RECIPES[family(model_name)]
    per_size = {**_CONVNEXT_DROP_PATH, **_POOLFORMER_DROP_PATH}
    if model_name in per_size:
        recipe = recipe.replace(drop_path_rate=per_size[model_name])
    if model_name in _CONVMIXER_EPOCHS:
        recipe = recipe.replace(epochs=_CONVMIXER_EPOCHS[model_name])
    return recipe


def get_recipe(model_name, kind="paper", batch_size=None, epochs=None):
    """The recipe for a registered model, as published (not yet adapted to
    a dataset: see :func:`adapt_recipe`).

    Args:
        model_name: a registry name (its family picks the paper recipe).
        kind: ``"paper"`` (the paper's recipe) or ``"quick"`` (the same
            optimizer, batch and schedule, 10 epochs and without
            RandAugment, mixing and erasing, for smoke runs; a short run on
            small data trains better with the paper's recipe through
            :func:`adapt_recipe`, which also bounds the batch).
        batch_size: optional override; the learning rate follows it by the
            recipe's ``lr_scaling`` rule.
        epochs: optional override; the warm-up keeps its share of the
            training.

    Returns:
        A :class:`Recipe`.
    """
    _checks.one_of("kind", kind, {"paper", "quick"})
    recipe = paper_recipe(model_name)
    if kind == "quick":
        recipe = _with_epochs(recipe, 10).replace(
            name=f"{recipe.name}_quick",
            rand_augment_ops=0,
            mixup=0.0,
            cutmix=0.0,
            erasing=0.0,
        )
    if batch_size is not None:
        recipe = _with_batch_size(recipe, batch_size)
    if epochs is not None:
        recipe = _with_epochs(recipe, epochs)
    return recipe


def _with_batch_size(recipe, batch_size):
    return recipe.replace(
        batch_size=_checks.positive_int("batch_size", batch_size),
        learning_rate=recipe.scaled_learning_rate(batch_size),
    )


def _with_epochs(recipe, epochs):
    _checks.positive_int("epochs", epochs)
    warmup = recipe.warmup_epochs * epochs / recipe.epochs
    return recipe.replace(epochs=epochs, warmup_epochs=warmup)


def _largest_power_of_two(limit):
    return 2 ** int(math.floor(math.log2(limit))) if limit >= 1 else 1


def adapt_recipe(
    recipe,
    num_train,
    image_size,
    mirror_invariant=True,
    batch_size=None,
    epochs=None,
    min_steps_per_epoch=MIN_STEPS_PER_EPOCH,
    min_images_seen=MIN_IMAGES_SEEN,
):
    """Applies a paper's recipe to a dataset, each change by a stated rule.

    - **Batch size**: at most the paper's, and small enough for an epoch to
      take at least ``min_steps_per_epoch`` optimizer steps: the largest
      power of two ``<= num_train / min_steps_per_epoch``, and at least
      :data:`MIN_BATCH_SIZE`. ConvMixer's batch of 512 on scikit-learn's
      1,437 training digits is 3 steps per epoch: measured, 0.51 test
      accuracy after 6 epochs, against 0.98 at batch 64 (23 steps).
    - **Learning rate**: follows the batch by the recipe's ``lr_scaling``:
      ``"linear"`` (``lr * batch / paper_batch``, DeiT's rule, kvision's
      choice for the CIFAR-size recipes whose scripts have no rule of their
      own), ``"sqrt"`` (``lr * sqrt(batch / paper_batch)``, Adam's rule
      by Malladi et al., NeurIPS 2022: the ImageNet recipes of ConvNeXt,
      DaViT and PoolFormer, whose batches of 1,024-4,096 shrink 16-64
      times on small data), or ``"none"`` (the SL-ViT script trains at its
      learning rate whatever its batch size).
    - **Warm-up and schedule**: when the number of epochs changes, the
      warm-up keeps its share of the training; both are counted in
      optimizer steps (:func:`learning_rate_schedule`).
    - **Augmentation**: the random crop's padding scales with the image
      side (CIFAR's 4 pixels at 32 px are an eighth); an ImageNet recipe's
      random-resized crop becomes that pad-and-crop on images of 64 px or
      less; horizontal flips are switched off for datasets whose labels a
      mirror changes (digits).
    - **Heavy augmentation**: RandAugment, random erasing and MixUp/CutMix
      keep the paper's values in a run that shows the model at least
      ``min_images_seen`` training images (epochs x training images), and
      are switched off in a shorter one. The papers regularise runs of
      1.25 million images (ConvMixer's 25 CIFAR-10 epochs) to 384 million
      (300 ImageNet epochs); a short run has too few steps to fit through
      them. Measured on digits (1,437 images, 30 epochs: 43,110 images),
      PyTorch, seed 0: ViT 0.613 test accuracy with the SL-ViT recipe's
      augmentation, 0.880 with mixing off, 0.978 with all three off; the
      Mixer 0.423 and 0.964.

    Args:
        recipe: a :class:`Recipe` (an adapted one is re-adapted from its
            paper recipe).
        num_train: int, the number of training images.
        image_size: int, the side of the training images.
        mirror_invariant: bool; ``False`` switches horizontal flips off
            (their labels change under a mirror: digits).
        batch_size: int or ``None`` for the rule's; the learning rate
            follows either way.
        epochs: int or ``None`` for the paper's.
        min_steps_per_epoch: int, the optimizer steps an epoch must have
            at least (while the batch is at least :data:`MIN_BATCH_SIZE`;
            default :data:`MIN_STEPS_PER_EPOCH`, 20).
        min_images_seen: int >= 0, the training images (epochs x
            ``num_train``) a run must show for RandAugment, erasing and
            MixUp/CutMix to stay on (default :data:`MIN_IMAGES_SEEN`, one
            million); 0 keeps the paper's augmentation in any run.

    Returns:
        A :class:`Recipe` whose ``paper`` is the published recipe and whose
        ``adaptations`` say what changed and why; ``print`` shows both.

    Example:

    >>> recipe = adapt_recipe(get_recipe("convmixer_256_8"), 1437, 32)
    >>> recipe.batch_size, round(recipe.learning_rate, 5)
    (64, 0.00625)
    """
    paper = recipe.paper or recipe
    _checks.positive_int("num_train", num_train)
    _checks.positive_int("image_size", image_size)
    _checks.positive_int("min_steps_per_epoch", min_steps_per_epoch)
    _checks.non_negative_int("min_images_seen", min_images_seen)
    rules = []
    applied = paper

    if batch_size is None:
        fitting = _largest_power_of_two(num_train / min_steps_per_epoch)
        batch_size = min(paper.batch_size, max(fitting, MIN_BATCH_SIZE))
        if batch_size != paper.batch_size:
            steps = -(-num_train // batch_size)
            rules.append(
                (
                    "batch_size",
                    f">= {min_steps_per_epoch} steps per epoch: largest "
                    f"power of two <= {num_train:,} / "
                    f"{min_steps_per_epoch} (min {MIN_BATCH_SIZE}); "
                    f"{steps} steps",
                )
            )
    else:
        rules.append(("batch_size", "asked for"))
    if batch_size != paper.batch_size:
        applied = _with_batch_size(applied, batch_size)
        ratio = f"{batch_size} / {paper.batch_size}"
        rules.append(
            (
                "learning_rate",
                {
                    "linear": f"linear in the batch: x {ratio}",
                    "sqrt": f"square root of the batch ratio {ratio}",
                    "none": "kept: the official script does not scale it",
                }[paper.lr_scaling],
            )
        )

    if epochs is not None and epochs != paper.epochs:
        applied = _with_epochs(applied, epochs)
        rules.append(("epochs", "asked for"))
        if paper.warmup_epochs:
            share = paper.warmup_epochs / paper.epochs
            rules.append(
                ("warmup_epochs", f"keeps its {share:.0%} of the training")
            )

    if image_size != paper.image_size:
        padding = round(paper.crop_padding * image_size / paper.image_size)
        if paper.crop_padding and paper.image_size > 64 >= image_size:
            padding = max(1, image_size // 8)
        applied = applied.replace(image_size=image_size, crop_padding=padding)
        rules.append(
            ("image_size", f"the dataset's ({image_size} px)"),
        )
        if padding != paper.crop_padding:
            rules.append(
                (
                    "crop_padding",
                    f"scaled to the image side ({paper.crop_padding} px at "
                    f"{paper.image_size} px)"
                    if paper.image_size <= 64
                    else "an eighth of the side for small images",
                )
            )
    if paper.flip and not mirror_invariant:
        applied = applied.replace(flip=False)
        rules.append(("flip", "off: a mirror changes this dataset's labels"))

    seen = applied.epochs * num_train
    if seen < min_images_seen:
        for field, off in _HEAVY_AUGMENTATION_OFF.items():
            if getattr(applied, field) != off:
                applied = applied.replace(**{field: off})
                rules.append(
                    (
                        field,
                        f"off: a short run, {seen:,} images seen "
                        f"({applied.epochs} epochs) < {min_images_seen:,}",
                    )
                )

    return applied.replace(
        name=f"{paper.name}_adapted",
        paper=paper,
        adaptations=tuple(rules),
    )


def learning_rate_schedule(recipe, steps_per_epoch):
    """The recipe's schedule, counted in optimizer steps."""
    _checks.positive_int("steps_per_epoch", steps_per_epoch)
    total = recipe.epochs * steps_per_epoch
    if recipe.schedule == "one_cycle":
        return schedules.one_cycle(recipe.learning_rate, total)
    warmup = min(round(recipe.warmup_epochs * steps_per_epoch), total - 1)
    return schedules.warmup_cosine(
        recipe.learning_rate,
        total,
        warmup,
        minimum=min(recipe.min_learning_rate, recipe.learning_rate),
    )


def exempt_from_weight_decay(variable):
    """Biases, norm scales and shifts, LayerScale, LSA temperatures (all
    1-D), position embeddings and class tokens are not decayed."""
    return len(variable.shape) <= 1 or variable.name in ("embedding", "token")


def build_optimizer(recipe, model, steps_per_epoch):
    """AdamW with the recipe's schedule, epsilon, clipping and decay
    exemptions.

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
        epsilon=recipe.optimizer_epsilon,
        clipnorm=recipe.clipnorm,
    )
    if recipe.decay_exemptions:
        optimizer.exclude_from_weight_decay(
            var_list=[
                v
                for v in model.trainable_weights
                if exempt_from_weight_decay(v)
            ]
        )
    return optimizer
