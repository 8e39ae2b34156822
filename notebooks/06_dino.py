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
# # DINO: self-supervised ViTs, and whether their attention finds the object
#
# **On Colab:** download this notebook's `.ipynb` and open it with Colab's
# *File, Upload notebook* (there is no public repository to link an *Open in
# Colab* badge to yet). It asks Colab for a GPU; if it opens on a CPU,
# choose one in *Runtime, Change runtime type*.
#
# **Paper:** Mathilde Caron, Hugo Touvron, Ishan Misra, Hervé Jégou,
# Julien Mairal, Piotr Bojanowski and Armand Joulin, *Emerging Properties
# in Self-Supervised Vision Transformers*
# ([arXiv:2104.14294](https://arxiv.org/abs/2104.14294)).
#
# **What you will learn**
#
# - what DINO trains without labels: a student that matches, crop against
#   crop, the centred and sharpened output of a teacher that is its own
#   moving average;
# - how to train it with a plain `model.fit(images)` on TensorFlow, JAX or
#   PyTorch (`kvision.selfsup.DINO`), and how to see a collapse coming in
#   the logged metrics;
# - how to evaluate features without training a classifier: DINO's
#   weighted k-NN, against a randomly initialised network and against the
#   same ViT trained with labels for the same time;
# - the paper's famous claim, measured: does the last block's class-token
#   attention land on the object (60 %-mass masks and a localisation
#   score against the object masks)?
#
# **Backends:** TensorFlow, JAX and PyTorch: pick one in the form below.
#
# **Runtime.** Measured on a 2-core CPU without a GPU, JAX: the CPU-sized
# run on digits (two DINO models and one supervised model per seed, two
# seeds, 12 epochs) took 20 minutes with other jobs on the machine (each
# DINO run 3-3.7 minutes); the smoke run (`KVISION_SMOKE=1`) takes about a
# minute. On a Colab GPU, the CIFAR-10 run is an estimate, not measured:
# roughly an hour.

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
# On Colab these lines are a form. `SIZE="auto"` trains on CIFAR-10 on a
# GPU or TPU, and a CPU-sized run otherwise. `digits` (scikit-learn's real
# handwritten digits; their strokes are the object masks) and
# `cluttered_digits` (the same digits on textured clutter, with stroke
# masks) need no network and always run CPU-sized. `EPOCHS` and `SEEDS`
# left at `None` take the size's defaults. Environment variables, when
# set, win over the form: the tests choose this way (`KVISION_SMOKE=1` is
# a toy run that only checks the notebook works).

# %% tags=["parameters"]
from kvision import notebook

BACKEND = "jax"  # @param ["jax", "tensorflow", "torch"]
DATASET = "cifar10"  # @param ["cifar10", "digits", "cluttered_digits"]
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
OUTPUT_DIR = notebook.setting("KVISION_OUTPUT_DIR", "outputs/notebooks/06_dino")

# %% [markdown]
# ## Device and run size
#
# `notebook.start` sets the Keras backend (before the first
# `import keras`), reports the device and picks the run size. The ViT is
# notebook 01's CPU-sized one (4 blocks of width 64, 4 heads of 16), and
# the SL-ViT is the same with SPT and LSA.

# %%
import time

started = time.perf_counter()
run = notebook.start(BACKEND, DATASET, size=SIZE)
SMOKE = run.smoke
WIDTH = dict(embed_dim=64, depth=4, num_heads=4, head_dim=16, mlp_dim=128)
HEAD = dict(out_dim=1024, hidden_dim=256, bottleneck_dim=64)
LOCAL_CROPS = 2
if run.size == "smoke":
    epochs, NUM_TRAIN, NUM_TEST, seeds = 1, 64, 32, 1
    WIDTH = dict(embed_dim=16, depth=1, num_heads=2, head_dim=8, mlp_dim=32)
    HEAD = dict(out_dim=32, hidden_dim=16, bottleneck_dim=8)
elif run.size == "cpu":
    epochs, NUM_TRAIN, NUM_TEST, seeds = 12, 3000, 1000, 2
else:
    epochs, NUM_TRAIN, NUM_TEST, seeds, LOCAL_CROPS = 100, None, None, 1, 6
    WIDTH = dict(embed_dim=192, depth=9, num_heads=12, head_dim=16, mlp_dim=384)
    HEAD = dict(out_dim=4096, hidden_dim=2048, bottleneck_dim=256)
EPOCHS = EPOCHS or epochs
SEEDS = notebook.seed_list(SEEDS, default=seeds)
print(f"{EPOCHS} epochs, seeds {SEEDS}, {LOCAL_CROPS} local crops")

# %%
# %matplotlib inline
import json
import math
import pathlib

import keras
import numpy as np
from IPython.display import Markdown
from IPython.display import display
from matplotlib.figure import Figure

from kvision import data
from kvision import selfsup
from kvision import viz
from kvision.models import create_model
from kvision.training import schedules
from kvision.training.recipes import exempt_from_weight_decay

out = pathlib.Path(OUTPUT_DIR)
out.mkdir(parents=True, exist_ok=True)


def say(text):
    """Shows a computed interpretation as formatted text."""
    display(Markdown(text))


# %% [markdown]
# ## The idea: distillation with no labels
#
# A student network $g_s$ and a teacher $g_t$ of the same architecture
# each end in a head whose $K$ outputs are turned into a distribution
# over $K$ "prototypes". For two views $x_1, x_2$ of one image, the
# student learns to predict the teacher's distribution:
#
# $$
# P_t(x) = \mathrm{softmax}\!\left(\frac{g_t(x) - c}{\tau_t}\right),\qquad
# P_s(x) = \mathrm{softmax}\!\left(\frac{g_s(x)}{\tau_s}\right),\qquad
# \mathcal{L} = -\sum_k P_t(x_1)_k \log P_s(x_2)_k .
# $$
#
# Nothing says what the prototypes mean: two trivial solutions (every
# image to the same prototype, or every image to the uniform
# distribution) satisfy the loss perfectly. DINO keeps between them with
# two opposite forces: **centring** ($c$ is a running mean of the
# teacher's outputs, so no prototype can win for every image) pushes
# towards uniform, **sharpening** (a low teacher temperature
# $\tau_t = 0.04$ against the student's $\tau_s = 0.1$) pushes towards one
# prototype. The teacher is not trained by gradients: its weights are an
# exponential moving average of the student's (momentum 0.996 → 1).
#
# The views come from **multi-crop**: two global crops (40-100 % of the
# image) seen by both networks, and several local crops (5-40 %) seen by
# the student only, so the student must infer the whole from a part.
# Here are the crops of one training image as the model gets them (rows:
# global 1, global 2, then the local crops):

# %%
images_for_crops = data.load_dataset("digits", num_train=2, num_test=1)[0][0]
crop_layer = selfsup.MultiCrop(num_local_crops=LOCAL_CROPS, seed=0)
example = data.to_model_range(images_for_crops[:1])
crops = keras.ops.convert_to_numpy(crop_layer(example))
fig = Figure(figsize=(1.4 * (crop_layer.num_crops + 1), 1.7))
axes = fig.subplots(1, crop_layer.num_crops + 1)
axes[0].imshow(example[0])
axes[0].set_title("image", fontsize=8)
for i, ax in enumerate(axes[1:]):
    ax.imshow(crops[i])
    ax.set_title("global" if i < 2 else "local", fontsize=8)
for ax in axes:
    ax.axis("off")
fig.tight_layout()
fig.savefig(out / "multicrop.png", dpi=100)
fig

# %% [markdown]
# ## Data
#
# The labels are loaded, but DINO never sees them: they only score the
# features afterwards. The object masks are the digit's strokes (on
# `digits`, the pixels brighter than half the maximum; on
# `cluttered_digits` they come with the data). CIFAR-10 has none, so its
# attention is shown but not scored.

# %%
if data.has_masks(DATASET):
    (x_train, y_train, _), (x_test, y_test, masks) = data.load_dataset(
        DATASET, num_train=NUM_TRAIN, num_test=NUM_TEST, return_masks=True
    )
else:
    (x_train, y_train), (x_test, y_test) = data.load_dataset(
        DATASET, num_train=NUM_TRAIN, num_test=NUM_TEST
    )
    masks = None
    if DATASET == "digits":
        grey = x_test.mean(axis=-1)
        masks = grey > grey.max(axis=(1, 2), keepdims=True) / 2
x_train, x_test = data.to_model_range(x_train), data.to_model_range(x_test)
num_classes = len(data.class_names(DATASET))
chance = float(np.bincount(y_test).max() / len(y_test))
print(
    f"{len(x_train)} training and {len(x_test)} test images "
    f"{x_train.shape[1:]}, {num_classes} classes"
    + (
        f"; object area {masks.mean():.2f} of the image"
        if masks is not None
        else ""
    )
)

# %% [markdown]
# ## The floors: chance, and the pixels themselves
#
# A representation is only worth something if it beats the pixels: the
# same k-NN on raw pixels, and a linear probe (logistic regression) on
# them.

# %%
pixels_train = x_train.reshape(len(x_train), -1)
pixels_test = x_test.reshape(len(x_test), -1)
knn_pixels = selfsup.knn_accuracy(pixels_train, y_train, pixels_test, y_test)
linear_probe = selfsup.linear_probe_accuracy(
    pixels_train, y_train, pixels_test, y_test, max_iter=500
)
say(
    f"Chance {chance:.3f}; k-NN (k = 20, T = 0.07) on pixels "
    f"{knn_pixels:.3f}; linear probe on pixels {linear_probe:.3f}."
)

# %% [markdown]
# ## Training DINO with Keras fit
#
# `DINO` holds the student (backbone + head) and the teacher; everything
# that is not a gradient step (the crops, the teacher's moving average,
# the centre, the temperature schedule) happens inside its training step,
# so `fit` needs nothing else. The recipe is the official one scaled to
# this data: AdamW with the learning rate 5e-4 × batch / 256 after a
# warm-up, cosine decay, weight decay 0.04 except on biases, norms and
# embeddings, per-weight gradient clipping at 3, stochastic depth 0.1 in
# the student, the prototypes frozen for the first epoch. Two changes make
# a small ViT train on a few thousand images without collapsing (both are
# measured in the tests' and this notebook's history below):
#
# - the head uses batch normalisation (the official `use_bn` option,
#   meant there for ConvNets). Without it, every image's class token is
#   nearly the same vector at the start, the centred teacher is uniform,
#   and the run collapses to the uniform solution within a few epochs
#   (loss pinned at $\log K$);
# - the teacher momentum starts at 0.99 instead of 0.996: a few hundred
#   steps are too few for a teacher that moves 0.4 % per step.
#
# The backbones start from the official DINO initialisation (truncated
# normal 0.02 for every weight and token). A callback measures the k-NN
# accuracy of the teacher after every epoch.

# %%
BATCH_SIZE = 64


def backbone(name, seed):
    keras.utils.set_random_seed(seed)
    return create_model(
        name,
        include_top=False,
        drop_path_rate=0.1,
        weight_init="trunc_normal",
        **WIDTH,
    )


def knn_of(model):
    """Weighted k-NN accuracy of a backbone's class-token features."""
    k = min(20, len(x_train))
    train = selfsup.class_token_features(model, x_train)
    test = selfsup.class_token_features(model, x_test)
    return selfsup.knn_accuracy(train, y_train, test, y_test, k=k)


class KnnEveryEpoch(keras.callbacks.Callback):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def on_epoch_end(self, epoch, logs=None):
        logs["knn"] = knn_of(self.backbone)


def train_dino(name, seed):
    student = backbone(name, seed)
    steps_per_epoch = math.ceil(len(x_train) / BATCH_SIZE)
    total = EPOCHS * steps_per_epoch
    model = selfsup.DINO(
        student,
        selfsup.MultiCrop(
            num_local_crops=LOCAL_CROPS,
            flip_probability=0.5 if data.mirror_invariant(DATASET) else 0.0,
            seed=seed,
        ),
        **HEAD,
        head_batch_norm=True,
        total_steps=total,
        momentum=0.99,
        freeze_prototype_steps=steps_per_epoch,
    )
    warmup = min(total // 10, 10 * steps_per_epoch)
    optimizer = keras.optimizers.AdamW(
        schedules.warmup_cosine(5e-4 * BATCH_SIZE / 256, total, warmup, 1e-6),
        weight_decay=0.04,
        clipnorm=3.0,
    )
    optimizer.exclude_from_weight_decay(
        var_list=[
            v for v in model.trainable_weights if exempt_from_weight_decay(v)
        ]
    )
    model.compile(optimizer=optimizer)
    monitor = selfsup.CollapseMonitor(HEAD["out_dim"])
    start = time.perf_counter()
    history = model.fit(
        x_train,
        batch_size=BATCH_SIZE,
        epochs=EPOCHS,
        verbose=0,
        callbacks=[monitor, KnnEveryEpoch(model.teacher_backbone)],
    )
    seconds = time.perf_counter() - start
    return model, history.history, seconds, monitor.statuses


MODELS = {"ViT": "vit_32px", "SL-ViT": "sl_vit_32px"}
dino_models, histories, seconds, statuses = {}, {}, {}, {}
knn = {label: [] for label in ["random ViT", *MODELS, "supervised ViT"]}
for seed in SEEDS:
    knn["random ViT"].append(knn_of(backbone("vit_32px", seed)))
    for label, name in MODELS.items():
        model, history, took, status = train_dino(name, seed)
        dino_models.setdefault(label, []).append(model)
        histories.setdefault(label, []).append(history)
        seconds.setdefault(label, []).append(took)
        statuses.setdefault(label, []).append(status)
        knn[label].append(history["knn"][-1])
        print(
            f"seed {seed}, DINO {label}: k-NN {knn[label][-1]:.3f}, "
            f"loss {history['loss'][-1]:.3f}, {took:.0f} s"
        )

# %% [markdown]
# ## The supervised comparison
#
# The same ViT, trained with the labels (cross-entropy, the same
# optimizer family and augmentation-free batches) for as long as its DINO
# run took, then scored with the same k-NN on the same class-token
# features.


# %%
class StopAfter(keras.callbacks.Callback):
    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if time.perf_counter() - self.start >= self.seconds:
            self.model.stop_training = True


supervised = []
for seed, budget in zip(SEEDS, seconds["ViT"], strict=True):
    features = backbone("vit_32px", seed)
    logits = keras.layers.Dense(num_classes, name="head")(features.output[:, 0])
    classifier = keras.Model(features.input, logits)
    classifier.compile(
        optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    classifier.fit(
        x_train,
        y_train,
        batch_size=BATCH_SIZE,
        epochs=10 * EPOCHS,
        verbose=0,
        callbacks=[StopAfter(budget)],
    )
    supervised.append(features)
    knn["supervised ViT"].append(knn_of(features))

# %% [markdown]
# ## k-NN accuracy: what the features know about the classes

# %%
stats = {label: (np.mean(v), np.std(v)) for label, v in knn.items()}
rows = [
    f"| {label} | {' / '.join(f'{a:.3f}' for a in knn[label])} | "
    f"{stats[label][0]:.3f} ± {stats[label][1]:.3f} |"
    for label in knn
]
say(
    "| features | k-NN per seed | mean ± std |\n| --- | --- | --- |\n"
    + "\n".join(rows)
    + f"\n\nFloors: chance {chance:.3f}, k-NN on pixels {knn_pixels:.3f}, "
    f"linear probe on pixels {linear_probe:.3f}."
)
gain = stats["ViT"][0] - stats["random ViT"][0]
spread = max(stats["ViT"][1], stats["random ViT"][1])
if gain > 2 * spread and gain > 0.01:
    verdict = (
        f"DINO's features beat the random network's by {100 * gain:.1f} "
        "points on every measure of this run"
    )
elif gain > 0:
    verdict = (
        f"DINO's features are {100 * gain:.1f} points above the random "
        "network's, within the spread over seeds"
    )
else:
    verdict = (
        f"DINO's features are {100 * -gain:.1f} points *below* the random "
        "network's: this run is too short for self-distillation to "
        "learn the classes"
    )
say(
    f"**What to look for.** {verdict}. The supervised ViT, which saw "
    f"the labels for the same time, reaches {stats['supervised ViT'][0]:.3f}."
    " The paper's ViT-S/16 reaches 74.5 % k-NN on ImageNet after 800 "
    "epochs on 1.28 M images; this run has a few thousand steps."
)

# %% [markdown]
# ## Training curves: loss, entropy and k-NN
#
# `loss` is the teacher's entropy plus the student-teacher KL divergence.
# A uniform collapse shows as the entropy climbing to $\log K$ (dashed)
# with the KL at 0; a one-prototype collapse as the batch entropy falling
# to 0.

# %%
fig = Figure(figsize=(11, 3.2))
axes = fig.subplots(1, 3)
for label, runs in histories.items():
    for i, history in enumerate(runs):
        style = dict(label=label if i == 0 else None, alpha=0.8)
        color = "C0" if label == "ViT" else "C1"
        epochs_axis = np.arange(1, len(history["loss"]) + 1)
        axes[0].plot(epochs_axis, history["loss"], color=color, **style)
        axes[1].plot(
            epochs_axis, history["teacher_entropy"], color=color, **style
        )
        axes[1].plot(
            epochs_axis,
            history["teacher_batch_entropy"],
            color=color,
            linestyle=":",
        )
        axes[2].plot(epochs_axis, history["knn"], color=color, **style)
for ax in axes[:2]:
    ax.axhline(math.log(HEAD["out_dim"]), color="grey", linestyle="--")
axes[2].axhline(stats["random ViT"][0], color="grey", linestyle="--")
axes[0].set_title("DINO loss")
axes[1].set_title("teacher entropy; dotted: batch", fontsize=10)
axes[2].set_title("teacher k-NN (dashed: random net)", fontsize=10)
for ax in axes:
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(out / "training_curves.png", dpi=100)
fig

# %%
collapsed = {
    label: sorted({s for run_statuses in v for s in run_statuses if s})
    for label, v in statuses.items()
}
say(
    "**Collapse check** (`CollapseMonitor`, per epoch): "
    + "; ".join(
        f"{label}: {', '.join(kinds) if kinds else 'no collapse'}"
        for label, kinds in collapsed.items()
    )
    + ". Final teacher entropy "
    + ", ".join(
        f"{label} {np.mean([h['teacher_entropy'][-1] for h in runs]):.2f}"
        for label, runs in histories.items()
    )
    + f" nats, against log K = {math.log(HEAD['out_dim']):.2f}."
)

# %% [markdown]
# ## Where the class token looks
#
# The last block's class-token attention, head by head (the teacher of
# the first seed), for a few test images: DINO, then the supervised ViT,
# then the random network.

# %%
shown = x_test[:4]
networks = {
    "DINO": dino_models["ViT"][0].teacher_backbone,
    "supervised": supervised[0],
    "random": backbone("vit_32px", SEEDS[0]),
}
for label, network in networks.items():
    maps = viz.cls_attention(network, shown)
    fig = viz.plot_attention_heads(shown, maps)
    fig.suptitle(f"{label} ViT: last block, class token to patches")
    fig.savefig(out / f"cls_attention_{label}.png", dpi=100)
    display(fig)

# %% [markdown]
# DINO's visualisation keeps, per head, the smallest set of patches that
# holds 60 % of the attention (`selfsup.attention_masks`):

# %%
dino_maps = viz.cls_attention(networks["DINO"], shown)
kept = selfsup.attention_masks(dino_maps, mass=0.6)
fig = viz.plot_attention_heads(shown, kept.astype("float32"), cmap="gray")
fig.suptitle("DINO ViT: patches holding 60 % of each head's attention")
fig.savefig(out / "attention_masks.png", dpi=100)
fig

# %% [markdown]
# ## The claim, measured: does the attention land on the object?
#
# `viz.localization_score` stretches each map over its image and measures
# the share of its mass on the object mask; `ratio` divides by the
# object's area (an even spread scores 1). The score per head is averaged
# over heads and test images; the best head is the one with the highest
# score.

# %%
localization = {}
if masks is not None:
    for label, network in networks.items():
        maps = viz.cls_attention(network, x_test[:256])
        heads = [
            viz.localization_score(maps[:, h], masks[:256])
            for h in range(maps.shape[1])
        ]
        localization[label] = {
            "mean_head_ratio": float(np.mean([h["ratio"] for h in heads])),
            "best_head_ratio": float(max(h["ratio"] for h in heads)),
            "uniform": heads[0]["uniform"],
        }
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    labels = list(localization)
    ax.bar(
        np.arange(len(labels)) - 0.2,
        [localization[k]["mean_head_ratio"] for k in labels],
        0.4,
        label="mean over heads",
    )
    ax.bar(
        np.arange(len(labels)) + 0.2,
        [localization[k]["best_head_ratio"] for k in labels],
        0.4,
        label="best head",
    )
    ax.axhline(1.0, color="grey", linestyle="--")
    ax.set_xticks(np.arange(len(labels)), labels)
    ax.set_ylabel("attention on object / uniform")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "localization.png", dpi=100)
    display(fig)
    best = max(localization, key=lambda k: localization[k]["mean_head_ratio"])
    if localization[best]["mean_head_ratio"] < 1.1:
        reading = (
            "No network's attention lands on the object more than an even "
            "spread would: this run does not show the paper's claim."
        )
    else:
        reading = (
            f"The {best} network's attention lands on the object most; the "
            "paper's claim is that DINO's heads do, without labels."
        )
    say(
        "**What to look for.** Ratios (1 = no better than an even "
        "spread): "
        + ", ".join(
            f"{k} {v['mean_head_ratio']:.2f} (best head "
            f"{v['best_head_ratio']:.2f})"
            for k, v in localization.items()
        )
        + f". The object covers {localization['DINO']['uniform']:.2f} of "
        f"the image. {reading}"
    )
else:
    say(f"{DATASET} has no object masks: the attention is shown, not scored.")

# %% [markdown]
# ## Keeping the result
#
# The backbone is an ordinary kvision model: save the teacher (DINO
# evaluates the teacher) and reload it anywhere, on any backend.

# %%
path = out / "dino_vit_teacher.keras"
networks["DINO"].save(path)
reloaded = keras.saving.load_model(path)
np.testing.assert_allclose(
    keras.ops.convert_to_numpy(reloaded.predict(x_test[:8], verbose=0)),
    keras.ops.convert_to_numpy(networks["DINO"].predict(x_test[:8], verbose=0)),
    rtol=1e-5,
    atol=1e-5,
)
print(f"saved and reloaded {path.name}: same features")

# %% [markdown]
# ## What this run measured

# %%
metrics = {
    "notebook": "06_dino",
    "backend": keras.backend.backend(),
    "device": run.device,
    "dataset": DATASET,
    "size": run.size,
    "smoke": SMOKE,
    "epochs": EPOCHS,
    "seeds": list(SEEDS),
    "local_crops": LOCAL_CROPS,
    # The data's load_dataset arguments and split sizes: the tests
    # recompute the floors from them.
    "load_dataset": dict(num_train=NUM_TRAIN, num_test=NUM_TEST),
    "split_sizes": dict(train=len(x_train), test=len(x_test)),
    "head": HEAD,
    "chance": round(chance, 4),
    "knn_pixels": round(knn_pixels, 4),
    "linear_probe_pixels": round(linear_probe, 4),
    "knn": {k: [round(a, 4) for a in v] for k, v in knn.items()},
    "knn_mean": {k: round(float(v[0]), 4) for k, v in stats.items()},
    "dino_seconds": {k: [round(s, 1) for s in v] for k, v in seconds.items()},
    "final_loss": {
        k: [round(h["loss"][-1], 4) for h in v] for k, v in histories.items()
    },
    "collapse": collapsed,
    "localization": localization or None,
    "wall_seconds": round(time.perf_counter() - started, 1),
}
(out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
say(
    f"**In short.** On {DATASET} ({run.size} size, {EPOCHS} epochs, "
    f"{len(SEEDS)} seed(s), {keras.backend.backend()}): k-NN accuracy of "
    + ", ".join(f"{k} {stats[k][0]:.3f}" for k in knn)
    + f"; pixels {knn_pixels:.3f}, chance {chance:.3f}. {verdict}. The "
    f"whole notebook took {metrics['wall_seconds'] / 60:.1f} minutes. "
    f"Everything is in `{out / 'metrics.json'}`."
)
