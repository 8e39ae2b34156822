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
# # MetaFormer: what really mixes the tokens?
#
# **On Colab:** download this notebook's `.ipynb` and open it with Colab's
# *File, Upload notebook* (there is no public repository to link an *Open in
# Colab* badge to yet). It asks Colab for a GPU; if it opens on a CPU,
# choose one in *Runtime, Change runtime type*.
#
# **Paper:** Weihao Yu, Mi Luo, Pan Zhou, Chenyang Si, Yichen Zhou, Xinchao
# Wang, Jiashi Feng and Shuicheng Yan, *MetaFormer Is Actually What You
# Need for Vision* ([arXiv:2111.11418](https://arxiv.org/abs/2111.11418)).
#
# **What you will learn**
#
# - the MetaFormer skeleton — norm, token mixer, residual; norm, MLP,
#   residual — that ViT, MLP-Mixer, ConvMixer and PoolFormer share, and
#   how kvision's `MetaFormerBlock` plugs each of their token mixers into
#   it;
# - PoolFormer's mixer: 3x3 average pooling minus the input, with no
#   weights at all;
# - how five mixers (none, pooling, depthwise convolution, a token MLP,
#   attention) compare in one skeleton under one budget and three seeds:
#   accuracy against parameters and measured training speed, beside a
#   linear classifier on the pixels and chance;
# - what each mixer looks at: attention maps, token-MLP filters,
#   depthwise kernels and class activation maps.
#
# **Backends:** TensorFlow, JAX and PyTorch: pick one in the form below.
#
# **Runtime.** Measured on a 2-core CPU without a GPU, shared with other
# jobs: the CPU-sized run on digits (five mixers, three seeds each) took
# RUNTIME_TBD; the smoke run (`KVISION_SMOKE=1`) about a minute on each
# backend. On a Colab GPU, the full CIFAR-10 run (fifteen trainings of 30
# epochs) should take roughly two hours: an estimate, not measured.

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
# On Colab these lines are a form. `SIZE="auto"` trains the registered
# `metaformer_32px` on CIFAR-10 on a GPU or TPU, and a narrower, shallower
# version of it on a CPU (the next cell says which, and why). `digits`
# (scikit-learn's handwritten digits), `cluttered_digits` (the same digits
# at random sizes and places on textured clutter, with stroke masks: models
# learn it at CPU budgets, unlike `shapes`) and `shapes` (generated shapes)
# need no network and always run CPU-sized. Every mixer gets the same
# skeleton, recipe, epochs and seeds. `EPOCHS` left at `None` takes the
# size's default; `SEEDS` at `None` means three seeds (one in a smoke run).
# Environment variables, when set, win over the form (`KVISION_SMOKE=1` is a
# toy run that only checks the notebook works).

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
    "KVISION_OUTPUT_DIR", "outputs/notebooks/08_metaformer"
)

# %% [markdown]
# ## Device and run size

# %%
import time

notebook_start = time.perf_counter()
run = notebook.start(BACKEND, DATASET, size=SIZE)
SMOKE = run.smoke
IMAGE_SIZE = 32
if run.size == "smoke":
    epochs, NUM_TRAIN, NUM_TEST = 1, 64, 32
    MODEL = dict(depths=(1, 1), dims=(8, 16))
elif run.size == "cpu":
    # Digits in full (1,438 training images); 3,000 of anything larger.
    epochs = 12
    NUM_TRAIN, NUM_TEST = (None, None) if DATASET == "digits" else (3000, 1000)
    # metaformer_32px's stem and stage grids (16, 8, 4, 2), thinner and
    # shallower, so that fifteen trainings fit a CPU's 20 minutes.
    MODEL = dict(depths=(1, 1, 3, 1), dims=(16, 32, 64, 128))
else:
    epochs, NUM_TRAIN, NUM_TEST = 30, None, None
    MODEL = {}
EPOCHS = EPOCHS or epochs
SEEDS = notebook.seed_list(SEEDS, default=1 if SMOKE else 3)
MIXERS = ("identity", "pooling", "depthwise_conv", "spatial_mlp", "attention")
print(f"{EPOCHS} epochs, seeds {SEEDS}, model overrides {MODEL or 'none'}")

# %%
# %matplotlib inline
import json
import pathlib
import warnings

import keras
import numpy as np
from IPython.display import Markdown
from IPython.display import display
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from matplotlib.patches import FancyBboxPatch
from sklearn.exceptions import ConvergenceWarning

from kvision import data
from kvision import layers
from kvision import viz
from kvision.models import create_model
from kvision.selfsup import linear_probe_accuracy
from kvision.training import Recipe
from kvision.training import fit_model

out = pathlib.Path(OUTPUT_DIR)
out.mkdir(parents=True, exist_ok=True)


def say(text):
    """Shows a computed interpretation as formatted text."""
    display(Markdown(text))


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


# %% [markdown]
# ## One skeleton, many token mixers
#
# A transformer block does two things: it **mixes information between
# tokens** (attention) and it **transforms each token on its own** (the
# MLP), each behind a normalisation and inside a residual connection. The
# paper abstracts the first into a *token mixer* and calls the rest the
# **MetaFormer**. On a feature map $X \in \mathbb{R}^{H \times W \times C}$:
#
# $$
# Y = X + \mathrm{DropPath}\big(\gamma_1 \odot
#     \mathrm{TokenMixer}(\mathrm{Norm}(X))\big)
# $$
#
# $$
# Z = Y + \mathrm{DropPath}\big(\gamma_2 \odot
#     \mathrm{MLP}(\mathrm{Norm}(Y))\big)
# $$
#
# with LayerScale vectors $\gamma_1, \gamma_2$ (per channel, starting at
# $10^{-5}$) and stochastic depth. ViT's token mixer is attention,
# MLP-Mixer's an MLP across tokens, ConvMixer's a depthwise convolution.
# PoolFormer's is **pooling**:
#
# $$
# \mathrm{TokenMixer}(X)_{i,j} = \frac{1}{|N_{ij}|}
#     \sum_{(p,q) \in N_{ij}} X_{p,q} \; - \; X_{i,j}
# $$
#
# where $N_{ij}$ is the part of the 3x3 window around $(i, j)$ that lies
# inside the map: padding is not counted, so a corner averages 4 values.
# The input is subtracted because the residual adds it back. The norm is
# GroupNorm with a single group: each sample is normalised over $H$, $W$
# and $C$ together.
#
# `MetaFormerBlock(token_mixer=...)` is that block; the mixers are the
# library's own layers (`PoolingMixer`, `MultiHeadSelfAttention`, the
# `MLP` on transposed tokens as in `MixerBlock`, `DepthwiseConv2D`), or
# any Keras layer you pass.


# %%
def draw_skeleton():
    """The MetaFormer block as boxes, adds and arrows."""
    fig = Figure(figsize=(11, 2.8))
    ax = fig.subplots()
    ax.set_xlim(0, 11.2)
    ax.set_ylim(0.1, 2.8)
    ax.axis("off")
    items = [
        ("X", "#eeeeee"),
        ("Norm", "#cfe2f3"),
        ("Token\nmixer", "#f9cb9c"),
        ("γ₁ ·\nDropPath", "#d9ead3"),
        ("+", None),
        ("Norm", "#cfe2f3"),
        ("MLP", "#b4a7d6"),
        ("γ₂ ·\nDropPath", "#d9ead3"),
        ("+", None),
        ("Z", "#eeeeee"),
    ]
    spans, x = [], 0.2
    for label, colour in items:
        width = 0.45 if colour is None else 0.9
        if colour is None:  # an add node
            ax.add_patch(
                Circle((x + width / 2, 1.4), 0.2, fill=False, edgecolor="k")
            )
        else:
            ax.add_patch(
                FancyBboxPatch(
                    (x, 1.0),
                    width,
                    0.8,
                    boxstyle="round,pad=0.05",
                    facecolor=colour,
                    edgecolor="k",
                )
            )
        ax.text(x + width / 2, 1.4, label, ha="center", va="center")
        spans.append((x, x + width))
        x += width + 0.3
    for (_, left), (right, _) in zip(spans[:-1], spans[1:], strict=False):
        ax.annotate(
            "",
            xy=(right - 0.02, 1.4),
            xytext=(left + 0.06, 1.4),
            arrowprops=dict(arrowstyle="->"),
        )
    for start, end in ((0, 4), (4, 8)):  # the two residual connections
        x0, x1 = (sum(spans[start]) / 2, sum(spans[end]) / 2)
        bottom = 1.6 if items[start][1] is None else 1.85
        ax.plot([x0, x0, x1], [bottom, 2.35, 2.35], color="k", linewidth=1)
        ax.annotate(
            "",
            xy=(x1, 1.6),
            xytext=(x1, 2.36),
            arrowprops=dict(arrowstyle="->"),
        )
        ax.text((x0 + x1) / 2, 2.45, "residual", ha="center", fontsize=8)
    ax.text(
        sum(spans[2]) / 2,
        0.75,
        "identity | pooling | depthwise conv\n| token MLP | attention",
        ha="center",
        va="top",
        fontsize=8,
        color="#7f3f00",
    )
    ax.set_title("the MetaFormer block (PoolFormer: token mixer = pooling)")
    return fig


fig = draw_skeleton()
fig.savefig(out / "metaformer_skeleton.png", dpi=100)
fig

# %% [markdown]
# The pooling mixer on a tiny ramp, and on a constant image: the average
# of a constant is the constant, so pooling minus the input is exactly 0
# (kvision sums the differences to the centre, so no rounding is left).

# %%
ramp = np.arange(20, dtype="float32").reshape(1, 4, 5, 1)
mixer = layers.PoolingMixer()
print("input\n", ramp[0, :, :, 0])
print("pooling minus input\n", to_numpy(mixer(ramp))[0, :, :, 0])
constant = np.full((1, 4, 5, 3), 0.1, "float32")
print("on a constant image:", np.unique(to_numpy(mixer(constant))))

# %% [markdown]
# Where the parameters sit: one block of each kind at a stage width of 64
# channels on a 16x16 grid (256 tokens).

# %%
block_parameters = {}
for name in MIXERS:
    block = layers.MetaFormerBlock(name)
    block.build((None, 16, 16, 64))
    block_parameters[name] = {
        "mixer": block.mixer.count_params(),
        "total": block.count_params(),
    }
    print(
        f"{name:15s} mixer {block_parameters[name]['mixer']:7,d}  "
        f"block {block_parameters[name]['total']:7,d} parameters"
    )
growth = (
    max(block_parameters[m]["total"] for m in MIXERS)
    / block_parameters["pooling"]["total"]
    - 1
)
say(
    f"**Reading.** Pooling and identity add no parameters: their block is "
    f"{block_parameters['pooling']['total']:,} parameters, nearly all in "
    f"the MLP. The token MLP adds "
    f"{block_parameters['spatial_mlp']['mixer']:,} (it grows with the "
    f"square of the token count), attention "
    f"{block_parameters['attention']['mixer']:,} (with the square of the "
    f"width), the depthwise convolution "
    f"{block_parameters['depthwise_conv']['mixer']:,}. The largest mixer "
    f"here makes a block {growth:.0%} bigger than a pooling block."
)

# %% [markdown]
# ## Data
#
# A tenth of the training images is held out for validation: the curves
# are drawn on it; the test split is used once per model, at the end.

# %%
splits = data.load_dataset(
    DATASET,
    image_size=IMAGE_SIZE,
    num_train=NUM_TRAIN,
    num_test=NUM_TEST,
    seed=SEEDS[0],
)
(x_train, y_train), (x_test, y_test) = splits
(x_fit, y_fit), (x_val, y_val) = data.split_validation(
    x_train, y_train, fraction=0.1, seed=SEEDS[0]
)
names = data.class_names(DATASET)
NUM_CLASSES = len(names)
print(
    f"{DATASET}: {len(x_fit)} training, {len(x_val)} validation and "
    f"{len(x_test)} test images, {NUM_CLASSES} classes"
)

# %% [markdown]
# ### Two baselines on the same data
#
# Any mixer should beat **chance** (always answering the most frequent test
# class) and a **linear classifier on the raw pixels** (scikit-learn's
# logistic regression, trained on the same training images; on CIFAR on a
# subset of 5,000 of them, to stay quick).

# %%
probe_count = min(len(x_fit), 5000)
# 100 L-BFGS steps: on digits the test accuracy is the same as at full
# convergence (about 220 steps), at half the time.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    linear_accuracy = linear_probe_accuracy(
        data.to_model_range(x_fit[:probe_count]).reshape(probe_count, -1),
        y_fit[:probe_count],
        data.to_model_range(x_test).reshape(len(x_test), -1),
        y_test,
        max_iter=100,
        standardize=False,
    )
chance_accuracy = float(np.bincount(y_test).max() / len(y_test))
print(f"linear classifier on pixels: {linear_accuracy:.3f}")
print(f"chance (most frequent class): {chance_accuracy:.3f}")

# %% [markdown]
# ## The same skeleton with five mixers
#
# `metaformer_32px` is PoolFormer's layout for 32x32 images: a 3x3,
# stride-2 stem keeps grids of 16x16, 8x8, 4x4 and 2x2 in its four stages
# (PoolFormer's own 7x7, stride-4 stem would end at 1x1, where no mixer
# has anything to mix). Only `token_mixer` changes between the five
# models; attention gets one head per 32 channels.

# %%
recipe = Recipe(
    name="metaformer_small_data",
    source=(
        "kvision's small-data recipe for this comparison (the paper trains "
        "on ImageNet for 300 epochs at batch 1024)"
    ),
    epochs=EPOCHS,
    batch_size=64,
    learning_rate=1e-3,
    warmup_epochs=1,
    weight_decay=0.05,
    label_smoothing=0.1,
    drop_path_rate=0.1 if run.size == "full" else 0.0,
    flip=data.mirror_invariant(DATASET),
)


def build(mixer, seed):
    keras.utils.set_random_seed(seed)
    return create_model(
        "metaformer_32px",
        token_mixer=mixer,
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        num_classes=NUM_CLASSES,
        drop_path_rate=recipe.drop_path_rate,
        **MODEL,
    )


# The first seed's models, built once here and trained below.
first_models = {mixer: build(mixer, SEEDS[0]) for mixer in MIXERS}
parameters = {
    mixer: sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    for mixer, model in first_models.items()
}
for mixer, count in parameters.items():
    print(f"{mixer:15s} {count:>10,d} trainable parameters")
# The token MLP's filters before training, to compare with after.
initial_token_kernel = viz.token_mixing_weights(
    first_models["spatial_mlp"]
).copy()
print(recipe)

# %% [markdown]
# ## Training: five mixers, same budget, every seed
#
# Each run gets the same recipe (AdamW at 1e-3, batch 64, one warm-up
# epoch then cosine decay, label smoothing 0.1, random crops; flips only
# where they keep the label), the same batches in the same order for a
# given seed, and the same epochs. Training speed is measured per epoch,
# leaving out the first (it compiles) and the validation pass.


# %%
class EpochTimer(keras.callbacks.Callback):
    """Seconds of training per epoch, without the validation pass."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.testing = time.perf_counter(), 0.0

    def on_test_begin(self, logs=None):
        self.test_start = time.perf_counter()

    def on_test_end(self, logs=None):
        self.testing += time.perf_counter() - self.test_start

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self.start - self.testing
        self.seconds.append(elapsed)


runs = {mixer: [] for mixer in MIXERS}
trained = {}  # the first seed's model of each mixer, to look inside
for mixer in MIXERS:
    for seed in SEEDS:
        model = first_models[mixer] if seed == SEEDS[0] else build(mixer, seed)
        timer = EpochTimer()
        result = fit_model(
            model,
            recipe,
            (x_fit, y_fit),
            test_data=(x_test, y_test),
            validation_data=(x_val, y_val),
            seed=seed,
            verbose=0,
            callbacks=[timer],
        )
        steady = timer.seconds[1:] or timer.seconds
        runs[mixer].append(
            {
                "seed": seed,
                "test_accuracy": result.test_accuracy,
                "val_accuracy": [
                    float(v) for v in result.history["val_accuracy"]
                ],
                "images_per_second": len(x_fit) / float(np.median(steady)),
                "train_seconds": result.train_seconds,
            }
        )
        if seed == SEEDS[0]:
            trained[mixer] = model
        print(
            f"{mixer:15s} seed {seed}: test accuracy "
            f"{result.test_accuracy:.3f}, "
            f"{runs[mixer][-1]['images_per_second']:.0f} img/s, "
            f"{result.train_seconds:.0f} s"
        )

# %% [markdown]
# ## Accuracy against parameters and speed


# %%
def summary(mixer):
    accuracies = np.array([r["test_accuracy"] for r in runs[mixer]])
    speeds = [r["images_per_second"] for r in runs[mixer]]
    return {
        "parameters": parameters[mixer],
        "images_per_second": float(np.median(speeds)),
        "mean": float(accuracies.mean()),
        "std": float(accuracies.std()),
        "per_seed": [float(a) for a in accuracies],
    }


table = {mixer: summary(mixer) for mixer in MIXERS}
rows = [
    "| token mixer | parameters | train img/s | test accuracy "
    "(mean ± std) | per seed |",
    "| --- | ---: | ---: | ---: | --- |",
]
for mixer, s in table.items():
    seeds = ", ".join(
        f"{seed}: {a:.3f}" for seed, a in zip(SEEDS, s["per_seed"], strict=True)
    )
    rows.append(
        f"| {mixer} | {s['parameters']:,} | {s['images_per_second']:.0f} | "
        f"{s['mean']:.3f} ± {s['std']:.3f} | {seeds} |"
    )
rows.append(f"| linear classifier on pixels | | | {linear_accuracy:.3f} | |")
rows.append(f"| chance | | | {chance_accuracy:.3f} | |")
say("\n".join(rows))

# %%
fig = Figure(figsize=(10, 4))
axes = fig.subplots(1, 2, sharey=True)
for ax, key, label in (
    (axes[0], "parameters", "trainable parameters"),
    (axes[1], "images_per_second", "training images / second (measured)"),
):
    for mixer, s in table.items():
        ax.errorbar(
            s[key], s["mean"], yerr=s["std"], fmt="o", capsize=4, label=mixer
        )
        ax.scatter(
            [s[key]] * len(s["per_seed"]),
            s["per_seed"],
            s=10,
            color="grey",
            alpha=0.6,
        )
    ax.axhline(linear_accuracy, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)
# Zoomed on the models and the linear baseline; chance is far below.
values = [a for s in table.values() for a in s["per_seed"]] + [linear_accuracy]
margin = max(0.01, 0.1 * (max(values) - min(values)))
axes[0].set_ylim(min(values) - margin, max(values) + margin)
axes[0].set_ylabel("test accuracy (mean ± std; grey: each seed)")
axes[0].text(
    axes[0].get_xlim()[0],
    linear_accuracy,
    " linear classifier on pixels",
    va="bottom",
    fontsize=8,
)
axes[1].legend(fontsize=8, loc="lower right")
fig.suptitle(
    f"metaformer_32px on {DATASET}: one skeleton, five token mixers "
    f"(chance: {chance_accuracy:.3f})"
)
fig.tight_layout()
fig.savefig(out / "accuracy_vs_cost.png", dpi=100)
fig

# %%
best = max(table, key=lambda m: table[m]["mean"])
noise = max(s["std"] for s in table.values())
close = [
    m
    for m in MIXERS
    if table[best]["mean"] - table[m]["mean"] <= max(2 * noise, 1 / len(x_test))
]
cheapest_close = min(close, key=lambda m: table[m]["parameters"])
fastest = max(table, key=lambda m: table[m]["images_per_second"])
worst = min(table, key=lambda m: table[m]["mean"])
clear_of_linear = [
    m
    for m in MIXERS
    if table[m]["mean"] - linear_accuracy > max(2 * table[m]["std"], 1e-9)
]
say(
    f"**Reading.** {best} is best on average "
    f"({table[best]['mean']:.3f}); the largest spread between seeds is "
    f"{noise:.3f}, and one test image is worth {1 / len(x_test):.3f}. "
    f"Within two seed spreads of the best: {', '.join(close)}; the "
    f"smallest of those is {cheapest_close} "
    f"({table[cheapest_close]['parameters']:,} parameters against "
    f"{table[best]['parameters']:,}). The fastest to train is {fastest} "
    f"({table[fastest]['images_per_second']:.0f} img/s, against "
    f"{table['attention']['images_per_second']:.0f} for attention), the "
    f"weakest {worst} ({table[worst]['mean']:.3f}). Against the linear "
    f"classifier on pixels ({linear_accuracy:.3f}), "
    + (
        f"only {', '.join(clear_of_linear)} are ahead by more than two seed "
        "spreads"
        if clear_of_linear
        else "no mixer is ahead by more than two seed spreads: this data is "
        "too easy to separate them from a linear model"
    )
    + f"; chance is {chance_accuracy:.3f}. Speeds were measured on this "
    "machine, shared with other work: compare them within this run only."
)

# %% [markdown]
# ## Learning curves
#
# Validation accuracy after every epoch, averaged over the seeds.

# %%
fig = Figure(figsize=(6.5, 4))
ax = fig.subplots()
mean_curves = {}
for mixer in MIXERS:
    curves = np.array([r["val_accuracy"] for r in runs[mixer]])
    mean_curves[mixer] = curves.mean(axis=0)
    ax.plot(np.arange(1, curves.shape[1] + 1), mean_curves[mixer], label=mixer)
ax.set_xlabel("epoch")
ax.set_ylabel("validation accuracy (mean over seeds)")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(out / "training_curves.png", dpi=100)
fig


# %%
def first_epoch_above(curve, level):
    above = np.flatnonzero(curve >= level)
    return int(above[0]) + 1 if len(above) else None


level = 0.9 * max(float(c[-1]) for c in mean_curves.values())
reached = {m: first_epoch_above(c, level) for m, c in mean_curves.items()}
say(
    f"**Reading.** Epochs to reach {level:.3f} validation accuracy (90 % of "
    "the best final value): "
    + ", ".join(
        f"{m} {e if e is not None else 'never'}" for m, e in reached.items()
    )
    + ". Final validation accuracy: "
    + ", ".join(f"{m} {c[-1]:.3f}" for m, c in mean_curves.items())
    + "."
)

# %% [markdown]
# ## What each mixer looks at
#
# ### Attention
#
# The attention model's last block in the first stage (a 16x16 grid of
# tokens): where the token at the centre of the image looks, averaged
# over heads, for a few test images.

# %%
attention_model = trained["attention"]
# Every attention block's weights on test images, the first 6 shown here.
probe_images = data.to_model_range(x_test[: 16 if SMOKE else 128])
all_maps = viz.attention_maps(attention_model, probe_images)
shown = x_test[:6]
last_of_stage_0 = [n for n in all_maps if n.startswith("stage_0_")][-1]
first_stage = all_maps[last_of_stage_0][: len(shown)]  # (B, heads, N, N)
side = int(round(np.sqrt(first_stage.shape[-1])))
centre = (side // 2) * side + side // 2
centre_maps = first_stage[:, :, centre, :].mean(axis=1).reshape(-1, side, side)
fig = viz.plot_overlays(
    shown,
    centre_maps,
    titles=[names[y] for y in y_test[: len(shown)]],
    suptitle="attention from the centre token, stage 0, mean over heads",
)
fig.savefig(out / "attention_maps.png", dpi=100)
fig

# %% [markdown]
# How far attention reaches, per stage: the mean distance (in input
# pixels) between a token and the tokens it attends to, over many test
# images, next to the same number for PoolFormer's 3x3 window and for
# attention spread evenly over the whole grid.

# %%
reach = {}
for stage in sorted({n.split("_block_")[0] for n in all_maps}):
    weights = [w for n, w in all_maps.items() if n.startswith(stage + "_")]
    tokens = weights[0].shape[-1]
    grid = int(round(np.sqrt(tokens)))
    pixels = IMAGE_SIZE / grid
    measured = np.mean(
        [viz.distance_of(w, (grid, grid), (pixels, pixels)) for w in weights]
    )
    uniform = viz.distance_of(
        np.full((1, 1, tokens, tokens), 1.0 / tokens),
        (grid, grid),
        (pixels,) * 2,
    )[0]
    window = np.zeros((1, 1, tokens, tokens))
    rows, cols = np.divmod(np.arange(tokens), grid)
    near = (np.abs(rows[:, None] - rows[None]) <= 1) & (
        np.abs(cols[:, None] - cols[None]) <= 1
    )
    window[0, 0] = near / near.sum(axis=1, keepdims=True)
    pooling = viz.distance_of(window, (grid, grid), (pixels, pixels))[0]
    reach[stage] = {
        "grid": grid,
        "attention_px": float(measured),
        "pooling_window_px": float(pooling),
        "uniform_px": float(uniform),
    }
    print(
        f"{stage}: {grid}x{grid} grid, attention {measured:.1f} px, "
        f"3x3 pooling {pooling:.1f} px, uniform {uniform:.1f} px"
    )
stage0 = reach["stage_0"]
local = (
    stage0["attention_px"]
    < (stage0["pooling_window_px"] + stage0["uniform_px"]) / 2
)
say(
    f"**Reading.** In the first stage attention reaches "
    f"{stage0['attention_px']:.1f} pixels on average: "
    + (
        "closer to the pooling window's "
        f"{stage0['pooling_window_px']:.1f} than to the "
        f"{stage0['uniform_px']:.1f} of attention spread evenly, so it has "
        "learned to look mostly nearby, as pooling does by construction."
        if local
        else f"nearer the {stage0['uniform_px']:.1f} of attention spread "
        "evenly than the pooling window's "
        f"{stage0['pooling_window_px']:.1f}: it mixes globally, which "
        "pooling cannot."
    )
    + " The model has no position embedding (neither has PoolFormer); "
    "the convolutional stem and downsampling layers, with their zero "
    "padding, are where position comes from."
)

# %% [markdown]
# ### The token MLP's filters
#
# The first layer of the token MLP in the first block weighs all 256
# tokens of the 16x16 grid for each hidden unit: put back on the grid,
# each column is a spatial filter (as in MLP-Mixer's Figure 5).

# %%
spatial_model = trained["spatial_mlp"]
filters = viz.token_mixing_weights(spatial_model, block=0)
fig = viz.plot_token_mixing(filters, count=16)
fig.savefig(out / "token_mixing.png", dpi=100)
fig


# %%
def near_peak_share(weights):
    """Mean share of each filter's |weight| within 1 cell of its peak."""
    flat = np.abs(weights).reshape(len(weights), -1)
    gh, gw = weights.shape[1:]
    rows, cols = np.divmod(np.arange(gh * gw), gw)
    peaks = flat.argmax(axis=1)
    near = (np.abs(rows[None] - rows[peaks][:, None]) <= 1) & (
        np.abs(cols[None] - cols[peaks][:, None]) <= 1
    )
    return float(((flat * near).sum(axis=1) / flat.sum(axis=1)).mean())


trained_share = near_peak_share(filters)
initial_share = near_peak_share(initial_token_kernel)
say(
    f"**Reading.** On average {trained_share:.1%} of a trained filter's "
    f"weight lies within one cell of its peak, against "
    f"{initial_share:.1%} at initialisation"
    + (
        ": training made the token MLP more local, a learned cousin of "
        "the pooling window."
        if trained_share > 1.5 * initial_share
        else ": after this short training the filters are still about as "
        "spread out as at initialisation; the token MLP has not become "
        "local here."
    )
)

# %% [markdown]
# ### The depthwise kernels next to pooling
#
# PoolFormer's mixer is a fixed 3x3 filter: 1/9 on every neighbour and
# 1/9 - 1 at the centre (inside the image). The depthwise mixer learns one
# 3x3 filter per channel. How many of its first-stage filters have the
# same shape (a positive correlation with the pooling filter)?

# %%
pooling_filter = np.full((3, 3), 1 / 9)
pooling_filter[1, 1] -= 1
depthwise_blocks = [
    b
    for b in trained["depthwise_conv"].layers
    if isinstance(b, layers.MetaFormerBlock) and b.name.startswith("stage_0")
]
kernels = np.concatenate(
    [
        to_numpy(b.mixer.kernel)[:, :, :, 0].transpose(2, 0, 1)
        for b in depthwise_blocks
    ]
)
correlations = np.array(
    [np.corrcoef(k.ravel(), pooling_filter.ravel())[0, 1] for k in kernels]
)
centre_weight = float(kernels[:, 1, 1].mean())
neighbour_weight = float(
    (kernels.sum(axis=(1, 2)) - kernels[:, 1, 1]).mean() / 8
)
laplacian_like = float((correlations > 0).mean())
say(
    f"**Reading.** {laplacian_like:.0%} of the {len(kernels)} first-stage "
    f"depthwise filters correlate positively with pooling-minus-input; "
    f"their mean centre weight is {centre_weight:+.3f} and their mean "
    f"neighbour weight {neighbour_weight:+.3f}. "
    + (
        "Most learned the same kind of filter that PoolFormer fixes."
        if laplacian_like > 0.5
        else "Most did not: the learned filters are not pooling-like here."
    )
)

# %% [markdown]
# ### Class activation maps
#
# The head is GroupNorm, average pooling and a dense layer, so the map of
# the normalised last stage weighted by the predicted class's head
# weights (Zhou et al., 2016) averages to the logit. The maps live on the
# last stage's grid, 2x2 for the four-stage models at 32 pixels, so they
# say which quarter of the image mattered; titles are the predicted
# classes, the top row the true ones.

# %%
shown = x_test[:8]
scaled = data.to_model_range(shown)
fig = Figure(figsize=(1.4 * len(shown), 1.5 * (len(MIXERS) + 1)))
axes = fig.subplots(len(MIXERS) + 1, len(shown), squeeze=False)
correct_shown = {}
cams = {}
for col, image in enumerate(shown):
    axes[0, col].imshow(image)
    axes[0, col].set_title(names[y_test[col]], fontsize=8)
for row, mixer in enumerate(MIXERS, start=1):
    model = trained[mixer]
    cams[mixer] = viz.class_activation_map(model, scaled)
    predicted = np.argmax(to_numpy(model(scaled, training=False)), axis=-1)
    correct_shown[mixer] = int((predicted == y_test[: len(shown)]).sum())
    for col, image in enumerate(shown):
        axes[row, col].imshow(image)
        axes[row, col].imshow(
            cams[mixer][col],
            cmap="inferno",
            alpha=0.55,
            extent=(-0.5, IMAGE_SIZE - 0.5, IMAGE_SIZE - 0.5, -0.5),
        )
        axes[row, col].set_title(names[predicted[col]], fontsize=8)
    axes[row, 0].set_ylabel(mixer, fontsize=8)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
fig.savefig(out / "class_activation_maps.png", dpi=100)
fig

# %%
agreement = np.mean(
    [
        np.mean(
            [
                np.argmax(cams[a][i]) == np.argmax(cams[b][i])
                for i in range(len(shown))
            ]
        )
        for k, a in enumerate(MIXERS)
        for b in MIXERS[k + 1 :]
    ]
)
say(
    "**Reading.** Correct among these 8: "
    + ", ".join(f"{m} {c}" for m, c in correct_shown.items())
    + f". On the {cams[MIXERS[0]].shape[1]}x{cams[MIXERS[0]].shape[2]} "
    f"grid, two mixers put their strongest cell in the same place "
    f"{agreement:.0%} of the time"
    + (
        ": the skeleton, stem and downsampling layers that every model "
        "shares do much of the looking."
        if agreement > 0.5
        else ": the mixers lead the models to look at different parts."
    )
)

# %% [markdown]
# ## The paper's claim beside this run
#
# The paper (its ablation of the token mixer, PoolFormer-S12 on
# ImageNet-1k at 224x224, 300 epochs) reports 77.2 % top-1 with pooling
# and still 74.3 % with the **identity** as token mixer, i.e. no token
# mixing at all: the skeleton alone carries most of the accuracy, and a
# mixer as simple as pooling adds the rest. This run has different data,
# a far smaller model and a short budget, so compare the *pattern*, not
# the numbers.

# %%
paper = {"identity": 74.3, "pooling": 77.2}
gap = 100 * (table["pooling"]["mean"] - table["identity"]["mean"])
spread = 100 * max(table["pooling"]["std"], table["identity"]["std"])
say(
    "| | data | model | identity | pooling | gap (points) |\n"
    "| --- | --- | --- | ---: | ---: | ---: |\n"
    "| paper | ImageNet-1k, 300 epochs | PoolFormer-S12 (11.9M) "
    f"| {paper['identity']} | {paper['pooling']} "
    f"| {paper['pooling'] - paper['identity']:.1f} |\n"
    f"| this run | {DATASET}, {EPOCHS} epochs, {len(SEEDS)} seed(s) "
    f"| metaformer_32px ({parameters['pooling'] / 1e6:.2f}M) "
    f"| {100 * table['identity']['mean']:.1f} ± "
    f"{100 * table['identity']['std']:.1f} "
    f"| {100 * table['pooling']['mean']:.1f} ± "
    f"{100 * table['pooling']['std']:.1f} | {gap:+.1f} |"
)
share = table["identity"]["mean"] / table[best]["mean"]
paper_share = paper["identity"] / paper["pooling"]
paper_gap = paper["pooling"] - paper["identity"]
if gap > 2 * spread and gap > 0:
    verdict = (
        f"Pooling beats the identity by {gap:.1f} points, more than twice "
        f"the seed spread ({spread:.1f}): token mixing helps here, as in "
        "the paper."
    )
elif gap > 0:
    verdict = (
        f"Pooling is ahead of the identity by {gap:.1f} points, but the "
        f"seeds spread by up to {spread:.1f}: this run cannot tell the two "
        f"apart, so it does not show the paper's {paper_gap:.1f}-point "
        "gain from pooling."
    )
else:
    verdict = (
        f"Pooling is not ahead of the identity here ({gap:+.1f} points, "
        f"seed spread {spread:.1f}): this run does not show the paper's "
        "gain from pooling; on such small images and data the stem and "
        "the downsampling convolutions may already mix enough."
    )
say(
    f"**Reading.** {verdict} The other half of the claim is that the "
    "skeleton does most of the work. With no token mixing at all, the "
    f"identity model reaches {share:.1%} of the best mixer's accuracy "
    f"({table['identity']['mean']:.3f} against {table[best]['mean']:.3f} "
    f"for {best}; the paper: {paper_share:.1%} of pooling's)"
    + (
        f", clearly above the linear classifier on pixels "
        f"({linear_accuracy:.3f}): the stem, the per-token MLPs and the "
        "downsampling convolutions already make a useful model."
        if "identity" in clear_of_linear
        else f", but it is not clearly above the linear classifier on "
        f"pixels ({linear_accuracy:.3f}), so on this data that says little: "
        "a harder dataset (CIFAR-10) is where the comparison means more."
    )
)

# %% [markdown]
# ## What this run measured

# %%
metrics = {
    "notebook": "08_metaformer",
    "backend": keras.backend.backend(),
    "device": run.device,
    "dataset": DATASET,
    "size": run.size,
    "smoke": SMOKE,
    "seeds": list(SEEDS),
    "model": "metaformer_32px" + (f" with {MODEL}" if MODEL else ""),
    # The data's load_dataset arguments and split sizes, and the models'
    # registry name and overrides: the tests recompute numbers from them.
    "registry_name": "metaformer_32px",
    "overrides": MODEL,
    "load_dataset": dict(
        image_size=IMAGE_SIZE,
        num_train=NUM_TRAIN,
        num_test=NUM_TEST,
        seed=SEEDS[0],
    ),
    "split_sizes": dict(
        fit=len(x_fit), validation=len(x_val), test=len(x_test)
    ),
    "recipe": {
        "name": recipe.name,
        "epochs": recipe.epochs,
        "batch_size": recipe.batch_size,
        "learning_rate": recipe.learning_rate,
        "warmup_epochs": recipe.warmup_epochs,
        "label_smoothing": recipe.label_smoothing,
        "flip": recipe.flip,
    },
    "mixers": table,
    "linear_probe_accuracy": linear_accuracy,
    "chance_accuracy": chance_accuracy,
    "attention_reach": reach,
    "token_mlp_near_peak_share": {
        "trained": trained_share,
        "initial": initial_share,
    },
    "depthwise_pooling_like_share": laplacian_like,
    "paper_imagenet_s12": paper,
    "wall_seconds": round(time.perf_counter() - notebook_start, 1),
}
(out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
print(json.dumps(metrics, indent=2))
