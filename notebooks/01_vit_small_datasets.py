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
# # Vision Transformers for small datasets: SPT and LSA
#
# **On Colab:** download this notebook's `.ipynb` and open it with Colab's
# *File, Upload notebook* (there is no public repository to link an *Open in
# Colab* badge to yet). It asks Colab for a GPU; if it opens on a CPU,
# choose one in *Runtime, Change runtime type*.
#
# **Paper:** Seung Hoon Lee, Seunghyun Lee and Byung Cheol Song, *Vision
# Transformer for Small-Size Datasets*
# ([arXiv:2112.13492](https://arxiv.org/abs/2112.13492)).
#
# **What you will learn**
#
# - what Shifted Patch Tokenization (SPT) feeds the transformer: each
#   patch together with its half-patch-shifted neighbours;
# - what Locality Self-Attention (LSA) changes, on the layer itself: no
#   token may attend to itself, and each head learns its own softmax
#   temperature;
# - how to build an SL-ViT from `kvision.layers` in a few lines;
# - how a plain ViT and an SL-ViT compare when trained from scratch under
#   the same budget, over several seeds: accuracy (mean ± std) against a
#   linear probe on the pixels, how fast each learns, how each holds up on
#   a quarter and a half of the training data, and how sharp their
#   attention is (divergence from uniform, attention distance);
# - how to look at class-token attention, head by head, and at attention
#   rollout through all blocks; how to save a trained model and reload it.
#
# **Backends:** TensorFlow, JAX and PyTorch: pick one in the form below.
#
# **Runtime.** Measured on a 2-core CPU without a GPU: the CPU-sized run
# on digits (`bash scripts/main-job.sh`: two models, three seeds, 50
# epochs each, on the whole training split and again on a quarter and a
# half of it) took 40 minutes with JAX on a quiet machine (19 for the
# whole split, 21 for the smaller ones: they keep the same number of
# optimizer steps); the smoke run (`KVISION_SMOKE=1`) takes a minute or
# two. On a Colab GPU, the full CIFAR-10 run (both paper-size models, 50
# epochs, one seed, then a tenth and a quarter of the data) should take
# roughly 1.5-2 hours: an estimate, not measured.

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
# On Colab these lines are a form. `SIZE="auto"` picks the papers' models
# and recipe on a GPU or TPU, and a CPU-sized run otherwise (narrower
# models, at most 3,000 training images): the next cell says which, and why.
# Either way the paper's recipe is adapted to the data by stated rules,
# printed below. `digits` (scikit-learn's handwritten digits),
# `cluttered_digits` (the same digits at random sizes and places on textured
# clutter, with stroke masks: models learn it at CPU budgets, unlike
# `shapes`) and `shapes` (generated shapes with object masks) need no
# network and always run CPU-sized. `EPOCHS` and `SEEDS` left at `None` take
# the size's defaults (3 seeds on a CPU, 1 on a GPU). Environment variables,
# when set, win over the form: the tests and `scripts/main-job.sh` choose
# this way (`KVISION_SMOKE=1` is a toy run that only checks the notebook
# works).

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
    "KVISION_OUTPUT_DIR", "outputs/notebooks/01_vit_small_datasets"
)

# %% [markdown]
# ## Device and run size
#
# `notebook.start` sets the Keras backend (it must come before the first
# `import keras`; if Keras was already imported with another backend, it
# says that the session needs a restart), reports the device and picks the
# run size.

# %%
run = notebook.start(BACKEND, DATASET, size=SIZE)
SMOKE = run.smoke
IMAGE_SIZE = 32
PATCH_SIZE = 4
# FRACTIONS: the shares of the training split the small-data comparison
# below trains on, besides the whole split.
if run.size == "smoke":
    epochs, NUM_TRAIN, NUM_TEST, seeds = 1, 64, 32, 1
    WIDTH = dict(embed_dim=32, depth=1, num_heads=2, head_dim=16, mlp_dim=64)
    FRACTIONS = (0.5,)
elif run.size == "cpu":
    epochs, NUM_TRAIN, NUM_TEST, seeds = 50, 3000, 1000, 3
    WIDTH = dict(embed_dim=64, depth=4, num_heads=4, head_dim=16, mlp_dim=128)
    FRACTIONS = (0.25, 0.5)
else:
    # The paper trains for 100 epochs; 50 keep a Colab session short (set
    # EPOCHS=100 to match it).
    epochs, NUM_TRAIN, NUM_TEST, seeds = 50, None, None, 1
    WIDTH = {}
    FRACTIONS = (0.1, 0.25)
EPOCHS = EPOCHS or epochs
SEEDS = notebook.seed_list(SEEDS, default=seeds)
print(f"{EPOCHS} epochs, seeds {SEEDS}, fractions {FRACTIONS} and 1")

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
# ## Data
#
# `load_dataset` returns uint8 images; kvision models take floats in
# [0, 1], which `data.to_model_range` makes (`fit_model` scales its
# batches itself). A tenth of the training images is held out as a
# validation split: the curves and any choice are made on it, and the
# test split is used once, at the end.

# %%
with_masks = data.has_masks(DATASET)
splits = data.load_dataset(
    DATASET,
    image_size=IMAGE_SIZE,
    num_train=NUM_TRAIN,
    num_test=NUM_TEST,
    seed=0,
    return_masks=with_masks,
)
(x_train, y_train), (x_test, y_test) = (split[:2] for split in splits)
(x_fit, y_fit), (x_val, y_val) = data.split_validation(
    x_train, y_train, fraction=0.1, seed=0
)
names = data.class_names(DATASET)
NUM_CLASSES = len(names)
print(
    f"{DATASET}: {len(x_fit)} training, {len(x_val)} validation and "
    f"{len(x_test)} test images of {NUM_CLASSES} classes"
)

# %% [markdown]
# ## Shifted Patch Tokenization
#
# A ViT cuts the image into non-overlapping patches and embeds each one
# linearly, so a token knows nothing about the pixels just across its
# patch's border, and on a small dataset the model has little data to
# learn those relations. SPT shifts the image by half a patch in the four
# diagonal directions, stacks the four shifted copies with the original
# along the channels (3 -> 15 channels) and only then cuts patches: every
# token now also carries a strip of each neighbour. LayerNorm and a dense
# layer embed the longer patch vector.

# %%
fig = viz.plot_spt_views(x_test[0], PATCH_SIZE)
fig.savefig(out / "spt_views.png", dpi=100)
fig

# %%
plain = layers.PatchEmbedding(PATCH_SIZE, 192)
shifted = layers.ShiftedPatchTokenization(PATCH_SIZE, 192)
batch = data.to_model_range(x_test[:2])
for tokenizer in (plain, shifted):
    tokens = tokenizer(batch)
    print(
        f"{type(tokenizer).__name__:26s} {batch.shape} -> "
        f"{tuple(tokens.shape)}, {tokenizer.count_params():,} parameters"
    )
shift = PATCH_SIZE // 2
window = PATCH_SIZE + 2 * shift
say(
    f"**What to look for.** Each view is the image moved by {shift} pixels "
    f"(half a {PATCH_SIZE}-pixel patch) diagonally. A plain token holds "
    f"{PATCH_SIZE**2 * 3} values from its own {PATCH_SIZE}x{PATCH_SIZE} "
    f"patch; an SPT token holds {5 * PATCH_SIZE**2 * 3}, drawn from a "
    f"{window}x{window} window around it: {window**2 / PATCH_SIZE**2:.0f} "
    "times the area, so neighbouring tokens share pixels before any "
    "attention has run."
)

# %% [markdown]
# ## Locality Self-Attention, as a layer
#
# Two changes to the attention core, both in `LocalitySelfAttention`:
#
# - **diagonal masking:** the logit of each token to itself is set to
#   minus infinity before the softmax. Query and key of a token are
#   projections of the same vector, so self-similarity tends to dominate
#   and flatten everything else; masking it forces attention onto the
#   other tokens;
# - **learnable temperature:** each head multiplies its logits by its own
#   trainable scale, initialised to `1/sqrt(head_dim)` (the fixed scale of
#   standard attention), and can learn to sharpen its softmax.
#
# Both layers on the same 17 random tokens, with their attention weights:

# %%
tokens = np.random.default_rng(0).normal(size=(2, 17, 32)).astype("float32")
lsa = layers.LocalitySelfAttention(num_heads=4, head_dim=8)
mhsa = layers.MultiHeadSelfAttention(num_heads=4, head_dim=8)
_, lsa_weights = lsa(tokens, return_attention_scores=True)
_, mhsa_weights = mhsa(tokens, return_attention_scores=True)
lsa_weights = keras.ops.convert_to_numpy(lsa_weights)
mhsa_weights = keras.ops.convert_to_numpy(mhsa_weights)
fig = Figure(figsize=(7, 3.2))
axes = fig.subplots(1, 2)
for ax, weights, title in zip(
    axes,
    (mhsa_weights, lsa_weights),
    ("MultiHeadSelfAttention", "LocalitySelfAttention"),
    strict=True,
):
    image = ax.imshow(weights[0, 0], cmap="viridis", vmin=0)
    ax.set_title(f"{title}, head 0", fontsize=9)
    ax.set_xlabel("key token")
    ax.set_ylabel("query token")
    fig.colorbar(image, ax=ax, fraction=0.046)
fig.tight_layout()
fig.savefig(out / "lsa_layer.png", dpi=100)
fig


# %%
def diagonal(weights):
    return np.diagonal(weights, axis1=-2, axis2=-1)


temperature = keras.ops.convert_to_numpy(lsa.temperature)
say(
    f"**What to look for.** LSA's diagonal is exactly "
    f"{diagonal(lsa_weights).max():.1f} (largest self-weight over all "
    f"heads and tokens), while standard attention gives each token "
    f"{diagonal(mhsa_weights).mean():.3f} of its own attention on average "
    f"(uniform would be 1/17 = {1 / 17:.3f}: untrained projections of "
    "random tokens do not favour self-similarity yet; a trained ViT's "
    "diagonal is measured below). LSA's temperatures are one trainable "
    f"weight per head, {[round(float(t), 3) for t in temperature]}, all "
    f"`1/sqrt(8)` = {1 / np.sqrt(8):.3f} at the start."
)

# %% [markdown]
# ## An SL-ViT from the library's layers
#
# The registry has the paper's models, but the layers are the library:
# SPT, a class token, position embeddings and transformer blocks with
# LSA, and the model returns every block's attention next to its logits.


# %%
def sl_vit_from_layers(embed_dim, depth, num_heads, head_dim, mlp_dim):
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = layers.ShiftedPatchTokenization(
        PATCH_SIZE, embed_dim, norm_epsilon=1e-5
    )(inputs)
    x = layers.PositionEmbedding()(layers.ClassToken()(x))
    scores = []
    for _ in range(depth):
        block = layers.TransformerBlock(
            num_heads,
            mlp_dim,
            attention="lsa",
            head_dim=head_dim,
            qkv_bias=False,
            norm_epsilon=1e-5,
        )
        x, block_scores = block(x, return_attention_scores=True)
        scores.append(block_scores)
    x = keras.layers.LayerNormalization(epsilon=1e-5)(x)
    logits = keras.layers.Dense(NUM_CLASSES)(x[:, 0])
    return keras.Model(inputs, [logits, *scores])


size = WIDTH or dict(
    embed_dim=192, depth=9, num_heads=12, head_dim=16, mlp_dim=384
)
hand_built = sl_vit_from_layers(**size)
registry_twin = create_model(
    "sl_vit_32px", num_classes=NUM_CLASSES, patch_size=PATCH_SIZE, **WIDTH
)
rollout_shape = viz.attention_rollout(hand_built, batch).shape
say(
    f"The hand-built SL-ViT has {hand_built.count_params():,} parameters, "
    f"the registry's `sl_vit_32px` of the same size "
    f"{registry_twin.count_params():,}: the same network. kvision's "
    "attention tools take any model that returns attention weights "
    f"`(batch, heads, tokens, tokens)`: its rollout maps are "
    f"{rollout_shape}, one {rollout_shape[1]}x{rollout_shape[2]} patch "
    "grid per image."
)
del hand_built, registry_twin

# %% [markdown]
# ## The two models
#
# The registry's `vit_32px` and `sl_vit_32px` (the paper's models: 9
# blocks of width 192, 12 heads), here at the run's size; they differ
# only in the tokenizer and the attention.

# %%
MODELS = {"ViT": "vit_32px", "SL-ViT": "sl_vit_32px"}


def slug(label):
    return label.lower().replace("-", "_")


def recipe_for(num_train):
    """The paper's recipe applied to ``num_train`` training images."""
    return adapt_recipe(
        get_recipe("sl_vit_32px"),
        num_train=num_train,
        image_size=IMAGE_SIZE,
        mirror_invariant=data.mirror_invariant(DATASET),
        epochs=EPOCHS,
    )


recipe = recipe_for(len(x_fit))
print(recipe)


def build(name, seed):
    keras.utils.set_random_seed(seed)
    return create_model(
        name,
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        num_classes=NUM_CLASSES,
        patch_size=PATCH_SIZE,
        drop_path_rate=recipe.drop_path_rate,
        **WIDTH,
    )


parameters = {}
for label, name in MODELS.items():
    model = build(name, SEEDS[0])
    config = model.get_config()
    parameters[label] = sum(
        int(np.prod(w.shape)) for w in model.trainable_weights
    )
    print(
        f"{label:7s} tokenizer={config['tokenizer']:5s} "
        f"attention={config['attention']:4s} "
        f"{config['depth']} blocks of width {config['embed_dim']}, "
        f"{config['num_heads']} heads: {parameters[label]:,} parameters"
    )

# %% [markdown]
# The recipe is the paper's (`get_recipe`: AdamW, warm-up then cosine
# decay, label smoothing, stochastic depth, RandAugment, MixUp, CutMix and
# random erasing), applied to this data by `adapt_recipe`, which prints
# each change beside the paper's value with its rule: a batch small enough
# for an epoch to have at least 20 optimizer steps, the warm-up keeping
# its share of a shorter run, no flips for digits (a mirrored digit is
# another symbol), and no RandAugment, erasing or mixing in a run that
# shows the models fewer than a million images. The papers regularise
# runs of millions of images; a CPU-sized run on digits sees tens of
# thousands, and with that augmentation on a paper-size ViT ended at
# 0.61 test accuracy instead of 0.98 (measured for `adapt_recipe`).
#
# ## Baselines: chance and a linear probe
#
# Two numbers any trained model must beat: guessing the most common
# class, and a logistic regression on the raw pixels (scikit-learn).

# %%
from kvision.selfsup import linear_probe_accuracy


def pixels(images):
    return data.to_model_range(images).reshape(len(images), -1)


def linear_probe(images, labels):
    """Test accuracy of a logistic regression on the raw pixels."""
    return linear_probe_accuracy(
        pixels(images),
        labels,
        pixels(x_test),
        y_test,
        max_iter=1000,
        standardize=False,
    )


chance = float(np.bincount(y_test).max() / len(y_test))
probe_accuracy = linear_probe(x_fit, y_fit)
say(
    f"Chance (the most common test class): **{chance:.3f}**; linear probe "
    f"on the raw pixels of the {len(x_fit):,} training images: "
    f"**{probe_accuracy:.3f}** test accuracy."
)

# %% [markdown]
# ## Training under the same budget, over several seeds
#
# With the same seed, both models see the same batches in the same order.
# A checkpoint callback saves each model after every epoch (`.keras` files
# in `OUTPUT_DIR`; on Colab, point `KVISION_OUTPUT_DIR` at a mounted Google
# Drive folder to keep them across disconnects).

# %%
histories = {label: [] for label in MODELS}
accuracy = {label: [] for label in MODELS}
seconds = {label: [] for label in MODELS}
models = {}
for seed in SEEDS:
    for label, name in MODELS.items():
        print(f"== {label}, seed {seed}")
        model = build(name, seed)
        checkpoint = out / f"{slug(label)}_seed{seed}.keras"
        result = fit_model(
            model,
            recipe,
            (x_fit, y_fit),
            test_data=(x_test, y_test),
            validation_data=(x_val, y_val),
            seed=seed,
            verbose=2,
            callbacks=[keras.callbacks.ModelCheckpoint(checkpoint)],
        )
        histories[label].append(result.history)
        seconds[label].append(result.train_seconds)
        accuracy[label].append(result.test_accuracy)
        if seed == SEEDS[0]:
            models[label] = model  # looked inside below

# %%
fig = Figure(figsize=(9, 3.5))
axes = fig.subplots(1, 2)
for label, runs in histories.items():
    loss = np.mean([h["loss"] for h in runs], axis=0)
    val_loss = np.mean([h["val_loss"] for h in runs], axis=0)
    val_accuracy = np.mean([h["val_accuracy"] for h in runs], axis=0)
    epochs_axis = np.arange(1, len(loss) + 1)
    (line,) = axes[0].plot(epochs_axis, loss, label=f"{label} train")
    axes[0].plot(
        epochs_axis,
        val_loss,
        "--",
        color=line.get_color(),
        label=f"{label} validation",
    )
    axes[1].plot(epochs_axis, val_accuracy, label=label)
axes[0].set_title(f"loss (mean of {len(SEEDS)} seeds)")
axes[1].set_title("validation accuracy")
for ax in axes:
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(out / "training_curves.png", dpi=100)
fig

# %%
lines = []
for label, runs in histories.items():
    val_loss = np.mean([h["val_loss"] for h in runs], axis=0)
    val_accuracy = np.mean([h["val_accuracy"] for h in runs], axis=0)
    best = int(np.argmin(val_loss))
    rise = val_loss[-1] - val_loss[best]
    lines.append(
        f"- **{label}**: validation accuracy {val_accuracy[-1]:.3f} after "
        f"the last epoch; validation loss lowest at epoch {best + 1} of "
        f"{len(val_loss)}"
        + (
            f", then up by {rise:.3f}: it starts to overfit"
            if rise > 0.02
            else ", and not rising at the end: more epochs may still help"
        )
        + "."
    )
say("**What to look for.**\n\n" + "\n".join(lines))

# %% [markdown]
# ## Early epochs: how fast each model learns
#
# The paper's argument is about data efficiency: SPT and LSA give the ViT
# a locality bias it otherwise has to learn from data. One place that
# shows is how fast validation accuracy rises. Mean ± std over the seeds,
# at a few epochs:

# %%
by_epoch = {
    label: np.array([h["val_accuracy"] for h in runs])
    for label, runs in histories.items()
}
shown_epochs = [e for e in (1, 2, 3, 5, 10, 20, 50) if e < EPOCHS]
shown_epochs.append(EPOCHS)
rows = [
    "| epoch | ViT | SL-ViT | SL-ViT minus ViT |",
    "| ---: | --- | --- | ---: |",
]
ahead = []
for epoch in shown_epochs:
    vit, sl_vit = (
        by_epoch["ViT"][:, epoch - 1],
        by_epoch["SL-ViT"][:, epoch - 1],
    )
    difference = sl_vit.mean() - vit.mean()
    spread = max(vit.std(), sl_vit.std(), 1 / len(x_val))
    if len(SEEDS) > 1 and difference > 2 * spread:
        ahead.append(epoch)
    rows.append(
        f"| {epoch} | {vit.mean():.3f} ± {vit.std():.3f} "
        f"| {sl_vit.mean():.3f} ± {sl_vit.std():.3f} | {difference:+.3f} |"
    )
say(
    "\n".join(rows)
    + "\n\n"
    + (
        "SL-ViT is ahead by more than twice the larger seed spread after "
        f"epoch(s) {', '.join(map(str, ahead))} of those shown."
        if ahead
        else "At none of these epochs is SL-ViT ahead by more than twice "
        "the larger seed spread"
        + (" (one seed cannot show it)." if len(SEEDS) < 2 else ".")
    )
)

# %% [markdown]
# ## Test accuracy, over seeds
#
# The test split, used once per model at the end. One test image is worth
# `100 / len(x_test)` points; a gap between the models means something
# only if it is larger than how much seeds move each model.

# %%
stats = {
    label: (float(np.mean(a)), float(np.std(a)))
    for label, a in accuracy.items()
}
rows = [
    "| model | parameters | test accuracy, mean ± std | per seed |",
    "| --- | ---: | --- | --- |",
]
for label, (mean, std) in stats.items():
    per_seed = ", ".join(f"{a:.3f}" for a in accuracy[label])
    rows.append(
        f"| {label} | {parameters[label]:,} | {mean:.3f} ± {std:.3f} "
        f"| {per_seed} |"
    )
rows.append(f"| linear probe on pixels | | {probe_accuracy:.3f} | |")
rows.append(f"| chance | | {chance:.3f} | |")
above_probe = [label for label in MODELS if stats[label][0] > probe_accuracy]
gap = stats["SL-ViT"][0] - stats["ViT"][0]
noise = max(stats["SL-ViT"][1], stats["ViT"][1], 1 / len(x_test))
if len(SEEDS) < 2:
    verdict = "one seed cannot tell a real gap from seed noise"
elif abs(gap) > 2 * noise:
    verdict = "more than twice the larger seed spread: a real difference"
else:
    verdict = "within twice the seed spread: no clear winner in this run"
say(
    "\n".join(rows) + f"\n\nSL-ViT minus ViT: **{100 * gap:+.1f} points** over "
    f"{len(SEEDS)} seed(s); {verdict}. One test image = "
    f"{100 / len(x_test):.2f} points. Above the linear probe on average: "
    f"{', '.join(above_probe) or 'neither model'}."
)

# %% [markdown]
# ## The paper's numbers beside this run's
#
# The paper trains both models for 100 epochs on the full datasets with
# its whole recipe (Table 2; the numbers as listed in the authors'
# repository). Only a full CIFAR run with the same epochs is comparable.

# %%
PAPER = {  # top-1 %, Table 2 of arXiv:2112.13492
    "cifar10": {"ViT": 93.58, "SL-ViT": 94.53},
    "cifar100": {"ViT": 73.81, "SL-ViT": 76.92},
}
rows = [
    "| | ViT | SL-ViT | SL-ViT gain |",
    "| --- | ---: | ---: | ---: |",
]
for dataset, paper in PAPER.items():
    rows.append(
        f"| paper, {dataset}, 100 epochs | {paper['ViT']:.2f} "
        f"| {paper['SL-ViT']:.2f} | {paper['SL-ViT'] - paper['ViT']:+.2f} |"
    )
rows.append(
    f"| this run, {DATASET}, {EPOCHS} epochs, {run.size} size "
    f"| {100 * stats['ViT'][0]:.2f} | {100 * stats['SL-ViT'][0]:.2f} "
    f"| {100 * gap:+.2f} |"
)
comparable = DATASET in PAPER and run.size == "full" and EPOCHS >= 100
say(
    "\n".join(rows)
    + "\n\n"
    + (
        "This run follows the paper's set-up closely enough to compare."
        if comparable
        else "This run is not the paper's set-up (dataset, model size or "
        "epochs differ), so compare the direction of the gap, not the "
        "numbers."
    )
)

# %% [markdown]
# ## Less data: where the paper's argument lives
#
# The paper's case for SPT and LSA is small datasets, so the question is
# not only which model ends higher on the whole training split but how
# each holds up with less of it. Both models train again on a stratified
# share of the training split (a different sample for each seed), for the
# same number of epochs, with the recipe adapted to the smaller set (its
# batch shrinks to keep 20 optimizer steps per epoch); the linear probe is
# fitted on the same images. The whole split is the run above.

# %%
small_data = []
for fraction in FRACTIONS:
    record = {
        "fraction": fraction,
        "test_accuracy": {label: [] for label in MODELS},
        "linear_probe": [],
    }
    for seed in SEEDS:
        # The held-out part of a stratified split is a stratified sample.
        _, (x_small, y_small) = data.split_validation(
            x_fit, y_fit, fraction=fraction, seed=seed
        )
        small_recipe = recipe_for(len(x_small))
        record["linear_probe"].append(linear_probe(x_small, y_small))
        for label, name in MODELS.items():
            result = fit_model(
                build(name, seed),
                small_recipe,
                (x_small, y_small),
                test_data=(x_test, y_test),
                seed=seed,
                verbose=0,
                validate_each_epoch=False,
            )
            record["test_accuracy"][label].append(result.test_accuracy)
        print(
            f"{len(x_small)} images ({fraction:.0%}), seed {seed}: "
            + ", ".join(
                f"{label} {values[-1]:.3f}"
                for label, values in record["test_accuracy"].items()
            )
            + f", linear probe {record['linear_probe'][-1]:.3f}"
        )
    record.update(fit_images=len(x_small), batch_size=small_recipe.batch_size)
    small_data.append(record)
small_data.append(
    {
        "fraction": 1.0,
        "test_accuracy": accuracy,
        "linear_probe": [probe_accuracy],
        "fit_images": len(x_fit),
        "batch_size": recipe.batch_size,
    }
)

# %%
fig = Figure(figsize=(5.5, 3.5))
ax = fig.subplots()
sizes = [record["fit_images"] for record in small_data]
for label in MODELS:
    values = [record["test_accuracy"][label] for record in small_data]
    ax.errorbar(
        sizes,
        [np.mean(v) for v in values],
        yerr=[np.std(v) for v in values],
        marker="o",
        capsize=3,
        label=label,
    )
ax.plot(
    sizes,
    [np.mean(record["linear_probe"]) for record in small_data],
    "--",
    color="grey",
    label="linear probe",
)
ax.set_xscale("log")
ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
ax.set_xlabel("training images")
ax.set_ylabel("test accuracy")
ax.set_title(f"mean ± std over {len(SEEDS)} seed(s), {EPOCHS} epochs")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(out / "training_set_size.png", dpi=100)
fig

# %%
rows = [
    "| training images | ViT | SL-ViT | SL-ViT minus ViT | linear probe |",
    "| ---: | --- | --- | ---: | ---: |",
]
readings = []
for record in small_data:
    vit = np.array(record["test_accuracy"]["ViT"])
    sl_vit = np.array(record["test_accuracy"]["SL-ViT"])
    probe = float(np.mean(record["linear_probe"]))
    difference = sl_vit.mean() - vit.mean()
    spread = max(vit.std(), sl_vit.std(), 1 / len(x_test))
    rows.append(
        f"| {record['fit_images']:,} | {vit.mean():.3f} ± {vit.std():.3f} "
        f"| {sl_vit.mean():.3f} ± {sl_vit.std():.3f} "
        f"| {100 * difference:+.1f} points | {probe:.3f} |"
    )
    if len(SEEDS) < 2:
        reading = "one seed cannot separate them"
    elif abs(difference) > 2 * spread:
        winner = "SL-ViT" if difference > 0 else "ViT"
        reading = f"{winner} ahead by more than twice the seed spread"
    else:
        reading = "no gap beyond twice the seed spread"
    below = [
        label
        for label, v in (("ViT", vit), ("SL-ViT", sl_vit))
        if v.mean() <= probe
    ]
    if below:
        reading += f"; {' and '.join(below)} not above the linear probe"
    readings.append(f"{record['fit_images']:,} images: {reading}.")
gains = [
    np.mean(record["test_accuracy"]["SL-ViT"])
    - np.mean(record["test_accuracy"]["ViT"])
    for record in small_data
]
trend = ""
if len(gains) > 1:
    fewest, whole = small_data[0]["fit_images"], small_data[-1]["fit_images"]
    direction = (
        "grows as the data shrinks"
        if gains[0] > gains[-1]
        else "does not grow as the data shrinks"
    )
    trend = (
        f"\n\nSL-ViT's gain: {100 * gains[0]:+.1f} points with {fewest:,} "
        f"images, {100 * gains[-1]:+.1f} with {whole:,}: it {direction}."
    )
say("\n".join(rows) + "\n\n" + "\n".join(f"- {r}" for r in readings) + trend)

# %% [markdown]
# ## How sharp is the attention?
#
# For every block and head, averaged over validation images and query
# tokens:
#
# - **divergence** from uniform, `KL(row || uniform) = log N - entropy`
#   (nats): 0 when a head simply averages all tokens, `log N` when each
#   row sits on one token;
# - **mean attention distance** (pixels): how far from its query patch a
#   head looks, the ViT paper's measure of a receptive field.
#
# Each dot is a head, the line the mean over heads (first seed's models).

# %%
probe = data.to_model_range(x_val[: 16 if SMOKE else 128])
entropy = {k: viz.attention_entropy(m, probe) for k, m in models.items()}
divergence = {k: viz.attention_divergence(m, probe) for k, m in models.items()}
distance = {k: viz.mean_attention_distance(m, probe) for k, m in models.items()}
fig = viz.plot_attention_distance(
    divergence, ylabel="KL(attention || uniform), nats"
)
fig.savefig(out / "attention_divergence.png", dpi=100)
fig

# %%
fig = viz.plot_attention_distance(distance)
fig.savefig(out / "attention_distance.png", dpi=100)
fig

# %%
vit_maps = viz.attention_maps(models["ViT"], probe)
self_weight = np.mean([diagonal(w).mean() for w in vit_maps.values()])
tokens_n = next(iter(vit_maps.values())).shape[-1]
sharper = max(divergence, key=lambda k: divergence[k].mean())
say(
    "**What to look for.** Mean divergence from uniform: "
    + ", ".join(f"{k} {v.mean():.3f} nats" for k, v in divergence.items())
    + f"; **{sharper}** attends more sharply. Mean attention distance: "
    + ", ".join(f"{k} {v.mean():.1f} px" for k, v in distance.items())
    + " (first block: "
    + ", ".join(f"{k} {v[0].mean():.1f} px" for k, v in distance.items())
    + "). The trained ViT puts on average "
    f"{self_weight:.3f} of each row on the token itself (uniform: "
    f"{1 / tokens_n:.3f}); LSA's mask makes that 0 by construction."
)

# %% [markdown]
# What LSA's learned temperatures did, per block (rows) and head
# (columns); they all started at `1/sqrt(head_dim)`, and larger means a
# sharper softmax:

# %%
sl_vit = models["SL-ViT"]
temperatures = np.stack(
    [
        keras.ops.convert_to_numpy(sl_vit.get_layer(name).attn.temperature)
        for name in sl_vit.feature_names
    ]
)
head_dim = sl_vit.get_config()["head_dim"] or (
    sl_vit.get_config()["embed_dim"] // sl_vit.get_config()["num_heads"]
)
initial = 1 / np.sqrt(head_dim)
print(np.array2string(temperatures, precision=3))
change = temperatures / initial - 1
say(
    f"From {initial:.3f}, the temperatures moved by "
    f"{100 * np.abs(change).mean():.1f} % on average; "
    f"{int((change > 0).sum())} of {change.size} heads sharpened their "
    f"softmax and {int((change < 0).sum())} flattened it."
)

# %% [markdown]
# ## Class-token attention, head by head
#
# The classifier reads the class token only, so row 0 of the last block's
# attention says which patches each head feeds into the prediction. One
# row per test image, one column per head.

# %%
shown = x_test[:4]
for label, model in models.items():
    maps = viz.cls_attention(model, data.to_model_range(shown))
    titles = [f"{label}: {names[y]}" for y in y_test[: len(shown)]]
    fig = viz.plot_attention_heads(shown, maps, titles=titles)
    fig.savefig(out / f"cls_attention_{slug(label)}.png", dpi=100)
    display(fig)

# %% [markdown]
# ## Attention rollout
#
# One block's attention ignores how information has already been mixed by
# the blocks before. Rollout (Abnar and Zuidema, 2020) multiplies the
# attention matrices of all blocks, each averaged over heads with the
# residual connection added, and reads the class token's row: how much
# each patch contributes to the class token at the end.

# %%
shown = x_test[:8]
rollouts = {}
for label, model in models.items():
    maps = viz.attention_rollout(model, data.to_model_range(shown))
    rollouts[label] = maps
    fig = viz.plot_overlays(
        shown, maps, suptitle=f"{label}: attention rollout, all blocks"
    )
    fig.savefig(out / f"attention_rollout_{slug(label)}.png", dpi=100)
    display(fig)


# %%
def top_share(maps, fraction=0.1):
    """Share of each map's mass on its top ``fraction`` of patches."""
    flat = np.sort(maps.reshape(len(maps), -1), axis=1)[:, ::-1]
    top = max(1, round(fraction * flat.shape[1]))
    return float((flat[:, :top].sum(1) / flat.sum(1)).mean())


say(
    "**What to look for.** The share of each rollout map's mass on its "
    "top 10 % of patches (0.10 would be an even spread): "
    + ", ".join(f"{k} {top_share(v):.2f}" for k, v in rollouts.items())
    + ". A higher share means the class token gathers from fewer, more "
    "specific places."
)

# %% [markdown]
# On `cluttered_digits` and `shapes`, each image comes with its object's
# mask (a digit's strokes), so we can measure how much of each rollout
# map lands on the object compared with a map spread evenly (`ratio` > 1
# is better than chance).

# %%
localization = None
if with_masks:
    test_images = data.to_model_range(x_test[: len(probe)])
    test_masks = splits[1][2][: len(probe)]
    localization = {
        label: viz.localization_score(
            viz.attention_rollout(model, test_images), test_masks
        )
        for label, model in models.items()
    }
    print(json.dumps(localization, indent=2))
else:
    print(f"{DATASET} has no object masks; try DATASET='cluttered_digits'.")

# %% [markdown]
# ## Saved models
#
# The checkpoint callback left one `.keras` file per model and seed. A
# saved kvision model reloads as the same class, with its named layers,
# on any backend:

# %%
saved = out / f"sl_vit_seed{SEEDS[0]}.keras"
reloaded = keras.saving.load_model(saved)
images = data.to_model_range(x_test[:16])
difference = np.abs(
    keras.ops.convert_to_numpy(reloaded(images, training=False))
    - keras.ops.convert_to_numpy(models["SL-ViT"](images, training=False))
).max()
print(f"{saved.name}: {type(reloaded).__name__}, {saved.stat().st_size:,} B")
print(f"largest difference in the logits of 16 test images: {difference:.1e}")

# %% [markdown]
# ## What this run measured


# %%
def mean(values):
    return round(float(np.mean(values)), 4)


metrics = {
    "notebook": "01_vit_small_datasets",
    "backend": keras.backend.backend(),
    "device": run.device,
    "dataset": DATASET,
    "size": run.size,
    "smoke": SMOKE,
    "width": WIDTH or "paper (width 192, depth 9, 12 heads)",
    "recipe": recipe.name,
    "epochs": recipe.epochs,
    "batch_size": recipe.batch_size,
    "learning_rate": recipe.learning_rate,
    "seeds": list(SEEDS),
    # The data's load_dataset arguments and split sizes, and the models'
    # overrides: the tests recompute numbers from them.
    "load_dataset": dict(
        image_size=IMAGE_SIZE, num_train=NUM_TRAIN, num_test=NUM_TEST, seed=0
    ),
    "split_sizes": dict(
        fit=len(x_fit), validation=len(x_val), test=len(x_test)
    ),
    "models": {
        label: {
            "registry_name": MODELS[label],
            "overrides": dict(patch_size=PATCH_SIZE, **WIDTH),
            "parameters": parameters[label],
            "train_seconds": [round(s, 1) for s in seconds[label]],
            "test_accuracy": accuracy[label],
            "test_accuracy_mean": round(stats[label][0], 4),
            "test_accuracy_std": round(stats[label][1], 4),
            "mean_attention_entropy": mean(entropy[label]),
            "mean_attention_divergence": mean(divergence[label]),
            "mean_attention_distance_px": mean(distance[label]),
            "rollout_top10_share": round(top_share(rollouts[label]), 4),
        }
        for label in MODELS
    },
    "lsa_temperature_change_pct": round(100 * float(np.abs(change).mean()), 2),
    "localization": localization,
    "chance": chance,
    "linear_probe": probe_accuracy,
    # Mean validation accuracy after each epoch, over the seeds.
    "val_accuracy_by_epoch": {
        label: [round(float(v), 4) for v in values.mean(axis=0)]
        for label, values in by_epoch.items()
    },
    # Test accuracy per seed on stratified shares of the training split;
    # the last entry is the whole split (the runs above).
    "training_set_sizes": small_data,
}
(out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
say(
    f"**In short.** On {DATASET} ({run.size} size, {EPOCHS} epochs, "
    f"{len(SEEDS)} seed(s), {keras.backend.backend()}): ViT "
    f"{stats['ViT'][0]:.3f} ± {stats['ViT'][1]:.3f}, SL-ViT "
    f"{stats['SL-ViT'][0]:.3f} ± {stats['SL-ViT'][1]:.3f} test accuracy "
    f"({verdict}); linear probe {probe_accuracy:.3f}. With less data: "
    + " ".join(readings)
    + f" {sharper} has the sharper attention. Everything is in "
    f"`{out / 'metrics.json'}`."
)
