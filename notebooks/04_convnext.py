# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#     provenance: []
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: accelerator,colab
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # ConvNeXt: a ResNet modernised, one design step at a time
#
# **On Colab:** download this notebook's `.ipynb` and open it with Colab's
# *File, Upload notebook* (there is no public repository to link an *Open in
# Colab* badge to yet). It asks Colab for a GPU; if it opens on a CPU,
# choose one in *Runtime, Change runtime type*.
#
# **Paper:** Zhuang Liu, Hanzi Mao, Chao-Yuan Wu, Christoph Feichtenhofer,
# Trevor Darrell and Saining Xie, *A ConvNet for the 2020s*
# ([arXiv:2201.03545](https://arxiv.org/abs/2201.03545)).
#
# **What you will learn**
#
# - the path from a ResNet to ConvNeXt — patchify stem, depthwise 7x7
#   convolution, inverted bottleneck, LayerNorm, GELU, fewer norms and
#   activations, separate downsampling — and which kvision layer carries
#   each step;
# - why a ConvNeXt block starts out as (almost) the identity: LayerScale;
# - how to choose a learning rate on a held-out validation split, train
#   the small 32x32 ConvNeXt, checkpoint it and reload it, and where it
#   looks (class activation maps).
#
# **Backends:** TensorFlow, JAX and PyTorch: pick one in the form below.
#
# **Runtime.** Measured on a 2-core CPU without a GPU, shared with other
# jobs: the CPU-sized run on digits took about 4.5 minutes with TensorFlow
# before the learning-rate check was added (it trains three more short
# runs); the smoke run (`KVISION_SMOKE=1`) under a minute on each backend.
# On a Colab GPU, the full CIFAR-10 run (50 epochs) should take roughly
# 15-20 minutes: an estimate, not measured.

# %% [markdown]
# ## Setup
#
# On Colab, the next cell installs kvision (Keras and all three backends
# are already there); elsewhere it does nothing: install
# `kvision[examples]` and a backend yourself.

# %%
import glob
import subprocess
import sys

# Where kvision comes from on Colab (kept in sync by a test; see
# kvision/_install.py). A kvision-*.whl uploaded to the session wins.
KVISION_REQUIREMENT = "kvision[examples]"
if "google.colab" in sys.modules:
    wheels = sorted(glob.glob("kvision-*.whl"))
    target = f"{wheels[-1]}[examples]" if wheels else KVISION_REQUIREMENT
    pip = [sys.executable, "-m", "pip", "install", "-q", target]
    if subprocess.run(pip).returncode != 0:
        raise RuntimeError(
            f"Could not install {target}. If kvision is not published "
            "yet, build a wheel (python -m build) and upload it here."
        )

# %% [markdown]
# ## Parameters
#
# On Colab these lines are a form. `SIZE="auto"` trains on the whole
# training split on a GPU or TPU, and a CPU-sized run otherwise (at most
# 3,000 training images): the next cell says which, and why. Both use the
# paper's recipe adapted to the data (see Training). `digits`
# (scikit-learn's handwritten digits), `cluttered_digits` (the same digits
# at random sizes and places on textured clutter, with stroke masks: models
# learn it at CPU budgets, unlike `shapes`) and `shapes` (generated shapes
# with object masks) need no network and always run CPU-sized. `EPOCHS` and
# `SEEDS` left at `None` take the size's defaults; with several seeds the
# model is trained once per seed and the test accuracy reported as mean ±
# std. Environment variables, when set, win over the form (`KVISION_SMOKE=1`
# is a toy run that only checks the notebook works).

# %% tags=["parameters"]
from kvision import notebook

BACKEND = "jax"  # @param ["jax", "tensorflow", "torch"]
# fmt: off
# ruff: disable[E501] (a Colab form field is one line, however long)
DATASET = "cifar10"  # @param ["cifar10", "cifar100", "digits", "cluttered_digits", "shapes"]
# ruff: enable[E501]
# fmt: on
SIZE = "auto"  # @param ["auto", "full", "cpu", "smoke"]
EPOCHS = None  # @param {type:"raw"}
SEEDS = None  # @param {type:"raw"}

BACKEND = notebook.setting("KERAS_BACKEND", BACKEND)
DATASET = notebook.setting("KVISION_DATASET", DATASET)
SIZE = notebook.setting("KVISION_SIZE", SIZE)
if notebook.setting("KVISION_SMOKE", False):
    SIZE = "smoke"
EPOCHS = notebook.setting("KVISION_EPOCHS", EPOCHS)
SEEDS = notebook.setting("KVISION_SEEDS", SEEDS)
OUTPUT_DIR = notebook.setting(
    "KVISION_OUTPUT_DIR", "outputs/notebooks/04_convnext"
)

# %% [markdown]
# ## Device and run size

# %%
run = notebook.start(BACKEND, DATASET, size=SIZE)
SMOKE = run.smoke
IMAGE_SIZE = 32
if run.size == "smoke":
    epochs, NUM_TRAIN, NUM_TEST = 1, 64, 32
    MODEL = dict(depths=(1, 1), dims=(16, 32))
elif run.size == "cpu":
    epochs, NUM_TRAIN, NUM_TEST = 30, 3000, 1000
    MODEL = {}
else:
    epochs, NUM_TRAIN, NUM_TEST = 50, None, None
    MODEL = {}
# None lets adapt_recipe's rule choose. On the whole CIFAR training split
# the rule would keep 2,048 (22 steps an epoch, about 1,100 in 50 epochs,
# where the paper's 300 ImageNet epochs take 94,000): 128 gives 350 steps
# an epoch, and the learning rate follows it by the same rule.
BATCH_SIZE = 128 if run.size == "full" else None
# The learning-rate check's candidates, as multiples of the adapted rate:
# its rule carries an ImageNet rate to a batch up to 256 times smaller and
# to other data, so the check also tries a factor of four either side.
# The adapted rate comes first, so that a tie keeps it.
LEARNING_RATE_FACTORS = (1, 4) if run.size == "smoke" else (1, 0.25, 4)
EPOCHS = EPOCHS or epochs
SEEDS = notebook.seed_list(SEEDS, default=1)
SEED = SEEDS[0]
print(f"{EPOCHS} epochs, seeds {SEEDS}")

# %%
# %matplotlib inline
import json
import pathlib

import keras
import numpy as np
from IPython.display import Markdown
from IPython.display import display
from matplotlib.figure import Figure

from kvision import data
from kvision import layers
from kvision import viz
from kvision.models import create_model
from kvision.training import adapt_recipe
from kvision.training import fit_model
from kvision.training import get_recipe

out = pathlib.Path(OUTPUT_DIR)
out.mkdir(parents=True, exist_ok=True)


def say(text):
    """Shows a computed interpretation as formatted text."""
    display(Markdown(text))


# %% [markdown]
# ## From ResNet to ConvNeXt
#
# The paper starts from a ResNet-50 trained with a modern recipe and
# changes one thing at a time, keeping what helps (its Figure 2). Every
# step has a direct counterpart in kvision:
#
# 1. **Macro design.** Stages of 3-3-9-3 blocks, and a "patchify" stem:
#    a 4x4, stride-4 convolution followed by LayerNorm, like a ViT's
#    patches — `ConvNeXtStem`, `ConvNeXt(depths=...)`.
# 2. **ResNeXt-ify.** The 3x3 convolution becomes depthwise (one filter
#    per channel) and the width grows to 96 — `ConvNeXtBlock.depthwise`.
# 3. **Inverted bottleneck.** The block's pointwise layers widen 4x in
#    the middle, as a transformer's MLP does — `ConvNeXtBlock.mlp`, an
#    `MLP` with `mlp_ratio=4`.
# 4. **Large kernel.** The depthwise convolution moves to the top of the
#    block and grows to 7x7 — `kernel_size=7`.
# 5. **Micro design.** ReLU becomes GELU; one activation and one norm per
#    block; BatchNorm becomes LayerNorm; downsampling gets its own layer
#    (LN, then a 2x2 stride-2 convolution) — `ConvNeXtBlock.norm`,
#    `ConvNeXtDownsampling`.
# 6. **Training.** LayerScale (initialised at 1e-6) and stochastic depth
#    — `LayerScale`, `DropPath`.
#
# The resulting block:
#
# ```
# y = DepthwiseConv7x7(x) -> LayerNorm -> Dense(4C) -> GELU -> Dense(C)
# out = x + DropPath(LayerScale(y))
# ```
#
# Here is one, built on its own at ConvNeXt-T's first-stage width:

# %%
block = layers.ConvNeXtBlock(kernel_size=7, drop_path_rate=0.1)
features = np.random.default_rng(SEED).normal(size=(2, 14, 14, 96))
features = features.astype("float32")
outputs = block(features)
print("input", features.shape, "-> output", tuple(outputs.shape))
total = block.count_params()
for sublayer in (
    block.depthwise,
    block.norm,
    block.mlp,
    block.layer_scale,
    block.drop_path,
):
    count = sublayer.count_params()
    shapes = [tuple(w.shape) for w in sublayer.weights]
    print(
        f"{sublayer.name:12s} {type(sublayer).__name__:22s} "
        f"{count:7,d} params ({count / total:5.1%})  {shapes}"
    )
print(f"{'total':12s} {'':22s} {total:7,d}")

# %% [markdown]
# Almost all parameters (and compute) sit in the two pointwise layers of
# the MLP; the 7x7 spatial mixing is cheap because it is depthwise.
#
# LayerScale multiplies the block's branch by a learnable per-channel
# factor that starts at 1e-6, so a freshly built block passes its input
# through almost unchanged; deep networks start shallow and grow into
# their depth as training lifts the factors.

# %%
change = np.abs(keras.ops.convert_to_numpy(outputs) - features).max()
print(f"largest change a new block makes to its input: {change:.2e}")

# %% [markdown]
# The patchify stem and the downsampling layers, on a 224x224 image:

# %%
stem = layers.ConvNeXtStem(filters=96, patch_size=4)
down = layers.ConvNeXtDownsampling(filters=192)
image = np.zeros((1, 224, 224, 3), "float32")
stage_0 = stem(image)
print("image", image.shape, "-> stem", tuple(stage_0.shape))
print(
    "stage 0",
    tuple(stage_0.shape),
    "-> downsampling",
    tuple(down(stage_0).shape),
)

# %% [markdown]
# ## Data
#
# A tenth of the training images is held out for validation: the
# learning rate is chosen and the curves are drawn on it; the test split
# is used once, at the end.

# %%
with_masks = data.has_masks(DATASET)
splits = data.load_dataset(
    DATASET,
    image_size=IMAGE_SIZE,
    num_train=NUM_TRAIN,
    num_test=NUM_TEST,
    seed=SEED,
    return_masks=with_masks,
)
(x_train, y_train), (x_test, y_test) = (split[:2] for split in splits)
(x_fit, y_fit), (x_val, y_val) = data.split_validation(
    x_train, y_train, fraction=0.1, seed=SEED
)
names = data.class_names(DATASET)
NUM_CLASSES = len(names)
print(
    f"{DATASET}: {len(x_fit)} training, {len(x_val)} validation and "
    f"{len(x_test)} test images"
)

# %% [markdown]
# ## The small ConvNeXt
#
# `convnext_32px` keeps the design at CIFAR scale: a 2x2 stem (32x32
# images give a 16x16 grid), four stages of 2-2-4-2 blocks and widths
# 32-64-128-256.


# %%
# The recipe's stochastic depth (adapt_recipe leaves it as published).
DROP_PATH_RATE = get_recipe("convnext_32px").drop_path_rate


def build(seed):
    keras.utils.set_random_seed(seed)
    return create_model(
        "convnext_32px",
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        num_classes=NUM_CLASSES,
        drop_path_rate=DROP_PATH_RATE,
        **MODEL,
    )


model = build(SEED)
trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
print(f"{trainable:,} trainable parameters")
stages = model.feature_model()(data.to_model_range(x_test[:1]))
for name, value in stages.items():
    print(f"  {name}: {tuple(value.shape)}")

# %% [markdown]
# ## Training
#
# `get_recipe` holds the paper's ImageNet recipe: 300 epochs of AdamW at
# 4e-3 on batches of 4,096, the first 20 a linear warm-up, then cosine
# decay; weight decay 0.05, label smoothing 0.1, random-resized crops and
# flips, RandAugment, MixUp, CutMix and random erasing. `adapt_recipe`
# applies it to this run's data by stated rules:
#
# - the batch becomes the largest power of two that still gives an epoch
#   20 optimizer steps (the full run asks for 128, see above), and the
#   learning rate follows it by the square root of the batch ratio
#   (Malladi et al.'s rule for Adam);
# - the warm-up keeps its fifteenth of however many epochs run;
# - on 32-pixel images the random-resized crop becomes a pad-and-crop of
#   an eighth of the side, and flips go off for digits, whose labels a
#   mirror changes;
# - RandAugment, erasing, MixUp and CutMix stay on only in a run that
#   shows the model a million images or more (epochs times training
#   images). A CPU-sized run shows tens of thousands, too few steps to fit
#   through them, so it trains without; the full CIFAR-10 run (50 x
#   45,000) keeps them.
#
# The printed table puts the paper's values beside the applied ones, with
# the reason for each change.
#
# First, the learning rate. The adapted rate and a factor of four either
# side each train for a fifth of the epochs, with the recipe adapted again
# to that length, and the best validation accuracy wins.

# %%
recipe = adapt_recipe(
    get_recipe("convnext_32px"),
    num_train=len(x_fit),
    image_size=IMAGE_SIZE,
    mirror_invariant=data.mirror_invariant(DATASET),
    batch_size=BATCH_SIZE,
    epochs=EPOCHS,
)
print(recipe)
probe_epochs = max(1, EPOCHS // 5)
# Adapted again rather than `replace(epochs=...)`, which would keep the
# long run's warm-up and augmentation in a run a fifth as long.
probe = adapt_recipe(
    recipe,
    num_train=len(x_fit),
    image_size=IMAGE_SIZE,
    mirror_invariant=data.mirror_invariant(DATASET),
    batch_size=BATCH_SIZE,
    epochs=probe_epochs,
)
LEARNING_RATES = [recipe.learning_rate * f for f in LEARNING_RATE_FACTORS]
lr_scores = {}
for rate in LEARNING_RATES:
    short = probe.replace(learning_rate=rate)
    result = fit_model(
        build(SEED),
        short,
        (x_fit, y_fit),
        test_data=(x_val, y_val),  # scored on the validation split
        seed=SEED,
        verbose=0,
        validate_each_epoch=False,
    )
    lr_scores[rate] = result.test_accuracy
    print(f"learning rate {rate:g}: validation accuracy {lr_scores[rate]:.3f}")
LEARNING_RATE = max(lr_scores, key=lr_scores.get)
say(
    f"**Chosen:** learning rate {LEARNING_RATE:g} "
    f"({lr_scores[LEARNING_RATE]:.3f} validation accuracy after "
    f"{probe_epochs} epoch(s), against "
    + ", ".join(
        f"{lr_scores[r]:.3f} at {r:g}" for r in lr_scores if r != LEARNING_RATE
    )
    + "). A short run favours fast learners; this is a check, not a "
    "full search."
)

# %% [markdown]
# Then the real run at the chosen rate (the table is printed again when
# the check moved it off the adapted one), once per seed, with a
# checkpoint callback saving the model after every epoch (on Colab, point
# `KVISION_OUTPUT_DIR` at a mounted Google Drive folder to keep it across
# disconnects).

# %%
if LEARNING_RATE != recipe.learning_rate:
    # The table would otherwise give the batch rule as the rate's reason.
    rules = dict(recipe.adaptations)
    adapted = f"{recipe.learning_rate:.4g}"
    rules["learning_rate"] = f"the validation check's (adapted: {adapted})"
    recipe = recipe.replace(
        learning_rate=LEARNING_RATE, adaptations=tuple(rules.items())
    )
    print(recipe)
accuracies = []
for seed in SEEDS:
    candidate = model if seed == SEED else build(seed)
    result = fit_model(
        candidate,
        recipe,
        (x_fit, y_fit),
        test_data=(x_test, y_test),
        validation_data=(x_val, y_val),
        seed=seed,
        verbose=2,
        callbacks=[
            keras.callbacks.ModelCheckpoint(out / f"convnext_seed{seed}.keras")
        ],
    )
    accuracies.append(result.test_accuracy)
    if seed == SEED:
        history, train_seconds = result.history, result.train_seconds
test_accuracy = float(np.mean(accuracies))
print(
    f"test accuracy {test_accuracy:.3f} ± {np.std(accuracies):.3f} over "
    f"{len(SEEDS)} seed(s); the first took {train_seconds:.0f} s"
)

# %%
fig = viz.plot_history(history)
fig.savefig(out / "training_curves.png", dpi=100)
fig

# %%
val_loss = np.asarray(history["val_loss"])
best = int(np.argmin(val_loss))
say(
    f"**What to look for.** Validation accuracy ends at "
    f"{history['val_accuracy'][-1]:.3f} (training, on augmented batches: "
    f"{history['accuracy'][-1]:.3f}); validation loss is lowest at epoch "
    f"{best + 1} of {len(val_loss)}"
    + (
        f" and {val_loss[-1] - val_loss[best]:.3f} higher at the end: it "
        "starts to overfit."
        if val_loss[-1] - val_loss[best] > 0.02
        else ", so the schedule ends at a good point."
    )
)

# %% [markdown]
# ## How far the blocks grew: LayerScale after training
#
# Every block started with its LayerScale at 1e-6. The mean absolute
# factor per block now shows how much each one contributes.

# %%
scales = {
    layer.name: float(
        np.abs(keras.ops.convert_to_numpy(layer.layer_scale.gamma)).mean()
    )
    for layer in model.layers
    if isinstance(layer, layers.ConvNeXtBlock)
}
fig = Figure(figsize=(6, 3))
ax = fig.subplots()
ax.bar(range(len(scales)), list(scales.values()))
ax.axhline(1e-6, color="grey", linestyle=":", label="initial value")
ax.set_yscale("log")
ax.set_xticks(range(len(scales)))
ax.set_xticklabels(
    [n.replace("stage_", "s").replace("_block_", "b") for n in scales],
    fontsize=8,
)
ax.set_ylabel("mean |LayerScale|")
ax.legend()
fig.tight_layout()
fig.savefig(out / "layer_scale.png", dpi=100)
fig

# %%
grown = max(scales, key=scales.get)
say(
    f"**What to look for.** Every block's LayerScale grew from 1e-6 to "
    f"between {min(scales.values()):.1e} and {max(scales.values()):.1e} "
    f"(largest in {grown}): the blocks that matter most for this data "
    "switched themselves on; a block still near 1e-6 would be almost "
    "skipped."
)

# %% [markdown]
# ## Where it looks: class activation maps
#
# Global average pooling, LayerNorm and one dense layer make the head, so
# a class activation map (Zhou et al., 2016) is the last stage's features
# weighted by the head's class weights (scaled by the norm's gamma). It
# lives on the last stage's grid, 2x2 here, which is coarse; the titles
# are *predicted / true* labels.

# %%
shown = x_test[:8]
maps = viz.class_activation_map(model, data.to_model_range(shown))
logits = model(data.to_model_range(shown), training=False)
predicted = np.argmax(keras.ops.convert_to_numpy(logits), axis=-1)
titles = [
    f"{names[p]} / {names[t]}"
    for p, t in zip(predicted, y_test[:8], strict=True)
]
fig = viz.plot_overlays(
    shown, maps, titles=titles, suptitle="ConvNeXt: class activation maps"
)
fig.savefig(out / "class_activation_maps.png", dpi=100)
fig

# %%
say(
    f"**What to look for.** {int((predicted == y_test[:8]).sum())} of these "
    f"8 predictions are right. The maps are {maps.shape[1]}x"
    f"{maps.shape[2]}, the last stage's grid, so they can only say which "
    "part of the image mattered, not its outline."
)

# %% [markdown]
# On `cluttered_digits` and `shapes`, every image comes with the object's
# mask (a digit's strokes), so we can measure how much of each map's mass
# lands on the object, against a map spread evenly (`ratio` > 1 means
# better than chance).

# %%
localization = None
if with_masks:
    test_masks = splits[1][2]
    all_maps = viz.class_activation_map(model, data.to_model_range(x_test))
    localization = viz.localization_score(all_maps, test_masks)
    print(localization)
else:
    print(
        f"{DATASET} has no object masks; try KVISION_DATASET=cluttered_digits."
    )

# %% [markdown]
# ## The paper's numbers beside this run's
#
# The paper reports ImageNet-1k at 224x224 only (its Table 1): ConvNeXt-T,
# 28M parameters, 82.1 % top-1 after 300 epochs. It has no CIFAR result;
# `convnext_32px` is kvision's CIFAR-sized version of the design, so the
# two numbers below describe different tasks.

# %%
say(
    "| | data | model | epochs | top-1 % |\n"
    "| --- | --- | --- | ---: | ---: |\n"
    "| paper, Table 1 | ImageNet-1k | ConvNeXt-T (28M) | 300 | 82.1 |\n"
    f"| this run | {DATASET} ({run.size} size) | convnext_32px "
    f"({trainable / 1e6:.2f}M) | {EPOCHS} "
    f"| {100 * test_accuracy:.1f} ± {100 * np.std(accuracies):.1f} |"
)

# %% [markdown]
# ## The saved model

# %%
saved = out / f"convnext_seed{SEED}.keras"
reloaded = keras.saving.load_model(saved)
images = data.to_model_range(x_test[:16])
difference = np.abs(
    keras.ops.convert_to_numpy(reloaded(images, training=False))
    - keras.ops.convert_to_numpy(model(images, training=False))
).max()
print(f"{saved.name}: {type(reloaded).__name__}")
print(f"largest difference in the logits of 16 test images: {difference:.1e}")

# %% [markdown]
# ## What this run measured

# %%
metrics = {
    "notebook": "04_convnext",
    "backend": keras.backend.backend(),
    "device": run.device,
    "dataset": DATASET,
    "size": run.size,
    "smoke": SMOKE,
    "seeds": list(SEEDS),
    "test_accuracy_per_seed": accuracies,
    "learning_rate_check": {f"{r:g}": a for r, a in lr_scores.items()},
    "learning_rate": LEARNING_RATE,
    "model": "convnext_32px"
    + (f" with {MODEL}" if MODEL else "")
    + f", {trainable:,} trainable parameters",
    # The data's load_dataset arguments and split sizes, and the model's
    # registry name and overrides: the tests recompute numbers from them.
    "registry_name": "convnext_32px",
    "overrides": MODEL,
    "trainable_parameters": trainable,
    "load_dataset": dict(
        image_size=IMAGE_SIZE, num_train=NUM_TRAIN, num_test=NUM_TEST, seed=SEED
    ),
    "split_sizes": dict(
        fit=len(x_fit), validation=len(x_val), test=len(x_test)
    ),
    "recipe": recipe.name,
    "recipe_values": recipe.applied(),
    "epochs": recipe.epochs,
    "train_seconds": round(train_seconds, 1),
    "test_accuracy": float(test_accuracy),
    "mean_layer_scale": scales,
    "localization": localization,
}
(out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
print(json.dumps(metrics, indent=2))
