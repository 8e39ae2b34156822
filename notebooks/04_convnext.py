# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
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
# [![Open In Colab][badge]][colab]
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
# - how to train the small 32x32 ConvNeXt, and where it looks (class
#   activation maps).
#
# **Backends:** TensorFlow, JAX and PyTorch; set `KERAS_BACKEND` before
# running (JAX by default).
#
# **Runtime.** Measured on a 2-core CPU without a GPU, shared with other
# jobs: the offline run (`KVISION_DATASET=digits`) took about 4.5 minutes
# with TensorFlow, the fastest backend for this model there; the smoke run
# (`KVISION_SMOKE=1`) took under a minute on each backend. On a Colab GPU,
# the default CIFAR-10 run (50 epochs) should take roughly 15-20 minutes —
# an estimate, not measured.
#
# [badge]: https://colab.research.google.com/assets/colab-badge.svg
# [colab]: https://colab.research.google.com/github/kvision/kvision/blob/main/notebooks/04_convnext.ipynb

# %% [markdown]
# ## Setup
#
# On Colab, this installs kvision; Keras and all three backends are already
# there. Elsewhere, install `kvision[notebooks]` and a backend yourself.

# %%
import subprocess
import sys

if "google.colab" in sys.modules:
    # A `%pip` magic cannot sit under an `if` in a py:percent script.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "kvision[examples] @ git+https://github.com/kvision/kvision",
        ],
        check=True,
    )

# %% [markdown]
# ## Parameters
#
# CIFAR-10 is the default (downloaded by Keras). Without a network,
# `KVISION_DATASET=digits` (scikit-learn's handwritten digits) or `shapes`
# (generated shapes with object masks) work offline, with the quick recipe
# (no RandAugment or MixUp) and fewer epochs, sized for a CPU.
# `KVISION_SMOKE=1` shrinks everything to a toy run that only checks the
# notebook works.

# %% tags=["parameters"]
import os

# The backend is fixed when keras is first imported, so set it before.
os.environ.setdefault("KERAS_BACKEND", "jax")
SMOKE = os.environ.get("KVISION_SMOKE") == "1"
DATASET = os.environ.get("KVISION_DATASET", "cifar10")
OFFLINE = DATASET in ("digits", "shapes")
IMAGE_SIZE = 32
SEED = 0
if SMOKE:
    EPOCHS, NUM_TRAIN, NUM_TEST = 1, 64, 32
    MODEL = dict(depths=(1, 1), dims=(16, 32))
elif OFFLINE:
    EPOCHS, NUM_TRAIN, NUM_TEST = 30, 3000, 1000
    MODEL = {}
else:
    EPOCHS, NUM_TRAIN, NUM_TEST = 50, None, None
    MODEL = {}
EPOCHS = int(os.environ.get("KVISION_EPOCHS", EPOCHS))
RECIPE = "quick" if SMOKE or OFFLINE else "paper"
# The paper's peak rate, 4e-3 at batch 4096 for ImageNet, scales linearly
# to 1.25e-4 at batch 128: too timid for a from-scratch run this short.
LEARNING_RATE = 2e-3
BATCH_SIZE = 128
OUTPUT_DIR = os.environ.get(
    "KVISION_OUTPUT_DIR", "outputs/notebooks/04_convnext"
)

# %%
# %matplotlib inline
import json
import pathlib

import keras
import numpy as np
from matplotlib.figure import Figure

from kvision import layers
from kvision import viz
from kvision.data import class_names
from kvision.data import load_dataset
from kvision.models import create_model
from kvision.training import get_recipe
from kvision.training.fit import fit_model

out = pathlib.Path(OUTPUT_DIR)
out.mkdir(parents=True, exist_ok=True)
print("Keras", keras.__version__, "on", keras.backend.backend())

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

# %%
with_masks = DATASET == "shapes"
splits = load_dataset(
    DATASET,
    image_size=IMAGE_SIZE,
    num_train=NUM_TRAIN,
    num_test=NUM_TEST,
    seed=SEED,
    return_masks=with_masks,
)
(x_train, y_train), (x_test, y_test) = (split[:2] for split in splits)
names = class_names(DATASET)
NUM_CLASSES = len(names)
print(f"{DATASET}: {len(x_train)} training and {len(x_test)} test images")

# %% [markdown]
# ## The small ConvNeXt
#
# `convnext_32px` keeps the design at CIFAR scale: a 2x2 stem (32x32
# images give a 16x16 grid), four stages of 2-2-4-2 blocks and widths
# 32-64-128-256.

# %%
keras.utils.set_random_seed(SEED)
model = create_model(
    "convnext_32px",
    input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
    num_classes=NUM_CLASSES,
    **MODEL,
)
trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
print(f"{trainable:,} trainable parameters")
stages = model.feature_model()(x_test[:1] / 255.0)
for name, value in stages.items():
    print(f"  {name}: {tuple(value.shape)}")

# %% [markdown]
# ## Training
#
# The paper's recipe (AdamW, warm-up then cosine decay, label smoothing,
# stochastic depth and, for CIFAR, RandAugment, MixUp, CutMix and random
# erasing) comes from `get_recipe`, at batch 128 and a learning rate suited
# to it. Flips are off for digits.

# %%
recipe = get_recipe("convnext_32px", kind=RECIPE, epochs=EPOCHS)
recipe = recipe.replace(
    batch_size=BATCH_SIZE,
    learning_rate=LEARNING_RATE,
    flip=DATASET != "digits",
)
print(recipe)
result = fit_model(
    model, recipe, (x_train, y_train), (x_test, y_test), SEED, verbose=2
)
history, train_seconds = result.history, result.train_seconds
test_accuracy = result.test_accuracy
print(f"test accuracy {test_accuracy:.3f} after {train_seconds:.0f} s")

# %%
fig = viz.plot_history(history)
fig.savefig(out / "training_curves.png", dpi=100)
fig

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
maps = viz.class_activation_map(model, shown / 255.0)
logits = model(shown / 255.0, training=False)
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

# %% [markdown]
# On `shapes`, every image comes with the object's mask, so we can
# measure how much of each map's mass lands on the object, against a map
# spread evenly (`ratio` > 1 means better than chance).

# %%
localization = None
if with_masks:
    test_masks = splits[1][2]
    all_maps = viz.class_activation_map(model, x_test / 255.0)
    localization = viz.localization_score(all_maps, test_masks)
    print(localization)
else:
    print(f"{DATASET} has no object masks; try KVISION_DATASET=shapes.")

# %% [markdown]
# ## What this run measured

# %%
metrics = {
    "notebook": "04_convnext",
    "backend": keras.backend.backend(),
    "dataset": DATASET,
    "smoke": SMOKE,
    "model": "convnext_32px"
    + (f" with {MODEL}" if MODEL else "")
    + f", {trainable:,} trainable parameters",
    "recipe": recipe.name,
    "epochs": recipe.epochs,
    "train_seconds": round(train_seconds, 1),
    "test_accuracy": float(test_accuracy),
    "mean_layer_scale": scales,
    "localization": localization,
}
(out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
print(json.dumps(metrics, indent=2))
