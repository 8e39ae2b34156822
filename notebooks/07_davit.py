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
# # DaViT: attention over space, then over channels
#
# **On Colab:** download this notebook's `.ipynb` and open it with Colab's
# *File, Upload notebook* (there is no public repository to link an *Open in
# Colab* badge to yet). It asks Colab for a GPU; if it opens on a CPU,
# choose one in *Runtime, Change runtime type*.
#
# **Paper:** Mingyu Ding, Bin Xiao, Noel Codella, Ping Luo, Jingdong Wang
# and Lu Yuan, *DaViT: Dual Attention Vision Transformers*
# ([arXiv:2204.03645](https://arxiv.org/abs/2204.03645)).
#
# **What you will learn**
#
# - the two attentions DaViT alternates: multi-head attention among the
#   tokens of a spatial window (local), and **channel group attention**,
#   where channels attend to channels with the whole image as context
#   (global, and linear in the number of tokens);
# - how big each attention matrix is, and why the channel one does not
#   grow with the image;
# - how the small `davit_32px` trains from scratch beside a plain ViT of
#   the same size, under the same budget and seeds, against a linear probe
#   and chance;
# - what each attention looks at: window attention maps on the image, the
#   channel-attention matrices (which channels gather from which), and a
#   class activation map of the whole model.
#
# **Backends:** TensorFlow, JAX and PyTorch: pick one in the form below.
#
# **Runtime.** Measured on a 2-core CPU without a GPU: the CPU-sized run
# on digits (two models, three seeds, 15 epochs each) used 11 minutes of
# CPU time with TensorFlow, so 6-11 minutes on two idle cores (it took 47
# minutes of wall time on a machine shared with about ten other jobs; the
# ViT, with 6 times DaViT's multiply-adds, takes about 70 % of it); the
# smoke run (`KVISION_SMOKE=1`) under a minute of CPU time. On a Colab
# GPU, the full CIFAR-10 run (both models, 100 epochs, one seed) should
# take roughly half an hour: an estimate, not measured.

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
# On Colab these lines are a form. `SIZE="auto"` trains on all of CIFAR-10
# for 100 epochs on a GPU or TPU, and a CPU-sized run otherwise (3,000
# training images, 15 epochs): the next cell says which, and why. `digits`
# (scikit-learn's handwritten digits), `cluttered_digits` (the same digits
# at random sizes and places on textured clutter, with stroke masks: models
# learn it at CPU budgets, unlike `shapes`) and `shapes` (generated shapes
# with object masks) need no network and always run CPU-sized. `EPOCHS` and
# `SEEDS` left at `None` take the size's defaults (3 seeds on a CPU, 1 on a
# GPU). Environment variables, when set, win over the form: the tests choose
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
    "KVISION_OUTPUT_DIR", "outputs/notebooks/07_davit"
)

# %% [markdown]
# ## Device and run size
#
# `notebook.start` sets the Keras backend (before the first
# `import keras`), reports the device and picks the run size. Both models
# always get the same images, recipe, epochs and seeds. The ViT's width
# and depth are chosen to give it as many parameters as `davit_32px`.

# %%
import time

started = time.perf_counter()
run = notebook.start(BACKEND, DATASET, size=SIZE)
SMOKE = run.smoke
IMAGE_SIZE = 32
# A ViT with (nearly) the parameters of davit_32px: 4 blocks of width 128,
# 4 heads of 32 (DaViT's head size), MLP width 288.
VIT = dict(embed_dim=128, depth=4, num_heads=4, head_dim=32, mlp_dim=288)
DAVIT = {}
if run.size == "smoke":
    epochs, NUM_TRAIN, NUM_TEST, seeds = 1, 64, 32, 1
    DAVIT = dict(depths=(1,), dims=(16,), num_heads=(1,))
    VIT = dict(embed_dim=16, depth=1, num_heads=2, head_dim=8, mlp_dim=32)
elif run.size == "cpu":
    epochs, NUM_TRAIN, NUM_TEST, seeds = 15, 3000, 1000, 3
else:
    epochs, NUM_TRAIN, NUM_TEST, seeds = 100, None, None, 1
EPOCHS = EPOCHS or epochs
SEEDS = notebook.seed_list(SEEDS, default=seeds)
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
from kvision.training import Recipe
from kvision.training import fit_model

out = pathlib.Path(OUTPUT_DIR)
out.mkdir(parents=True, exist_ok=True)


def say(text):
    """Shows a computed interpretation as formatted text."""
    display(Markdown(text))


# %% [markdown]
# ## The idea: two attentions, two axes
#
# After the stem, an image is a map of $N = H \times W$ tokens with $C$
# channels, $X \in \mathbb{R}^{N \times C}$. Attention can mix along
# either axis.
#
# **Spatial (token) attention** mixes positions. Global self-attention
# compares every token with every other one,
#
# $$
# \mathrm{Attn}(X) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d}}\right) V,
# \qquad Q K^\top \in \mathbb{R}^{N \times N}\ \text{per head},
# $$
#
# which costs $O(N^2 C)$. DaViT keeps it inside non-overlapping
# $w \times w$ windows, as Swin does, so each token sees $w^2$ others:
# $O(N w^2 C)$, linear in $N$ but **local** (no shift, no relative
# position bias: the next block supplies the global view).
#
# **Channel group attention** mixes channels. The channels are split into
# $G$ groups of $C_g = C / G$; inside a group every channel is a "token"
# whose feature vector is its values at all $N$ positions. With
# $Q_g, K_g, V_g \in \mathbb{R}^{N \times C_g}$, in the order of the
# official code,
#
# $$
# A_g = \mathrm{softmax}\!\left(\frac{K_g^\top V_g}{\sqrt{C_g}}\right)
# \in \mathbb{R}^{C_g \times C_g},
# \qquad Y_g = Q_g A_g^\top ,
# $$
#
# so output channel $i$ at position $n$ is $\sum_j A_g[i, j]\, Q_g[n, j]$.
# Every entry of $A_g$ is a sum over **all** $N$ positions: each channel
# decides what to gather with the whole image as context, yet the matrix
# is $C_g \times C_g$ whatever the image size, and the cost is
# $O(N C^2 / G)$.
#
# A DaViT block pair applies one, then the other; each block is
# `x = cpe(x); x = x + attn(LN(x)); x = cpe(x); x = x + MLP(LN(x))`, where
# `cpe` is a 3×3 depthwise convolution added to its input (the position
# information: DaViT has no position embedding).
#
# The attention matrices of the two layers, on maps of growing size:

# %%
spatial = layers.WindowAttention(
    num_heads=3,
    window_size=7,
    relative_position_bias=False,
    pad_to_window=True,
)
channel = layers.ChannelGroupAttention(num_groups=3)
for side in (7, 14, 28):
    maps = np.zeros((1, side, side, 96), "float32")
    _, s_scores = spatial(maps, return_attention_scores=True)
    _, c_scores = channel(maps, return_attention_scores=True)
    print(
        f"{side:2d}x{side:<2d} map, N={side * side:5d}: window attention "
        f"{tuple(s_scores.shape)} = {int(np.prod(s_scores.shape)):9,d} "
        f"weights; channel attention {tuple(c_scores.shape)} = "
        f"{int(np.prod(c_scores.shape)):,d} weights"
    )


# %% [markdown]
# And the multiply-adds of the attention products ($QK^\top$ and the
# weighted sum) per image, at DaViT-T's first-stage width $C = 96$, with
# 3 heads or groups and 7×7 windows:


# %%
def attention_macs(tokens, channels=96, groups=3, window=7):
    """Multiply-adds of the two products of each kind of attention."""
    return {
        "global token attention": 2 * tokens**2 * channels,
        "window attention": 2 * tokens * window**2 * channels,
        "channel group attention": 2 * tokens * channels**2 // groups,
    }


sides = np.array([7, 14, 28, 56, 112])
costs = {k: [] for k in attention_macs(1)}
for side in sides:
    for kind, value in attention_macs(int(side) ** 2).items():
        costs[kind].append(value)
fig = Figure(figsize=(5.5, 3.8))
ax = fig.subplots()
for kind, values in costs.items():
    ax.loglog(sides**2, values, "o-", label=kind)
ax.set_xlabel("tokens N (map side 7 ... 112)")
ax.set_ylabel("multiply-adds per image")
ax.legend(fontsize=8)
ax.set_title("attention cost, C = 96")
fig.tight_layout()
fig.savefig(out / "attention_cost.png", dpi=100)
fig

# %%
big = attention_macs(56 * 56)
say(
    "**What to look for.** The channel matrices stay "
    f"{tuple(c_scores.shape[1:])} for every map size, while the window "
    "attention's weights grow with the number of windows, i.e. linearly "
    "in N; global attention grows with N². At DaViT-T's first stage "
    f"(56×56 tokens), global attention would need "
    f"{big['global token attention'] / 1e9:.2f} G multiply-adds per "
    f"image, window attention {big['window attention'] / 1e6:.0f} M and "
    f"channel attention {big['channel group attention'] / 1e6:.0f} M: "
    "both of DaViT's attentions are linear in N, and only the channel one "
    "is global."
)

# %% [markdown]
# ## Data
#
# `load_dataset` returns uint8 images; kvision models take floats in
# [0, 1] (`data.to_model_range`; `fit_model` scales its batches itself). A
# tenth of the training images is held out for validation: the curves are
# read on it, and the test split is used once, at the end.

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
# ## The two models
#
# `davit_32px` is DaViT at CIFAR scale (its docstring gives the reasons):
# the official 7×7 stride-4 stem turns 32 pixels into an 8×8 map, then
# three stages of one block pair each, on 8×8, 4×4 and 2×2 maps, widths
# 32-64-128 with 32 channels per head and per group, windows of 4×4.
# Beside it, the registry's `vit_32px` (4×4 patches, a class token and
# global attention among 65 tokens), narrowed to the same number of
# parameters.

# %%
MODELS = {"DaViT": "davit_32px", "ViT": "vit_32px"}
OVERRIDES = {"DaViT": DAVIT, "ViT": VIT}
recipe = Recipe(
    name="davit_small_data",
    source=(
        "kvision's small-data recipe: AdamW 1e-3 at batch 64, a short "
        "warm-up then cosine decay, label smoothing 0.1 (the paper trains "
        "ImageNet for 300 epochs with RandAugment, MixUp and CutMix)"
    ),
    epochs=EPOCHS,
    batch_size=64,
    learning_rate=1e-3,
    warmup_epochs=min(2, EPOCHS - 1),
    weight_decay=0.05,
    label_smoothing=0.1,
    drop_path_rate=0.1,
    # A full run gets RandAugment; flips only where a mirror keeps the label.
    rand_augment_ops=2 if run.size == "full" else 0,
    flip=data.mirror_invariant(DATASET),
)
print(recipe)


def build(label, seed):
    keras.utils.set_random_seed(seed)
    return create_model(
        MODELS[label],
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        num_classes=NUM_CLASSES,
        drop_path_rate=recipe.drop_path_rate,
        **OVERRIDES[label],
    )


def count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


parameters = {label: count(build(label, SEEDS[0])) for label in MODELS}
davit_config = build("DaViT", SEEDS[0]).get_config()
say(
    f"`davit_32px`: **{parameters['DaViT']:,}** trainable parameters "
    f"(depths {davit_config['depths']}, widths {davit_config['dims']}, "
    f"heads/groups {davit_config['num_heads']}, window "
    f"{davit_config['window_size']}); the ViT: "
    f"**{parameters['ViT']:,}** ({VIT['depth']} blocks of width "
    f"{VIT['embed_dim']}), a difference of "
    f"{100 * (parameters['ViT'] / parameters['DaViT'] - 1):+.1f} %."
)

# %% [markdown]
# ## Baselines: chance and a linear probe
#
# Two numbers that any trained model must beat: guessing the most common
# class, and a logistic regression on the raw pixels (scikit-learn; at
# most 10,000 training images).

# %%
from kvision.selfsup import linear_probe_accuracy


def pixels(images):
    return data.to_model_range(images).reshape(len(images), -1)


chance = float(np.bincount(y_test).max() / len(y_test))
probe_start = time.perf_counter()
linear_probe = linear_probe_accuracy(
    pixels(x_fit[:10_000]),
    y_fit[:10_000],
    pixels(x_test),
    y_test,
    max_iter=1000,
    standardize=False,
)
say(
    f"Chance (the most common test class): **{chance:.3f}**; linear probe "
    f"on raw pixels: **{linear_probe:.3f}** test accuracy "
    f"({time.perf_counter() - probe_start:.0f} s)."
)

# %% [markdown]
# ## Training under the same budget, over several seeds
#
# `fit_model` compiles AdamW with the recipe's schedule and trains on
# augmented batches; with the same seed, both models see the same batches
# in the same order. The validation split gives the curves; the test split
# is evaluated once, after the last epoch.

# %%
histories = {label: [] for label in MODELS}
accuracy = {label: [] for label in MODELS}
seconds = {label: [] for label in MODELS}
models = {}
for seed in SEEDS:
    for label in MODELS:
        print(f"== {label}, seed {seed}")
        model = build(label, seed)
        result = fit_model(
            model,
            recipe,
            (x_fit, y_fit),
            test_data=(x_test, y_test),
            validation_data=(x_val, y_val),
            seed=seed,
            verbose=2,
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
axes[1].axhline(linear_probe, color="grey", ls="--", label="linear probe")
axes[1].axhline(chance, color="grey", ls=":", label="chance")
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
    val_accuracy = np.mean([h["val_accuracy"] for h in runs], axis=0)
    above = np.flatnonzero(val_accuracy > linear_probe)
    lines.append(
        f"- **{label}**: validation accuracy {val_accuracy[-1]:.3f} after "
        f"epoch {len(val_accuracy)}; "
        + (
            f"above the linear probe from epoch {above[0] + 1} on"
            if len(above)
            else "never above the linear probe"
        )
        + f"; {np.mean(seconds[label]):.0f} s of training per seed."
    )
say("**What to look for.**\n\n" + "\n".join(lines))

# %% [markdown]
# ## Test accuracy, over seeds
#
# One test image is worth `100 / len(x_test)` points; a gap between the
# models means something only if it is larger than how much seeds move
# each model.

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
    per_seed = ", ".join(
        f"{a:.3f} (seed {s})"
        for s, a in zip(SEEDS, accuracy[label], strict=True)
    )
    rows.append(
        f"| {label} | {parameters[label]:,} | {mean:.3f} ± {std:.3f} "
        f"| {per_seed} |"
    )
# One weight per pixel value and class, and one bias per class.
probe_parameters = (x_test[0].size + 1) * NUM_CLASSES
rows.append(f"| linear probe | {probe_parameters:,} | {linear_probe:.3f} | |")
rows.append(f"| chance | | {chance:.3f} | |")
gap = stats["DaViT"][0] - stats["ViT"][0]
noise = max(stats["DaViT"][1], stats["ViT"][1], 1 / len(x_test))
if len(SEEDS) < 2:
    verdict = "one seed cannot tell a real gap from seed noise"
elif abs(gap) > 2 * noise:
    verdict = "more than twice the larger seed spread: a real difference"
else:
    verdict = "within twice the seed spread: no clear winner in this run"
say(
    "\n".join(rows) + f"\n\nDaViT minus ViT: **{100 * gap:+.1f} points** over "
    f"{len(SEEDS)} seed(s); {verdict}. One test image = "
    f"{100 / len(x_test):.2f} points."
)

# %% [markdown]
# ## The paper's numbers beside this run's
#
# The paper reports ImageNet-1k top-1 accuracy at 224×224 after 300
# epochs (its Table 1); kvision's `davit_tiny`, `davit_small` and
# `davit_base` have exactly the official models' parameter counts.

# %%
PAPER = {  # (parameters, ImageNet-1k top-1 %), arXiv:2204.03645
    "davit_tiny": (28_360_168, 82.8),
    "davit_small": (49_745_896, 84.2),
    "davit_base": (87_954_408, 84.6),
}
rows = [
    "| model | data | parameters | top-1 % |",
    "| --- | --- | ---: | ---: |",
]
for name, (size, top1) in PAPER.items():
    rows.append(
        f"| `{name}` (paper) | ImageNet-1k, 224 px, 300 epochs | {size:,} "
        f"| {top1:.1f} |"
    )
rows.append(
    f"| `davit_32px` (this run) | {DATASET}, {len(x_fit):,} images, "
    f"{EPOCHS} epochs | {parameters['DaViT']:,} | "
    f"{100 * stats['DaViT'][0]:.1f} |"
)
smallest = min(size for size, _ in PAPER.values())
say(
    "\n".join(rows) + "\n\nThe numbers are not comparable: different "
    "data, resolution, model size (the paper's smallest model has "
    f"{smallest / parameters['DaViT']:.0f} times the parameters of "
    "this one) and training length. What this run can show is DaViT "
    "against a same-size ViT under one budget (above: "
    f"{100 * gap:+.1f} points, {verdict}). What it cannot show is the "
    "paper's claims at scale: ImageNet accuracy, the gains over Swin and "
    "DeiT at equal FLOPs, or transfer to detection and segmentation."
)

# %% [markdown]
# ## What the window attention looks at
#
# `attention_model()` returns every block's attention by name. The first
# spatial block works on the 8×8 map in four 4×4 windows; averaging each
# window's attention over its queries and heads gives how much attention
# each position **receives** from its window (each window sums to 1,
# uniform is 1/16). Window borders in white; first seed's DaViT.

# %%
davit = models["DaViT"]
probe_images = x_val[: 16 if SMOKE else 128]


def attention_of(model, images):
    """Every block's attention weights as NumPy arrays, by block name."""
    outputs = model.attention_model()(data.to_model_range(images))
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


scores = attention_of(davit, probe_images)
first_spatial = next(n for n in davit.feature_names if n.endswith("spatial"))
grid_side = davit.get_layer(first_spatial).output.shape[1]


def received(window_scores, side):
    """Attention each position receives in its window, ``(B, side, side)``."""
    batch, _, _, tokens, _ = window_scores.shape
    w = int(round(tokens**0.5))
    padded = -(-side // w) * w
    mass = window_scores.mean(axis=(2, 3))  # over heads and queries
    grid = mass.reshape(batch, padded // w, padded // w, w, w)
    grid = grid.transpose(0, 1, 3, 2, 4).reshape(batch, padded, padded)
    return grid[:, :side, :side]


window_maps = received(scores[first_spatial], grid_side)
window = davit_config["window_size"]
shown = probe_images[:8]
fig = viz.plot_overlays(
    shown,
    window_maps[: len(shown)],
    titles=[names[y] for y in y_val[: len(shown)]],
    suptitle="DaViT, first spatial block: attention received in its window",
)
border = IMAGE_SIZE * window / grid_side
for ax in fig.axes[len(shown) :]:
    for position in np.arange(border, IMAGE_SIZE, border):
        ax.axhline(position - 0.5, color="white", lw=0.8)
        ax.axvline(position - 0.5, color="white", lw=0.8)
fig.savefig(out / "window_attention.png", dpi=100)
fig

# %%
if with_masks:
    # The masks of the validation images: the same stratified split.
    (_, _), (mask_val, _) = data.split_validation(
        splits[0][2], y_train, fraction=0.1, seed=0
    )
    masks = mask_val[: len(probe_images)]
    mask_kind = "object masks"
elif DATASET == "digits":
    masks = data.to_model_range(probe_images).mean(-1) > 0.5  # the ink
    mask_kind = "the digit's ink (pixels brighter than 0.5)"
else:
    masks, mask_kind = None, None
localization = {}
if masks is not None:
    localization["window_attention"] = viz.localization_score(
        window_maps, masks
    )
peak = window_maps.reshape(len(window_maps), -1).max(axis=1).mean()
text = (
    f"**What to look for.** The most-attended position of each image gets "
    f"on average {peak:.3f} of its window's attention (uniform: "
    f"{1 / window**2:.3f})."
)
if masks is not None:
    where = localization["window_attention"]
    text += (
        f" Measured against {mask_kind}: {where['score']:.2f} of the "
        f"attention lands on it, against {where['uniform']:.2f} for an even "
        f"spread (ratio {where['ratio']:.2f}; above 1 means the windows "
        "attend to the object more than to the background)."
    )
else:
    text += " This dataset has no masks to measure where it lands."
say(text)

# %% [markdown]
# ## What the channel attention looks at
#
# Each channel block's attention is one $C_g \times C_g$ matrix per group
# and image: row $i$ says from which channels output channel $i$ gathers.
# Below, group 0 of each channel block, averaged over validation images,
# beside the same blocks before training (same seed).

# %%
untrained = build("DaViT", SEEDS[0])
before = attention_of(untrained, probe_images)
channel_blocks = [n for n in davit.feature_names if n.endswith("channel")]
fig = Figure(figsize=(3 * len(channel_blocks), 6))
axes = fig.subplots(2, len(channel_blocks), squeeze=False)
for column, name in enumerate(channel_blocks):
    for row, (source, when) in enumerate(
        ((before, "before training"), (scores, "trained"))
    ):
        matrix = source[name][:, 0].mean(axis=0)
        ax = axes[row, column]
        image = ax.imshow(matrix, cmap="viridis", vmin=0)
        ax.set_title(f"{name}\n{when}", fontsize=8)
        ax.set_xlabel("gathers from channel", fontsize=8)
        ax.set_ylabel("output channel", fontsize=8)
        fig.colorbar(image, ax=ax, fraction=0.046)
fig.tight_layout()
fig.savefig(out / "channel_attention.png", dpi=100)
fig


# %%
def channel_stats(matrices):
    """Row entropy / log(Cg), diagonal weight, top-10 % column share, and
    how much the matrices change from image to image."""
    size = matrices.shape[-1]
    rows_ = np.clip(matrices, 1e-12, 1.0)
    entropy = -(rows_ * np.log(rows_)).sum(-1).mean() / np.log(size)
    diagonal = np.diagonal(matrices, axis1=-2, axis2=-1).mean()
    columns = np.sort(matrices.mean(axis=(0, 1)).sum(0))[::-1]
    top = max(1, round(0.1 * size))
    variation = matrices.std(axis=0).mean() / matrices.mean()
    return {
        "relative_entropy": float(entropy),
        "diagonal": float(diagonal),
        "top10_column_share": float(columns[:top].sum() / columns.sum()),
        "image_to_image_variation": float(variation),
    }


channel_attention = {
    name: {
        "trained": channel_stats(scores[name]),
        "before_training": channel_stats(before[name]),
    }
    for name in channel_blocks
}
lines = []
for name, both in channel_attention.items():
    size = scores[name].shape[-1]
    t, b = both["trained"], both["before_training"]
    lines.append(
        f"- `{name}` ({size}×{size} per group): row entropy "
        f"{t['relative_entropy']:.2f} of uniform's (before training "
        f"{b['relative_entropy']:.2f}); weight on the diagonal "
        f"{t['diagonal']:.3f} (uniform {1 / size:.3f}); the top 10 % of "
        f"channels receive {t['top10_column_share']:.2f} of all weight "
        f"(before {b['top10_column_share']:.2f}); matrices vary by "
        f"{t['image_to_image_variation']:.2f} of their mean between images."
    )
say(
    "**What to look for.** Entropy below 1 means rows concentrate on a "
    "few channels; a top-10 % share well above 0.10 means some channels "
    "are read by many others (hubs); a variation above 0 means the "
    "channel mixing is recomputed per image from its global content, which "
    "a fixed 1×1 convolution could not do.\n\n" + "\n".join(lines)
)

# %% [markdown]
# ## Where the whole model looks: class activation maps
#
# The head is global average pooling, LayerNorm and one dense layer, so a
# class activation map (Zhou et al., 2016) is the last stage's map
# weighted by the head's class weights: for `davit_32px` at 32 pixels a
# 2×2 grid, coarse by construction. Validation images; titles are
# *predicted / true* labels.

# %%
cams = viz.class_activation_map(davit, data.to_model_range(probe_images))
shown = probe_images[:8]
logits = davit(data.to_model_range(shown), training=False)
predicted = np.argmax(keras.ops.convert_to_numpy(logits), axis=-1)
titles = [
    f"{names[p]} / {names[t]}"
    for p, t in zip(predicted, y_val[: len(shown)], strict=True)
]
fig = viz.plot_overlays(
    shown,
    cams[: len(shown)],
    titles=titles,
    suptitle="DaViT: class activation maps",
)
fig.savefig(out / "class_activation_maps.png", dpi=100)
fig

# %%
cam_grid = "×".join(str(n) for n in cams.shape[1:])
if masks is not None:
    localization["class_activation_map"] = viz.localization_score(cams, masks)
    cam = localization["class_activation_map"]
    say(
        f"**What to look for.** Against {mask_kind}, "
        f"{cam['score']:.2f} of the map's mass lands on it, against "
        f"{cam['uniform']:.2f} for an even spread (ratio "
        f"{cam['ratio']:.2f}). The map is a {cam_grid} grid: each cell "
        f"covers 1/{cams.shape[1] * cams.shape[2]} of the image, so only a "
        "ratio well above 1 says the model looks at the object."
    )
else:
    say(f"{DATASET} has no masks to measure where the {cam_grid} maps land.")

# %% [markdown]
# ## What this run measured

# %%
metrics = {
    "notebook": "07_davit",
    "backend": keras.backend.backend(),
    "device": run.device,
    "dataset": DATASET,
    "size": run.size,
    "smoke": SMOKE,
    "recipe": recipe.name,
    "epochs": recipe.epochs,
    "seeds": list(SEEDS),
    "chance": round(chance, 4),
    "linear_probe": round(linear_probe, 4),
    # The data's load_dataset arguments and split sizes: the tests
    # recompute numbers from them.
    "load_dataset": dict(
        image_size=IMAGE_SIZE, num_train=NUM_TRAIN, num_test=NUM_TEST, seed=0
    ),
    "split_sizes": dict(
        fit=len(x_fit), validation=len(x_val), test=len(x_test)
    ),
    "models": {
        label: {
            "registry_name": MODELS[label],
            "overrides": OVERRIDES[label],
            "parameters": parameters[label],
            "train_seconds": [round(s, 1) for s in seconds[label]],
            "test_accuracy": accuracy[label],
            "test_accuracy_mean": round(stats[label][0], 4),
            "test_accuracy_std": round(stats[label][1], 4),
        }
        for label in MODELS
    },
    "channel_attention": channel_attention,
    "localization": localization or None,
    "wall_seconds": round(time.perf_counter() - started, 1),
}
(out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
say(
    f"**In short.** On {DATASET} ({run.size} size, {EPOCHS} epochs, "
    f"{len(SEEDS)} seed(s), {keras.backend.backend()}): DaViT "
    f"{stats['DaViT'][0]:.3f} ± {stats['DaViT'][1]:.3f}, ViT "
    f"{stats['ViT'][0]:.3f} ± {stats['ViT'][1]:.3f} test accuracy "
    f"({verdict}); linear probe {linear_probe:.3f}, chance {chance:.3f}. "
    f"The whole notebook took {metrics['wall_seconds'] / 60:.1f} minutes. "
    f"Everything is in `{out / 'metrics.json'}`."
)
