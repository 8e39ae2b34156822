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
# # MLP-Mixer: token mixing and channel mixing
#
# [![Open In Colab][badge]][colab]
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
# - how to train the small 32x32 Mixer;
# - what its token-mixing MLP learned: each hidden unit is a filter over
#   the patch grid;
# - where the trained model looks (class activation maps, which work for
#   Mixer's average-pooled head).
#
# **Backends:** TensorFlow, JAX and PyTorch; set `KERAS_BACKEND` before
# running (JAX by default).
#
# **Runtime.** Measured on a 2-core CPU without a GPU, shared with other
# jobs: the offline run (`KVISION_DATASET=digits`) took about 6.5 minutes
# with JAX, the fastest backend for this model there; the smoke run
# (`KVISION_SMOKE=1`) took under a minute on each backend. On a Colab GPU,
# the default CIFAR-10 run (50 epochs) should take roughly 15-20 minutes —
# an estimate, not measured.
#
# [badge]: https://colab.research.google.com/assets/colab-badge.svg
# [colab]: https://colab.research.google.com/github/kvision/kvision/blob/main/notebooks/03_mlp_mixer.ipynb

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
    MODEL = dict(hidden_dim=16, depth=1, tokens_mlp_dim=16, channels_mlp_dim=32)
elif OFFLINE:
    EPOCHS, NUM_TRAIN, NUM_TEST = 20, 3000, 1000
    MODEL = {}
else:
    EPOCHS, NUM_TRAIN, NUM_TEST = 50, None, None
    MODEL = {}
EPOCHS = int(os.environ.get("KVISION_EPOCHS", EPOCHS))
RECIPE = "quick" if SMOKE or OFFLINE else "paper"
OUTPUT_DIR = os.environ.get(
    "KVISION_OUTPUT_DIR", "outputs/notebooks/03_mlp_mixer"
)

# %%
# %matplotlib inline
import json
import pathlib

import keras
import numpy as np

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
# ## Training the small Mixer
#
# `mixer_32px`: 4x4 patches (an 8x8 grid of 64 tokens), width 128, 8
# blocks, token-mixing width 64 and channel-mixing width 512. The recipe
# follows the paper's (AdamW with warm-up, gradient clipping, weight
# decay, stochastic depth and, for CIFAR, RandAugment and MixUp). Flips
# are off for digits.

# %%
keras.utils.set_random_seed(SEED)
recipe = get_recipe("mixer_32px", kind=RECIPE, epochs=EPOCHS)
recipe = recipe.replace(flip=DATASET != "digits")
print(recipe)
model = create_model(
    "mixer_32px",
    input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
    num_classes=NUM_CLASSES,
    drop_path_rate=recipe.drop_path_rate,
    **MODEL,
)
trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
print(f"{trainable:,} trainable parameters")
before_training = viz.token_mixing_weights(model, block=0)

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

# %% [markdown]
# ## Where it looks: class activation maps
#
# Mixer's head is LayerNorm, an average over tokens and one dense layer, so
# each token's features weighted by the class's head weights give a class
# activation map on the 8x8 patch grid (Zhou et al., 2016). Titles are
# *predicted / true* labels.

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
    shown, maps, titles=titles, suptitle="MLP-Mixer: class activation maps"
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
    "notebook": "03_mlp_mixer",
    "backend": keras.backend.backend(),
    "dataset": DATASET,
    "smoke": SMOKE,
    "model": "mixer_32px"
    + (f" with {MODEL}" if MODEL else "")
    + f", {trainable:,} trainable parameters",
    "recipe": recipe.name,
    "epochs": recipe.epochs,
    "train_seconds": round(train_seconds, 1),
    "test_accuracy": float(test_accuracy),
    "token_mixing_drift_block_0": drift,
    "channel_mixing_moves_tokens": channels_only,
    "block_moves_tokens": whole_block,
    "localization": localization,
}
(out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
print(json.dumps(metrics, indent=2))
