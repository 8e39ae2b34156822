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
# # SPT and LSA beyond ViT: Swin, PiT, CaiT and T2T
#
# **On Colab:** download this notebook's `.ipynb` and open it with Colab's
# *File, Upload notebook* (there is no public repository to link an *Open in
# Colab* badge to yet). It asks Colab for a GPU; if it opens on a CPU,
# choose one in *Runtime, Change runtime type*.
#
# **Paper:** Seung Hoon Lee, Seunghyun Lee and Byung Cheol Song, *Vision
# Transformer for Small-Size Datasets*
# ([arXiv:2112.13492](https://arxiv.org/abs/2112.13492)), Table 2.
#
# The paper does not stop at ViT: it adds Shifted Patch Tokenization (SPT)
# and Locality Self-Attention (LSA) to four more vision transformers and
# reports a gain on every one, largest on the two hierarchical ones
# (Swin, PiT), where SPT also replaces the layer that pools tokens between
# stages.
#
# **What you will learn**
#
# - what each of the four architectures adds to a plain ViT: shifted
#   windows with a relative position bias (Swin), pooling stages (PiT),
#   class attention and talking heads (CaiT), an overlapping soft split of
#   the image (T2T), and where SPT and LSA go in each;
# - how to train each plain / "SL" pair under the same budget and seeds,
#   and read the result against a linear probe, chance and the paper's
#   Table 2;
# - what each architecture attends to: Swin's window attention (unshifted
#   and shifted), CaiT's class attention, PiT's class token at every stage.
#
# **Backends:** TensorFlow, JAX and PyTorch: pick one in the form below.
#
# **Runtime.** Measured on a 2-core CPU without a GPU, shared with other
# jobs: see the closing cell for this run's own training time.

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
# On Colab these lines are a form. `SIZE="auto"` runs the paper's models and
# recipe on CIFAR-100 when a GPU or TPU is there, and a CPU-sized run
# otherwise (every model shrunk by the same rule, a short plain recipe): the
# next cell says which, and why. `digits` (scikit-learn's handwritten
# digits), `cluttered_digits` (the same digits at random sizes and places on
# textured clutter, with stroke masks: models learn it at CPU budgets,
# unlike `shapes`) and `shapes` (generated shapes) need no network and
# always run CPU-sized. `SEEDS` is the number of seeds per model (3 by
# default on the CPU-sized run: fewer is faster, and every model gets the
# same seeds); `EPOCHS` left at `None` takes the size's default. On a 2-core
# CPU the torch backend trains these small models fastest: the three-seed
# CPU-sized run on digits took 22 minutes with it, while TensorFlow and JAX
# took 1.5-2.3 times as long per model. Environment variables, when set, win
# over the form (`KVISION_SMOKE=1` is a toy run that only checks the
# notebook works).

# %% tags=["parameters"]
from kvision import notebook

BACKEND = "jax"  # @param ["jax", "tensorflow", "torch"]
# fmt: off
# ruff: disable[E501] (a Colab form field is one line, however long)
DATASET = "cifar100"  # @param ["cifar100", "cifar10", "digits", "cluttered_digits", "shapes"]
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
    "KVISION_OUTPUT_DIR", "outputs/notebooks/05_sl_family"
)

# %% [markdown]
# ## Device and run size

# %%
run = notebook.start(BACKEND, DATASET, size=SIZE)
IMAGE_SIZE = 32
# Every architecture keeps its paper layout; the CPU-sized run divides
# widths by about 3-6 and depths by 2-6, the same rule for plain and SL
# models, so each pair stays comparable. The smoke run only checks that
# every cell works.
if run.size == "smoke":
    epochs, NUM_TRAIN, NUM_TEST, seeds = 1, 64, 32, 1
    SHRINK = {
        "Swin": dict(embed_dim=12, depths=(2, 1, 1), num_heads=(1, 2, 2)),
        "PiT": dict(head_dim=8, depths=(1, 1, 1), num_heads=(1, 2, 2)),
        "CaiT": dict(
            embed_dim=16,
            depth=1,
            class_depth=1,
            num_heads=2,
            head_dim=8,
            mlp_dim=16,
        ),
        "T2T": dict(
            embed_dim=16, depth=1, num_heads=2, mlp_dim=16, token_dim=8
        ),
    }
elif run.size == "cpu":
    epochs, NUM_TRAIN, NUM_TEST, seeds = 15, None, None, 3
    SHRINK = {
        "Swin": dict(embed_dim=32, depths=(2, 2, 2), num_heads=(2, 4, 8)),
        "PiT": dict(head_dim=16, depths=(1, 2, 1), num_heads=(2, 4, 8)),
        "CaiT": dict(
            embed_dim=64,
            depth=4,
            class_depth=2,
            num_heads=4,
            head_dim=16,
            mlp_dim=128,
        ),
        "T2T": dict(
            embed_dim=64, depth=4, num_heads=4, mlp_dim=128, token_dim=32
        ),
    }
else:
    epochs, NUM_TRAIN, NUM_TEST, seeds = 100, None, None, 1
    SHRINK = {"Swin": {}, "PiT": {}, "CaiT": {}, "T2T": {}}
EPOCHS = EPOCHS or epochs
SEEDS = notebook.seed_list(SEEDS, default=seeds)
print(f"{EPOCHS} epochs, seeds {SEEDS}")

# %%
# %matplotlib inline
import json
import pathlib
import time

import keras
import numpy as np
from IPython.display import Markdown
from IPython.display import display
from matplotlib.figure import Figure

from kvision import data
from kvision import layers
from kvision.models import create_model
from kvision.selfsup import linear_probe_accuracy
from kvision.training import Recipe
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
# A tenth of the training images is held out for validation (the
# training curves); the test split is used once per model, at the end.

# %%
SEED = SEEDS[0]
splits = data.load_dataset(
    DATASET,
    image_size=IMAGE_SIZE,
    num_train=NUM_TRAIN,
    num_test=NUM_TEST,
    seed=SEED,
)
(x_train, y_train), (x_test, y_test) = (split[:2] for split in splits)
(x_fit, y_fit), (x_val, y_val) = data.split_validation(
    x_train, y_train, fraction=0.1, seed=SEED
)
names = data.class_names(DATASET)
NUM_CLASSES = len(names)
print(
    f"{DATASET}: {len(x_fit)} training, {len(x_val)} validation and "
    f"{len(x_test)} test images, {NUM_CLASSES} classes"
)

# %% [markdown]
# ## The floor: chance and a linear probe on pixels
#
# A model is only worth reading if it beats what needs no deep learning
# at all: guessing the most frequent class, and a logistic regression on
# the raw pixels.

# %%
chance = float(np.max(np.bincount(y_test, minlength=NUM_CLASSES)) / len(y_test))
linear_probe = linear_probe_accuracy(
    data.to_model_range(x_fit).reshape(len(x_fit), -1),
    y_fit,
    data.to_model_range(x_test).reshape(len(x_test), -1),
    y_test,
    max_iter=300,
    standardize=False,
)
print(f"chance {chance:.3f}, linear probe on pixels {linear_probe:.3f}")

# %% [markdown]
# ## Four architectures, and where SPT and LSA go
#
# - **Swin** adds attention inside $w\times w$ windows, shifted by $w/2$
#   every other block, with a learned relative position bias, and patch
#   merging that halves the grid between stages. SL-Swin: SPT as the patch
#   embedding and in place of every patch merging; LSA in every window.
# - **PiT** has three stages whose token grid shrinks 16→8→4 while the
#   width doubles (a stride-2 depthwise convolution, `PiTPooling`).
#   SL-PiT: SPT as the patch embedding and as both poolings; LSA in every
#   self-attention.
# - **CaiT** puts LayerScale on every block, mixes heads before and after
#   the softmax (talking heads), and ends with two *class-attention*
#   blocks where only the class token is updated. SL-CaiT: SPT as the
#   patch embedding; LSA's temperature in the self-attention blocks.
# - **T2T** starts with an overlapping "soft split" (3x3 windows, stride
#   2) and a small token transformer before the ViT. SL-T2T: the image is
#   shifted (as in SPT) before the soft split; LSA in every self-attention.
#
# Shifted windows let information cross window borders: in a shifted
# block the map is rolled by $w/2$ before it is cut into windows, and
# tokens that end up in one window only because of the roll are kept
# apart by a mask (−100 on their logits). Inside a window,
#
# $$\mathrm{Attention}(Q, K, V) =
# \mathrm{softmax}\!\left(\tau_h\, Q K^\top + B + M\right) V,$$
#
# with $B$ the relative position bias (one learned value per head and
# relative offset, $(2w-1)^2$ of them), $M$ the shift mask, and, for LSA,
# $\tau_h$ a learned per-head temperature and $-\infty$ on the diagonal.
#
# Here are the layers on their own, as a library user would combine them:

# %%
grid = np.random.default_rng(0).normal(size=(2, 8, 8, 32)).astype("float32")
windows = layers.WindowAttention(num_heads=4, window_size=4, shift_size=2)
shifted, window_scores = windows(grid, return_attention_scores=True)
print("WindowAttention", grid.shape, "->", tuple(shifted.shape))
print("  scores (batch, windows, heads, w*w, w*w):", tuple(window_scores.shape))
merged = layers.PatchMerging()(grid)
print("PatchMerging   ", grid.shape, "->", tuple(merged.shape))
tokens = np.random.default_rng(1).normal(size=(2, 1 + 64, 32)).astype("float32")
pooled = layers.PiTPooling()(tokens)
print("PiTPooling     ", tokens.shape, "->", tuple(pooled.shape))
spt_pool = layers.ShiftedPatchTokenization(2, 64, has_class_token=True)
print("SPT as pooling ", tokens.shape, "->", tuple(spt_pool(tokens).shape))
cls_block = layers.ClassAttentionBlock(num_heads=4, mlp_dim=64)
updated, cls_scores = cls_block(tokens, return_attention_scores=True)
unchanged = np.abs(
    keras.ops.convert_to_numpy(updated)[:, 1:] - tokens[:, 1:]
).max()
print(
    "ClassAttentionBlock",
    tokens.shape,
    "->",
    tuple(updated.shape),
    f"scores {tuple(cls_scores.shape)}; patch tokens changed by {unchanged}",
)

# %% [markdown]
# ## The models
#
# Each pair comes from the registry at the SPT/LSA paper's CIFAR
# configuration (`swin_32px` / `sl_swin_32px` and so on, with exactly the
# parameter counts of the paper's code); the CPU-sized run shrinks both
# members of a pair the same way.

# %%
PAIRS = {
    "Swin": ("swin_32px", "sl_swin_32px"),
    "PiT": ("pit_32px", "sl_pit_32px"),
    "CaiT": ("cait_32px", "sl_cait_32px"),
    "T2T": ("t2t_32px", "sl_t2t_32px"),
}


def build(name, family, seed):
    keras.utils.set_random_seed(seed)
    return create_model(
        name,
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        num_classes=NUM_CLASSES,
        **SHRINK[family],
    )


def trainable_count(build_model, *args, **kwargs):
    """Trainable parameters, from the weights' shapes alone: inside
    `StatelessScope(initialize_variables=False)` Keras gives every weight
    its shape without allocating or initialising it (the `clear_session`
    below drops those weights before anything would)."""
    with keras.StatelessScope(initialize_variables=False):
        model = build_model(*args, **kwargs)
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


parameters = {}
for family, pair in PAIRS.items():
    for name in pair:
        parameters[name] = trainable_count(build, name, family, SEED)
        paper_size = trainable_count(create_model, name, num_classes=100)
        print(
            f"{name:14s} {parameters[name]:>10,} parameters here "
            f"({paper_size:,} at the paper's size, CIFAR-100 head)"
        )
        keras.backend.clear_session()

# %% [markdown]
# ## Training every pair under the same budget
#
# On the CPU-sized run all eight models get one plain recipe: AdamW at
# 1e-3, batch 64, one warm-up epoch then cosine decay, label smoothing
# 0.1, no augmentation (flips would turn digits into other digits). On
# the full run the SPT/LSA paper's recipe (AutoAugment-like RandAugment,
# MixUp, CutMix, random erasing, 100 epochs) is used for every model, as
# the paper's code does. Each model sees the same batches in the same
# order for a given seed.

# %%
if run.size == "full":
    recipe = get_recipe("sl_vit_32px", kind="paper", epochs=EPOCHS)
else:
    recipe = Recipe(
        name="small-data",
        source="AdamW 1e-3, batch 64, warm-up + cosine: a plain recipe that "
        "trains these models on a few thousand images",
        epochs=EPOCHS,
        batch_size=64,
        learning_rate=1e-3,
        warmup_epochs=1,
        weight_decay=0.05,
        label_smoothing=0.1,
        flip=False,
    )
print(recipe)

results = {}  # name -> list of per-seed dicts
histories = {}  # name -> history of the first seed
trained = {}  # name -> model of the first seed
started = time.perf_counter()
for family, pair in PAIRS.items():
    for name in pair:
        results[name] = []
        for seed in SEEDS:
            model = build(name, family, seed)
            result = fit_model(
                model,
                recipe,
                (x_fit, y_fit),
                test_data=(x_test, y_test),
                validation_data=(x_val, y_val),
                seed=seed,
                verbose=0,
            )
            results[name].append(
                {
                    "seed": seed,
                    "test_accuracy": result.test_accuracy,
                    "val_accuracy": [
                        float(v) for v in result.history["val_accuracy"]
                    ],
                    "train_seconds": result.train_seconds,
                }
            )
            if seed == SEED:
                histories[name], trained[name] = result.history, model
            print(
                f"{name:14s} seed {seed}: test {result.test_accuracy:.3f} "
                f"in {result.train_seconds:.0f} s"
            )
total_minutes = (time.perf_counter() - started) / 60
print(f"all training: {total_minutes:.1f} min")

# %%
fig = Figure(figsize=(12, 3.2))
axes = fig.subplots(1, len(PAIRS), sharey=True)
for ax, (family, pair) in zip(axes, PAIRS.items(), strict=True):
    for name, style in zip(pair, ("--", "-"), strict=True):
        curves = np.array([r["val_accuracy"] for r in results[name]])
        epochs_axis = np.arange(1, curves.shape[1] + 1)
        mean, std = curves.mean(0), curves.std(0)
        label = "SL" if name.startswith("sl_") else "plain"
        ax.plot(epochs_axis, mean, style, label=label)
        ax.fill_between(epochs_axis, mean - std, mean + std, alpha=0.2)
    ax.axhline(linear_probe, color="grey", linestyle=":", label="linear probe")
    ax.set_title(family)
    ax.set_xlabel("epoch")
axes[0].set_ylabel("validation accuracy (mean ± std over seeds)")
axes[0].legend(fontsize=8)
fig.tight_layout()
fig.savefig(out / "validation_curves.png", dpi=100)
fig

# %% [markdown]
# ## This run beside the paper's Table 2
#
# The paper's Table 2 reports top-1 accuracy on CIFAR-10 and CIFAR-100
# (100 epochs, its full recipe, one run each). The gain column is SL minus
# plain. For this run: the mean ± std over seeds, every seed listed.

# %%
PAPER = {  # Table 2 of arXiv:2112.13492, top-1 %: (plain, SL)
    "cifar10": {
        "Swin": (94.46, 95.93),
        "PiT": (94.24, 95.88),
        "CaiT": (94.91, 95.81),
        "T2T": (95.30, 95.57),
    },
    "cifar100": {
        "Swin": (76.87, 79.99),
        "PiT": (74.99, 79.00),
        "CaiT": (76.89, 80.32),
        "T2T": (77.00, 77.36),
    },
}
paper_data = DATASET if DATASET in PAPER else "cifar100"


def accuracies(name):
    return 100 * np.array([r["test_accuracy"] for r in results[name]])


rows = [
    "| model | paper plain | paper SL | paper gain | this run plain | "
    "this run SL | this run gain | seeds (plain / SL) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
]
gains = {}
for family, (plain, sl) in PAIRS.items():
    p_plain, p_sl = PAPER[paper_data][family]
    a_plain, a_sl = accuracies(plain), accuracies(sl)
    gain = a_sl - a_plain  # paired by seed
    gains[family] = gain
    seeds_text = " / ".join(
        ", ".join(f"{v:.1f}" for v in a) for a in (a_plain, a_sl)
    )
    rows.append(
        f"| {family} | {p_plain:.2f} | {p_sl:.2f} | {p_sl - p_plain:+.2f} "
        f"| {a_plain.mean():.1f} ± {a_plain.std():.1f} "
        f"| {a_sl.mean():.1f} ± {a_sl.std():.1f} "
        f"| {gain.mean():+.1f} ± {gain.std():.1f} | {seeds_text} |"
    )
say(
    f"Paper: {paper_data}. This run: {DATASET}, {run.size} size, "
    f"{EPOCHS} epochs, {len(SEEDS)} seed(s); chance {100 * chance:.1f} %, "
    f"linear probe {100 * linear_probe:.1f} %.\n\n" + "\n".join(rows)
)


# %%
def verdict(family):
    gain = gains[family]
    paper_gain = np.subtract(*PAPER[paper_data][family][::-1])
    spread = gain.std() if len(gain) > 1 else float("nan")
    if len(gain) > 1 and abs(gain.mean()) <= spread:
        shown = "within the seed-to-seed spread: this run cannot tell"
    elif gain.mean() > 0:
        shown = "SL ahead, as in the paper"
    else:
        shown = "SL behind: this run does not show the paper's gain"
    best = max(accuracies(name).mean() for name in PAIRS[family])
    if best < 100 * linear_probe:
        shown += (
            f"; neither model reaches the linear probe ({best:.1f} % at "
            "best), so this budget is too short for this architecture here "
            "and its gain says little"
        )
    return (
        f"- **{family}:** {gain.mean():+.1f} points here "
        f"(paper {paper_gain:+.2f}); {shown}."
    )


above = [
    name for name in results if accuracies(name).mean() > 100 * linear_probe
]
say(
    "**What the run shows.**\n\n"
    + "\n".join(verdict(family) for family in PAIRS)
    + f"\n\n{len(above)} of {len(results)} models beat the linear probe "
    f"({100 * linear_probe:.1f} %) on average"
    + (f": {', '.join(above)}." if above else ".")
    + " The paper measures 100 epochs of CIFAR with heavy augmentation; "
    "a few thousand small images and a short CPU budget are a different "
    "regime, where a gain of a point can be noise, so read the spread "
    "before the means."
)

# %% [markdown]
# ## What Swin attends to: unshifted and shifted windows
#
# For one query token near the middle of the image, its attention (mean
# over heads) in the first block (windows on the regular grid) and the
# second block (windows shifted by half a window). In the shifted block
# the query's window straddles the first block's window borders: that is
# how information crosses windows.


# %%
def query_window_attention(scores, grid, window, shift, query):
    """One query's attention from windowed scores, on the token grid.

    ``scores``: ``(windows, heads, w*w, w*w)`` for one image, windows in
    row-major order over the grid rolled by ``-shift``. Returns a
    ``grid``-shaped map, zero outside the query's window.
    """
    height, width = grid
    per_row = width // window
    row, col = (query[0] - shift) % height, (query[1] - shift) % width
    index = (row // window) * per_row + col // window
    inside = (row % window) * window + col % window
    weights = scores[index].mean(axis=0)[inside].reshape(window, window)
    attention = np.zeros(grid)
    top, left = row - row % window, col - col % window
    for i in range(window):
        for j in range(window):
            attention[
                (top + i + shift) % height, (left + j + shift) % width
            ] = weights[i, j]
    return attention


image = data.to_model_range(x_test[:1])
fig = Figure(figsize=(10, 5))
axes = fig.subplots(2, 3)
for r, name in enumerate(PAIRS["Swin"]):
    model = trained[name]
    scores = model.attention_model()(image)
    config = model.get_config()
    stage_grid = IMAGE_SIZE // config["patch_size"]
    window = min(config["window_size"], stage_grid)
    query = (stage_grid // 2 - 1, stage_grid // 2 - 1)
    axes[r, 0].imshow(x_test[0])
    axes[r, 0].set_title(f"{name}: image", fontsize=9)
    for c, block in enumerate(("stage_0_block_0", "stage_0_block_1")):
        shift = 0 if block.endswith("_0") else window // 2
        block_scores = keras.ops.convert_to_numpy(scores[block])[0]
        attention = query_window_attention(
            block_scores, (stage_grid, stage_grid), window, shift, query
        )
        axes[r, c + 1].imshow(attention, cmap="inferno")
        axes[r, c + 1].plot(query[1], query[0], "c+", markersize=10)
        axes[r, c + 1].set_title(f"{block}: shift {shift}", fontsize=9)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
fig.savefig(out / "swin_window_attention.png", dpi=100)
fig

# %%
sl_scores = keras.ops.convert_to_numpy(
    trained["sl_swin_32px"].attention_model()(image)["stage_0_block_0"]
)
diagonal = np.diagonal(sl_scores, axis1=-2, axis2=-1)
say(
    "**What to look for.** The cross marks the query. Its window covers "
    f"a {window}x{window} block of the {stage_grid}x{stage_grid} token "
    "grid in the first block and a different, overlapping block in the "
    "second. With LSA (SL-Swin) no token attends to itself: the largest "
    f"diagonal attention in SL-Swin's first block is {diagonal.max():.1e}."
)

# %% [markdown]
# ## What CaiT's class token reads
#
# In CaiT the class token enters only in the last two blocks, where it
# alone is updated: it queries the patch tokens, which stay as the
# self-attention blocks left them. Its attention (mean over heads) in the
# last class-attention block, for four test images:

# %%
shown = x_test[:4]
fig = Figure(figsize=(9, 4.6))
axes = fig.subplots(2, len(shown) + 0)
for r, name in enumerate(PAIRS["CaiT"]):
    model = trained[name]
    attention = model.attention_model()(data.to_model_range(shown))
    last = sorted(k for k in attention if k.startswith("class_block"))[-1]
    maps = keras.ops.convert_to_numpy(attention[last])[:, :, 0, :]
    # The keys are the patches, plus the class token first when the
    # model lets it attend to itself (official CaiT).
    side = int(np.sqrt(maps.shape[-1]))
    maps = maps[:, :, -side * side :].mean(axis=1).reshape(-1, side, side)
    for c in range(len(shown)):
        axes[r, c].imshow(shown[c])
        axes[r, c].imshow(
            np.kron(maps[c], np.ones((IMAGE_SIZE // side,) * 2)),
            cmap="inferno",
            alpha=0.6,
        )
        axes[r, c].set_title(f"{name}: {names[y_test[c]]}", fontsize=8)
        axes[r, c].axis("off")
fig.tight_layout()
fig.savefig(out / "cait_class_attention.png", dpi=100)
fig

# %%
cait_maps = keras.ops.convert_to_numpy(
    trained["cait_32px"].attention_model()(data.to_model_range(x_test[:64]))[
        last
    ]
)[:, :, 0, :]
peak = cait_maps.max(axis=-1).mean()
say(
    f"**What to look for.** A uniform class attention would give every one "
    f"of the {cait_maps.shape[-1]} keys {1 / cait_maps.shape[-1]:.3f}; "
    f"the largest weight per head averages {peak:.3f} over 64 test images "
    "in the plain CaiT: the class token "
    + (
        "concentrates on a few patches."
        if peak > 3 / cait_maps.shape[-1]
        else "still reads the image almost evenly."
    )
)

# %% [markdown]
# ## PiT: the class token at every stage
#
# PiT's grid shrinks from 16x16 to 8x8 to 4x4. The class token's
# attention over the patch tokens (last block of each stage, mean over
# heads) shows what it gathers at each resolution.

# %%
fig = Figure(figsize=(9, 5))
axes = fig.subplots(2, 4)
for r, name in enumerate(PAIRS["PiT"]):
    model = trained[name]
    attention = model.attention_model()(image)
    axes[r, 0].imshow(x_test[0])
    axes[r, 0].set_title(name, fontsize=9)
    stages = sorted({k.rsplit("_block_", 1)[0] for k in attention})
    for c, stage in enumerate(stages[:3]):
        last = max(
            (k for k in attention if k.startswith(stage + "_block_")),
            key=lambda k: int(k.rsplit("_", 1)[1]),
        )
        row = keras.ops.convert_to_numpy(attention[last])[0, :, 0, 1:]
        side = int(np.sqrt(row.shape[-1]))
        axes[r, c + 1].imshow(
            row.mean(axis=0).reshape(side, side), cmap="inferno"
        )
        axes[r, c + 1].set_title(f"{stage}: {side}x{side}", fontsize=9)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
fig.savefig(out / "pit_stage_attention.png", dpi=100)
fig

# %%
say(
    "**What to look for.** Each stage sees the same image at a quarter of "
    "the previous number of tokens; with SPT as the pooling layer "
    "(SL-PiT), every pooled token also carries its shifted neighbours, "
    "which is where the paper finds its largest gains."
)

# %% [markdown]
# ## What this run measured

# %%
metrics = {
    "notebook": "05_sl_family",
    "backend": keras.backend.backend(),
    "dataset": DATASET,
    "smoke": run.smoke,
    "size": run.size,
    "epochs": EPOCHS,
    "seeds": list(SEEDS),
    "recipe": recipe.name,
    "chance": chance,
    "linear_probe": linear_probe,
    "training_minutes": round(total_minutes, 2),
    # The data's load_dataset arguments and split sizes, and the models'
    # overrides: the tests recompute numbers from them.
    "load_dataset": dict(
        image_size=IMAGE_SIZE, num_train=NUM_TRAIN, num_test=NUM_TEST, seed=SEED
    ),
    "split_sizes": dict(
        fit=len(x_fit), validation=len(x_val), test=len(x_test)
    ),
    "models": {
        name: {
            "overrides": SHRINK[family],
            "parameters": parameters[name],
            "test_accuracy": [r["test_accuracy"] for r in results[name]],
            "mean_test_accuracy": float(np.mean(accuracies(name)) / 100),
            "train_seconds": [
                round(r["train_seconds"], 1) for r in results[name]
            ],
        }
        for family, pair in PAIRS.items()
        for name in pair
    },
    "gain_points": {f: [float(g) for g in gains[f]] for f in gains},
    "paper": {f: PAPER[paper_data][f] for f in PAIRS},
}
(out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
print(json.dumps(metrics, indent=2))
