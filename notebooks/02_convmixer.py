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
# # ConvMixer: patches, then depthwise and pointwise mixing
#
# [![Open In Colab][badge]][colab]
#
# **Paper:** Asher Trockman and J. Zico Kolter, *Patches Are All You
# Need?* ([arXiv:2201.09792](https://arxiv.org/abs/2201.09792)).
#
# **What you will learn**
#
# - how ConvMixer cuts an image into patches with one strided convolution
#   and then alternates *spatial* mixing (a depthwise convolution, one
#   filter per channel) with *channel* mixing (a pointwise 1x1
#   convolution) — the same split as attention and MLP in a ViT, done with
#   plain convolutions;
# - how to train ConvMixer-256/8 with the paper's one-cycle AdamW recipe;
# - where the trained model looks (class activation maps) and what its
#   depthwise kernels learned;
# - what kernel size and patch size buy at small scale (a small sweep).
#
# **Backends:** TensorFlow, JAX and PyTorch; set `KERAS_BACKEND` before
# running (JAX by default). On a CPU, TensorFlow ran this notebook fastest
# in our measurements.
#
# **Runtime.** Measured on a 2-core CPU without a GPU, shared with other
# jobs: the offline run (`KVISION_DATASET=digits`, the compact CPU
# configuration below) took about 6.5 minutes with TensorFlow, the fastest
# backend for this model there; the smoke run (`KVISION_SMOKE=1`) took
# under a minute on each backend. On a Colab GPU, the default CIFAR-10 run
# (ConvMixer-256/8 for 25 epochs, then the sweep) should take roughly
# 20-30 minutes — an estimate, not measured.
#
# [badge]: https://colab.research.google.com/assets/colab-badge.svg
# [colab]: https://colab.research.google.com/github/kvision/kvision/blob/main/notebooks/02_convmixer.ipynb

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
# CIFAR-10, the paper's dataset, is the default; it is downloaded by Keras.
# Without a network, `KVISION_DATASET=digits` (scikit-learn's handwritten
# digits) or `shapes` (generated shapes with object masks) work offline;
# they select a narrower ConvMixer and the quick recipe (no RandAugment),
# sized for a CPU. `KVISION_SMOKE=1` shrinks everything to a toy run that
# only checks the notebook works.

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
    MODEL = dict(dim=16, depth=1, patch_size=4, kernel_size=3)
    SWEEP = dict(kernels=(3, 5), patches=(4,), epochs=1, dim=16, depth=1)
elif OFFLINE:
    EPOCHS, NUM_TRAIN, NUM_TEST = 10, 3000, 1000
    MODEL = dict(dim=128, depth=6, patch_size=2, kernel_size=5)
    SWEEP = dict(kernels=(3, 5, 9), patches=(2, 4), epochs=10, dim=64, depth=4)
else:
    # ConvMixer-256/8 and the official CIFAR-10 script's 25 epochs.
    EPOCHS, NUM_TRAIN, NUM_TEST = 25, None, None
    MODEL = {}
    SWEEP = dict(kernels=(3, 5, 9), patches=(2, 4), epochs=5, dim=128, depth=4)
EPOCHS = int(os.environ.get("KVISION_EPOCHS", EPOCHS))
RECIPE = "quick" if SMOKE or OFFLINE else "paper"
OUTPUT_DIR = os.environ.get(
    "KVISION_OUTPUT_DIR", "outputs/notebooks/02_convmixer"
)

# %%
# %matplotlib inline
import json
import pathlib

import keras
import numpy as np
from matplotlib.figure import Figure

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
# ## Data
#
# `load_dataset` returns uint8 NumPy arrays, the same on every backend.
# `shapes` is generated on the fly: only the number of images asked for
# is made.

# %%
(x_train, y_train), (x_test, y_test) = load_dataset(
    DATASET,
    image_size=IMAGE_SIZE,
    num_train=NUM_TRAIN,
    num_test=NUM_TEST,
    seed=SEED,
)
names = class_names(DATASET)
NUM_CLASSES = len(names)
print(f"{DATASET}: {len(x_train)} training and {len(x_test)} test images")

# %% [markdown]
# ## Patches, then mixing
#
# ConvMixer's stem is a convolution whose kernel and stride are both the
# patch size `p`: every `p x p` patch becomes one `h`-dimensional vector,
# exactly a ViT's patch embedding, but kept on its 2-D grid. Each of the
# `d` blocks then does
#
# ```
# z' = BN(GELU(DepthwiseConv_k(z))) + z      # mixes space, per channel
# z  = BN(GELU(PointwiseConv(z')))           # mixes channels, per place
# ```
#
# The depthwise convolution plays the role of attention (moving
# information between patches, here only within a `k x k` neighbourhood),
# the pointwise one the role of the MLP. The grid keeps its size through
# the whole network — no downsampling, like a transformer.

# %%
keras.utils.set_random_seed(SEED)
model = create_model(
    "convmixer_256_8",
    input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
    num_classes=NUM_CLASSES,
    **MODEL,
)
config = model.get_config()
dim, depth = config["dim"], config["depth"]
patch, kernel = config["patch_size"], config["kernel_size"]
trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
print(f"ConvMixer-{dim}/{depth}, patch {patch}, kernel {kernel}:")
print(f"  {trainable:,} trainable parameters")
block = model.get_layer("block_0")
for sublayer in (
    block.depthwise,
    block.depthwise_norm,
    block.pointwise,
    block.pointwise_norm,
):
    shapes = [tuple(w.shape) for w in sublayer.trainable_weights]
    print(f"  block_0.{sublayer.name}: {type(sublayer).__name__} {shapes}")

# %% [markdown]
# The image cut into the stem's patches, and a few channels of the
# (untrained) stem's output: one value per patch and channel.

# %%
image = x_test[0]
stem = keras.Model(model.input, model.get_layer("stem").output)
embedded = keras.ops.convert_to_numpy(stem(image[None] / 255.0))[0]
fig = Figure(figsize=(9, 2.2))
axes = fig.subplots(1, 5)
axes[0].imshow(image)
for edge in range(0, IMAGE_SIZE + 1, patch):
    axes[0].axhline(edge - 0.5, color="white", linewidth=0.5)
    axes[0].axvline(edge - 0.5, color="white", linewidth=0.5)
axes[0].set_title(f"{patch}x{patch} patches", fontsize=9)
for i, ax in enumerate(axes[1:]):
    ax.imshow(embedded[..., i], cmap="viridis")
    ax.set_title(f"stem channel {i}", fontsize=9)
for ax in axes:
    ax.set_axis_off()
fig.tight_layout()
fig.savefig(out / "patches.png", dpi=100)
fig

# %% [markdown]
# ## Training
#
# `get_recipe` holds the paper's recipe as data: AdamW, a one-cycle
# learning rate (up to the peak at 40 % of training, down to 1/20 of it at
# 80 %, then to zero), gradient clipping and, for CIFAR, RandAugment and
# random erasing. `fit_model` compiles the model with the recipe's
# optimizer and loss and trains it on batches augmented with Keras layers,
# so the same code runs on every backend. Horizontal flips make no sense
# for digits, so they are off there.

# %%
recipe = get_recipe("convmixer_256_8", kind=RECIPE, epochs=EPOCHS)
recipe = recipe.replace(flip=DATASET != "digits")
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
# ## Where it looks: class activation maps
#
# ConvMixer ends in global average pooling and one dense layer, so the
# logit of class `k` is the average over positions of
# `sum_c w_ck f_c(x, y)`. That sum, before averaging, is the class
# activation map (Zhou et al., 2016): no gradients needed, so it works the
# same on every backend. Titles are *predicted / true* labels.

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
    shown, maps, titles=titles, suptitle="ConvMixer: class activation maps"
)
fig.savefig(out / "class_activation_maps.png", dpi=100)
fig

# %% [markdown]
# ## What the depthwise kernels learned
#
# The paper shows that the depthwise kernels of a large ConvMixer trained
# on ImageNet look like smooth blobs and oriented edges, with more diffuse
# ones deeper in the network. Here are the first 16 channels of the first
# and the last block of ours (each kernel on its own colour range); after a
# short run on a small dataset, expect much less structure.

# %%
blocks = ["block_0", f"block_{depth - 1}"]
fig = Figure(figsize=(8, 0.8 * len(blocks) + 0.2))
axes = fig.subplots(len(blocks), 16, squeeze=False)
for row, name in enumerate(blocks):
    weights = model.get_layer(name).depthwise.kernel
    weights = keras.ops.convert_to_numpy(weights)[:, :, :16, 0]
    for channel in range(weights.shape[-1]):
        axes[row, channel].imshow(weights[:, :, channel], cmap="RdBu_r")
    for ax in axes[row]:
        ax.set_axis_off()
    axes[row, 0].set_title(name, fontsize=8, loc="left")
fig.tight_layout()
fig.savefig(out / "depthwise_kernels.png", dpi=100)
fig

# %% [markdown]
# ## Kernel size and patch size
#
# The paper's central ablation: bigger depthwise kernels (more spatial
# mixing per block) and smaller patches (a finer grid, more compute) both
# help on ImageNet. Here is the same experiment in miniature: a narrower
# and shallower ConvMixer, the same recipe and data for every setting.
#
# One thing to keep in mind at small depth: a pixel can only influence
# outputs within the network's receptive field, which grows by `k - 1`
# grid cells per block, i.e. `p * (1 + d * (k - 1))` pixels for patch `p`,
# kernel `k` and `d` blocks. With few blocks, a small kernel on a fine
# grid may not even cover a 32-pixel image; the table prints it.

# %%
sweep = []
sweep_recipe = recipe.replace(epochs=SWEEP["epochs"])
for patch_size in SWEEP["patches"]:
    for kernel_size in SWEEP["kernels"]:
        keras.utils.set_random_seed(SEED)
        small = create_model(
            "convmixer_256_8",
            input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
            num_classes=NUM_CLASSES,
            patch_size=patch_size,
            kernel_size=kernel_size,
            dim=SWEEP["dim"],
            depth=SWEEP["depth"],
        )
        result = fit_model(
            small,
            sweep_recipe,
            (x_train, y_train),
            (x_test, y_test),
            SEED,
            verbose=0,
            validate_each_epoch=False,
        )
        sweep.append(
            dict(
                patch_size=patch_size,
                kernel_size=kernel_size,
                receptive_field_px=patch_size
                * (1 + SWEEP["depth"] * (kernel_size - 1)),
                test_accuracy=result.test_accuracy,
                train_seconds=round(result.train_seconds, 1),
            )
        )
        print(sweep[-1])

# %%
fig = Figure(figsize=(5, 3.5))
ax = fig.subplots()
for patch_size in SWEEP["patches"]:
    rows = [r for r in sweep if r["patch_size"] == patch_size]
    ax.plot(
        [r["kernel_size"] for r in rows],
        [r["test_accuracy"] for r in rows],
        marker="o",
        label=f"patch {patch_size}",
    )
    for row in rows:
        ax.annotate(
            f"{row['receptive_field_px']} px",
            (row["kernel_size"], row["test_accuracy"]),
            textcoords="offset points",
            xytext=(4, -10),
            fontsize=7,
        )
ax.set_xlabel("depthwise kernel size")
ax.set_ylabel("test accuracy")
ax.set_xticks(SWEEP["kernels"])
ax.set_title(
    f"{SWEEP['epochs']} epochs per setting (labels: receptive field)",
    fontsize=9,
)
ax.legend()
fig.tight_layout()
fig.savefig(out / "kernel_patch_sweep.png", dpi=100)
fig

# %% [markdown]
# ## What this run measured

# %%
metrics = {
    "notebook": "02_convmixer",
    "backend": keras.backend.backend(),
    "dataset": DATASET,
    "smoke": SMOKE,
    "model": f"ConvMixer-{dim}/{depth} (patch {patch}, kernel {kernel})",
    "trainable_parameters": trainable,
    "recipe": recipe.name,
    "epochs": recipe.epochs,
    "train_seconds": round(train_seconds, 1),
    "test_accuracy": float(test_accuracy),
    "sweep": sweep,
}
(out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
print(json.dumps(metrics, indent=2))
