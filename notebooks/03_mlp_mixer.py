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
# # MLP-Mixer: token mixing and channel mixing
#
# **On Colab:** download this notebook's `.ipynb` and open it with Colab's
# *File, Upload notebook* (there is no public repository to link an *Open in
# Colab* badge to yet). It asks Colab for a GPU; if it opens on a CPU,
# choose one in *Runtime, Change runtime type*.
#
# **Paper:** Ilya Tolstikhin, Neil Houlsby, Alexander Kolesnikov, Lucas
# Beyer et al., *MLP-Mixer: An all-MLP Architecture for Vision*
# ([arXiv:2105.01601](https://arxiv.org/abs/2105.01601)).
#
# **What you will learn**
#
# - how a Mixer block moves information with two MLPs only: one across
#   patches (*token mixing*, the same MLP for every channel) and one across
#   channels (*channel mixing*, the same MLP for every patch);
# - how to train the small 32x32 Mixer, watch it on a held-out
#   validation split, checkpoint it and reload it;
# - what its token-mixing MLP learned: each hidden unit is a filter over
#   the patch grid;
# - where the trained model looks (class activation maps, which work for
#   Mixer's average-pooled head).
#
# **Backends:** TensorFlow, JAX and PyTorch: pick one in the form below.
#
# **Runtime.** Measured on a 2-core CPU without a GPU, shared with other
# jobs: the CPU-sized run on digits took about 6.5 minutes with JAX; the
# smoke run (`KVISION_SMOKE=1`) under a minute on each backend. On a Colab
# GPU, the full CIFAR-10 run (50 epochs) should take roughly 15-20 minutes:
# an estimate, not measured.

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
# 3,000 training images, fewer epochs): the next cell says which, and why.
# Both use the same recipe, adapted to the data (see Training). `digits`
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
    "KVISION_OUTPUT_DIR", "outputs/notebooks/03_mlp_mixer"
)

# %% [markdown]
# ## Device and run size

# %%
run = notebook.start(BACKEND, DATASET, size=SIZE)
SMOKE = run.smoke
IMAGE_SIZE = 32
if run.size == "smoke":
    epochs, NUM_TRAIN, NUM_TEST = 1, 64, 32
    MODEL = dict(hidden_dim=16, depth=1, tokens_mlp_dim=16, channels_mlp_dim=32)
elif run.size == "cpu":
    epochs, NUM_TRAIN, NUM_TEST = 20, 3000, 1000
    MODEL = {}
else:
    epochs, NUM_TRAIN, NUM_TEST = 50, None, None
    MODEL = {}
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
# ## Token mixing and channel mixing
#
# Mixer cuts the image into patches and embeds them like a ViT, giving a
# table of `N` tokens by `C` channels. Each block then applies, each half
# with its own LayerNorm and residual connection:
#
# ```
# U = X + MLP_tokens(LN(X)^T)^T    # along the patches, per channel
# Y = U + MLP_channels(LN(U))      # along the channels, per patch
# ```
#
# Token mixing is where patches talk to each other — the job attention does
# in a ViT, with fixed weights instead of input-dependent ones. A
# `MixerBlock` on its own, with 64 tokens (an 8x8 grid) of 128 channels:

# %%
block = layers.MixerBlock(tokens_mlp_dim=64, channels_mlp_dim=512)
tokens = np.random.default_rng(SEED).normal(size=(1, 64, 128))
tokens = tokens.astype("float32")
mixed = block(tokens)
for half in (block.token_mlp, block.channel_mlp):
    kernels = [
        tuple(w.shape) for w in half.trainable_weights if len(w.shape) == 2
    ]
    print(f"{half.name:15s} dense kernels {kernels}")

# %% [markdown]
# Change a single patch and see which outputs move. The channel-mixing half
# alone only touches that patch; the whole block, through token mixing,
# changes every patch. (The change is random: adding the same value to
# every channel of a token would vanish in the LayerNorm.)

# %%
nudged = tokens.copy()
nudged[0, 0] += np.random.default_rng(SEED + 1).normal(size=128)


def moved(before, after):
    """How many tokens' outputs changed."""
    difference = keras.ops.convert_to_numpy(after - before)
    return int((np.abs(difference).max(axis=-1) > 1e-6).sum())


channels_only = moved(
    block.channel_mlp(block.channel_norm(tokens)),
    block.channel_mlp(block.channel_norm(nudged)),
)
whole_block = moved(mixed, block(nudged))
print(f"channel mixing alone: {channels_only} of 64 tokens changed")
print(f"the whole block:      {whole_block} of 64 tokens changed")

# %% [markdown]
# ## Data
#
# A tenth of the training images is held out for validation (the
# curves); the test split is used once, at the end.

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
# ## Training the small Mixer
#
# `mixer_32px`: 4x4 patches (an 8x8 grid of 64 tokens), width 128, 8
# blocks, token-mixing width 64 and channel-mixing width 512.
#
# The paper trains at ImageNet scale and publishes no small-data recipe,
# so `get_recipe` holds kvision's, built from the ingredients the paper
# names: 100 CIFAR-sized epochs of AdamW at 1e-3 on batches of 128, the
# first tenth a linear warm-up, gradient clipping at 1, weight decay 0.1,
# stochastic depth 0.1, pad-and-crop and flips, RandAugment and MixUp.
# `adapt_recipe` applies it to this run's data by stated rules: the warm-up
# keeps its tenth of however many epochs run; the batch would shrink (the
# learning rate linearly with it) only if an epoch had fewer than 20
# optimizer steps; flips go off for digits, whose labels a mirror changes;
# and RandAugment and MixUp stay on only in a run that shows the model a
# million images or more (epochs times training images). A CPU-sized run
# shows tens of thousands, too few steps to fit through them, so it trains
# without; the full CIFAR-10 run (50 x 45,000) keeps them. The printed
# table puts the recipe's values beside the applied ones, with the reason
# for each change.
#
# A checkpoint callback saves the model after every epoch (on Colab, point
# `KVISION_OUTPUT_DIR` at a mounted Google Drive folder to keep it across
# disconnects).

# %%
recipe = adapt_recipe(
    get_recipe("mixer_32px"),
    num_train=len(x_fit),
    image_size=IMAGE_SIZE,
    mirror_invariant=data.mirror_invariant(DATASET),
    epochs=EPOCHS,
)
print(recipe)


def build(seed):
    keras.utils.set_random_seed(seed)
    return create_model(
        "mixer_32px",
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        num_classes=NUM_CLASSES,
        drop_path_rate=recipe.drop_path_rate,
        **MODEL,
    )


accuracies = []
for seed in SEEDS:
    candidate = build(seed)
    if seed == SEED:
        model = candidate  # looked inside below
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        print(f"{trainable:,} trainable parameters")
        before_training = viz.token_mixing_weights(model, block=0)
    checkpoint = out / f"mixer_seed{seed}.keras"
    result = fit_model(
        candidate,
        recipe,
        (x_fit, y_fit),
        test_data=(x_test, y_test),
        validation_data=(x_val, y_val),
        seed=seed,
        verbose=2,
        callbacks=[keras.callbacks.ModelCheckpoint(checkpoint)],
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
    f"{history['val_accuracy'][-1]:.3f}, training accuracy (on augmented "
    f"batches) at {history['accuracy'][-1]:.3f}. Validation loss is lowest "
    f"at epoch {best + 1} of {len(val_loss)}"
    + (
        f", then rises by {val_loss[-1] - val_loss[best]:.3f}: Mixers "
        "overfit small datasets quickly, which is why the paper trains "
        "them on very large ones."
        if val_loss[-1] - val_loss[best] > 0.02
        else ", still falling at the end: more epochs may help."
    )
)

# %% [markdown]
# ## What token mixing learned
#
# The first dense layer of a block's token-mixing MLP has one weight per
# patch for each hidden unit: put back on the 8x8 patch grid, each hidden
# unit is a spatial filter (blue negative, red positive). The paper's
# Figure 5 shows such filters for ImageNet: local detectors, pairs of
# opposite sign, and larger areas deeper in the network. At initialisation
# they are noise:

# %%
fig = viz.plot_token_mixing(before_training, count=16)
fig.suptitle("block 0, before training")
fig.savefig(out / "token_mixing_init.png", dpi=100)
fig

# %% [markdown]
# After training, the first and the last block. The paper's filters come
# from ImageNet-scale training; after a short run on a small dataset they
# keep much of their initial noise, and the drift printed further down
# says how much they moved.

# %%
depth = model.get_config()["depth"]
first = viz.token_mixing_weights(model, block=0)
fig = viz.plot_token_mixing(first, count=16)
fig.suptitle("block 0, trained")
fig.savefig(out / "token_mixing_block_0.png", dpi=100)
fig

# %%
last = viz.token_mixing_weights(model, block=-1)
fig = viz.plot_token_mixing(last, count=16)
fig.suptitle(f"block {depth - 1}, trained")
fig.savefig(out / "token_mixing_last_block.png", dpi=100)
fig

# %% [markdown]
# How far training moved the first block's filters from their
# initialisation, relative to their size:

# %%
drift = float(
    np.linalg.norm(first - before_training) / np.linalg.norm(before_training)
)
print(f"relative change of block 0's token-mixing filters: {drift:.2f}")


def neighbour_correlation(filters):
    """Mean correlation of each filter's weight with its right and lower
    neighbour's on the patch grid: 0 for noise, near 1 for smooth maps."""
    pairs = [
        (filters[:, :, :-1], filters[:, :, 1:]),
        (filters[:, :-1, :], filters[:, 1:, :]),
    ]
    return float(
        np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in pairs])
    )


smooth = {
    "initial": neighbour_correlation(before_training),
    "block 0": neighbour_correlation(first),
    f"block {depth - 1}": neighbour_correlation(last),
}
say(
    f"**What to look for.** Training moved block 0's filters by "
    f"{100 * drift:.0f} % of their size. Spatial structure shows as "
    "neighbouring patches getting similar weights; the correlation between "
    "neighbours is "
    + ", ".join(f"{k} {v:.2f}" for k, v in smooth.items())
    + " (0 means noise, 1 smooth blobs like the paper's Figure 5)."
)

# %% [markdown]
# ## Where it looks: class activation maps
#
# Mixer's head is LayerNorm, an average over tokens and one dense layer, so
# each token's features weighted by the class's head weights give a class
# activation map on the 8x8 patch grid (Zhou et al., 2016). Titles are
# *predicted / true* labels.

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
    shown, maps, titles=titles, suptitle="MLP-Mixer: class activation maps"
)
fig.savefig(out / "class_activation_maps.png", dpi=100)
fig

# %%
say(
    f"**What to look for.** {int((predicted == y_test[:8]).sum())} of these "
    "8 predictions are right. The maps live on the 8x8 token grid; bright "
    "tokens add most to the predicted class's logit."
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
# The paper trains Mixers on ImageNet and on much larger datasets
# (ImageNet-21k, JFT-300M), and reports CIFAR-10 only for models pre-trained
# there and fine-tuned (its transfer table, Table 2); it has no from-scratch
# CIFAR result to put beside this run. What transfers is the shape of the
# result: Mixers need a lot of data, so on small datasets expect them to
# trail convolutional models of the same size.

# %%
say(
    f"This run: `mixer_32px` ({trainable:,} parameters) trained from "
    f"scratch on {len(x_fit):,} {DATASET} images for {EPOCHS} epochs: "
    f"test accuracy {test_accuracy:.3f} ± {np.std(accuracies):.3f} over "
    f"{len(SEEDS)} seed(s)."
)

# %% [markdown]
# ## The saved model

# %%
saved = out / f"mixer_seed{SEED}.keras"
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
    "notebook": "03_mlp_mixer",
    "backend": keras.backend.backend(),
    "device": run.device,
    "dataset": DATASET,
    "size": run.size,
    "smoke": SMOKE,
    "seeds": list(SEEDS),
    "test_accuracy_per_seed": accuracies,
    "model": "mixer_32px"
    + (f" with {MODEL}" if MODEL else "")
    + f", {trainable:,} trainable parameters",
    # The data's load_dataset arguments and split sizes, and the model's
    # registry name and overrides: the tests recompute numbers from them.
    "registry_name": "mixer_32px",
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
    "token_mixing_drift_block_0": drift,
    "token_mixing_neighbour_correlation": smooth,
    "channel_mixing_moves_tokens": channels_only,
    "block_moves_tokens": whole_block,
    "localization": localization,
}
(out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
print(json.dumps(metrics, indent=2))
