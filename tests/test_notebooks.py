"""The notebooks: each ``notebooks/NN_topic.py`` (the source) has a paired,
output-free ``.ipynb`` with the same cells, and every notebook runs top to
bottom in smoke mode, on offline data, on this process's Keras backend."""

import contextlib
import json
import math
import pathlib
import sys
import warnings

import jupytext
import keras
import nbclient
import nbformat
import numpy as np
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from kvision import data
from kvision import selfsup
from kvision.models import create_model
from kvision.training import adapt_recipe
from kvision.training import get_recipe

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))

# What each notebook must leave in its output folder, and the offline data
# its smoke run uses ("cluttered_digits" runs the object-mask code paths
# on data that models can learn).
EXPECTED = {
    "01_vit_small_datasets": (
        "digits",
        [
            "spt_views.png",
            "training_curves.png",
            "lsa_layer.png",
            "attention_divergence.png",
            "attention_distance.png",
            "cls_attention_vit.png",
            "cls_attention_sl_vit.png",
            "attention_rollout_vit.png",
            "attention_rollout_sl_vit.png",
        ],
    ),
    "02_convmixer": (
        "digits",
        [
            "patches.png",
            "training_curves.png",
            "class_activation_maps.png",
            "depthwise_kernels.png",
            "kernel_patch_sweep.png",
        ],
    ),
    "03_mlp_mixer": (
        "cluttered_digits",
        [
            "training_curves.png",
            "token_mixing_init.png",
            "token_mixing_block_0.png",
            "token_mixing_last_block.png",
            "class_activation_maps.png",
        ],
    ),
    "04_convnext": (
        "cluttered_digits",
        [
            "training_curves.png",
            "layer_scale.png",
            "class_activation_maps.png",
        ],
    ),
    "05_sl_family": (
        "digits",
        [
            "validation_curves.png",
            "swin_window_attention.png",
            "cait_class_attention.png",
            "pit_stage_attention.png",
        ],
    ),
    "06_dino": (
        "digits",
        [
            "multicrop.png",
            "training_curves.png",
            "cls_attention_DINO.png",
            "cls_attention_supervised.png",
            "cls_attention_random.png",
            "attention_masks.png",
            "localization.png",
        ],
    ),
    "07_davit": (
        "digits",
        [
            "attention_cost.png",
            "training_curves.png",
            "window_attention.png",
            "channel_attention.png",
            "class_activation_maps.png",
        ],
    ),
    "08_metaformer": (
        "digits",
        [
            "metaformer_skeleton.png",
            "accuracy_vs_cost.png",
            "training_curves.png",
            "attention_maps.png",
            "token_mixing.png",
            "class_activation_maps.png",
        ],
    ),
}

# CHECKS, below: what each notebook's metrics.json must say after its smoke
# run. One epoch on tens of images leaves accuracies near chance, so no
# threshold is checked; what is checked is what can be recomputed (chance,
# pixel baselines, parameter counts) or must be consistent (one value per
# seed, means of the listed values, accuracies that are counts of right
# answers), so that a check fails when a notebook reports a wrong number.

# One epoch and one seed, in every notebook's smoke branch.
SMOKE_BUDGET = (1, [0])


def assert_counts(accuracies, images, decimals=None):
    """Each accuracy is a number of right answers over ``images`` (a mean
    over S seeds: over S * images), up to the notebook's rounding to
    ``decimals`` digits. A wrong number is rarely such a multiple."""
    # Keras's accuracy is a float32 quotient, off a count by ~1e-7 * images.
    slack = 1e-4 if decimals is None else images * 0.5 * 10.0**-decimals
    for accuracy in accuracies:
        correct = accuracy * images
        assert abs(correct - round(correct)) <= slack + 1e-9, (
            f"accuracy {accuracy} is not a count over {images} images"
        )
        assert 0 <= round(correct) <= images


def assert_seed_summary(metrics, values, mean, std=None, decimals=None):
    """``values`` holds one test accuracy per seed, each a count over the
    test split, and ``mean`` (``std``) is np.mean (np.std) of them, up to
    the notebook's rounding to ``decimals`` digits."""
    assert len(values) == len(metrics["seeds"]), "one value per seed"
    assert_counts(values, metrics["split_sizes"]["test"], decimals)
    # The listed values and the mean may each be rounded: one unit of the
    # last digit covers both.
    tolerance = 1e-12 if decimals is None else 10.0**-decimals
    assert mean == pytest.approx(np.mean(values), abs=tolerance)
    if std is not None:
        assert std == pytest.approx(np.std(values), abs=tolerance)


def assert_model_record(metrics, model):
    """One model's entry (notebooks 01 and 07): its per-seed accuracies with
    mean and std to 4 digits, and its parameters recounted."""
    assert_seed_summary(
        metrics,
        model["test_accuracy"],
        model["test_accuracy_mean"],
        model["test_accuracy_std"],
        decimals=4,
    )
    assert model["parameters"] == trainable_count(
        metrics, model["registry_name"], **model["overrides"]
    )


def load_splits(metrics, return_masks=False):
    """The notebook's data again, from the ``load_dataset`` arguments it
    recorded; its test split must have the size the notebook reported."""
    train, test = data.load_dataset(
        metrics["dataset"], return_masks=return_masks, **metrics["load_dataset"]
    )
    assert len(test[1]) == metrics["split_sizes"]["test"]
    return train, test


def hold_out(x_train, y_train, metrics):
    """The validation split as the notebooks hold it out: a stratified
    tenth, with the data's seed; the sizes must be the notebook's."""
    fit, validation = data.split_validation(
        x_train, y_train, fraction=0.1, seed=metrics["load_dataset"]["seed"]
    )
    sizes = metrics["split_sizes"]
    assert (len(fit[1]), len(validation[1])) == (
        sizes["fit"],
        sizes["validation"],
    )
    return fit, validation


def pixels(images):
    """Images as the notebooks give them to their pixel baselines."""
    return data.to_model_range(images).reshape(len(images), -1)


def chance(labels):
    """Accuracy of always answering the most frequent class."""
    return float(np.bincount(labels).max() / len(labels))


@contextlib.contextmanager
def lbfgs_fit():
    """Refits a notebook's probe without ConvergenceWarning (an error under
    this suite's filterwarnings): a notebook's `max_iter` may stop L-BFGS
    early, and that fit is the one to reproduce. (`linear_probe_accuracy`
    itself fits on one BLAS thread.)"""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def linear_probe(fit, test, max_iter):
    """The notebooks' logistic regression on raw pixels (deterministic:
    L-BFGS from zero weights). Their caps on its training images, 5,000 or
    10,000, are far above a smoke run's."""
    with lbfgs_fit():
        return selfsup.linear_probe_accuracy(
            pixels(fit[0]),
            fit[1],
            pixels(test[0]),
            test[1],
            max_iter=max_iter,
            standardize=False,
        )


def trainable_count(metrics, registry_name, **overrides):
    """Trainable parameters of a registry model at the notebook's image size
    and number of classes, from the weights' shapes alone: built inside
    `keras.StatelessScope(initialize_variables=False)`, as notebook 05's
    `trainable_count` does, no weight is allocated."""
    size = metrics["load_dataset"]["image_size"]
    num_classes = len(data.class_names(metrics["dataset"]))
    with keras.StatelessScope(initialize_variables=False):
        model = create_model(
            registry_name,
            input_shape=(size, size, 3),
            num_classes=num_classes,
            **overrides,
        )
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def assert_localization(score, masks):
    """``viz.localization_score``: ``uniform`` is the masks' mean area and
    ``ratio`` is ``score / uniform``."""
    assert 0 <= score["score"] <= 1
    assert score["uniform"] == pytest.approx(float(masks.mean()))
    assert score["ratio"] == pytest.approx(score["score"] / score["uniform"])


def check_vit_small_datasets(metrics):
    assert (metrics["epochs"], metrics["seeds"]) == SMOKE_BUDGET
    assert metrics["recipe"] == "sl_vit_cifar_adapted"
    (x_train, y_train), test = load_splits(metrics)
    fit, _ = hold_out(x_train, y_train, metrics)
    # The paper's recipe adapted to the training split, by adapt_recipe's
    # rules: the smallest batch, an unscaled learning rate (the script's).
    assert (metrics["batch_size"], metrics["learning_rate"]) == (16, 1e-3)
    assert metrics["chance"] == chance(test[1])
    assert metrics["linear_probe"] == linear_probe(fit, test, max_iter=1000)
    for label, curve in metrics["val_accuracy_by_epoch"].items():
        assert label in metrics["models"]
        assert len(curve) == metrics["epochs"]
    *shares, whole = metrics["training_set_sizes"]
    assert [share["fraction"] for share in shares] == [0.5]
    for share in shares:
        for seed, probe in zip(
            metrics["seeds"], share["linear_probe"], strict=True
        ):
            _, small = data.split_validation(
                *fit, fraction=share["fraction"], seed=seed
            )
            assert share["fit_images"] == len(small[1])
            assert probe == linear_probe(small, test, max_iter=1000)
        for values in share["test_accuracy"].values():
            assert len(values) == len(metrics["seeds"])
            assert_counts(values, metrics["split_sizes"]["test"])
    # The last size is the whole training split: the main runs.
    assert whole["fit_images"] == metrics["split_sizes"]["fit"]
    assert whole["linear_probe"] == [metrics["linear_probe"]]
    assert whole["test_accuracy"] == {
        label: model["test_accuracy"]
        for label, model in metrics["models"].items()
    }
    size = metrics["load_dataset"]["image_size"]
    for model in metrics["models"].values():
        assert_model_record(metrics, model)
        # Divergence from uniform is log(keys) - entropy, head by head, so
        # the two means add up to log(keys): the patches and a class token.
        keys = (size // model["overrides"]["patch_size"]) ** 2 + 1
        total = model["mean_attention_entropy"]
        total += model["mean_attention_divergence"]
        assert total == pytest.approx(math.log(keys), abs=2e-4)


def adapted_recipe(metrics):
    """The recipe notebooks 02-04 train with, recomputed: their model's
    paper recipe applied to their training split by ``adapt_recipe``."""
    return adapt_recipe(
        get_recipe(metrics["registry_name"]),
        num_train=metrics["split_sizes"]["fit"],
        image_size=metrics["load_dataset"]["image_size"],
        mirror_invariant=data.mirror_invariant(metrics["dataset"]),
        epochs=metrics["epochs"],
    )


def check_convmixer(metrics):
    assert (metrics["epochs"], metrics["sweep_seeds"]) == SMOKE_BUDGET
    assert metrics["recipe"] == "convmixer_cifar_adapted"
    assert metrics["recipe_values"] == adapted_recipe(metrics).applied()
    assert metrics["trainable_parameters"] == trainable_count(
        metrics, metrics["registry_name"], **metrics["overrides"]
    )
    sizes, sweep = metrics["split_sizes"], metrics["sweep"]
    assert_counts(
        [metrics["test_accuracy"], metrics["sweep_choice_test_accuracy"]],
        sizes["test"],
    )
    # The smoke sweep: patch 4 with kernels 3 and 5, each scored by its
    # mean over the seeds on the validation split.
    assert [(r["patch_size"], r["kernel_size"]) for r in sweep] == [
        (4, 3),
        (4, 5),
    ]
    seeds = len(metrics["sweep_seeds"])
    assert_counts(
        [r["val_accuracy"] for r in sweep], seeds * sizes["validation"], 4
    )
    # max() keeps the first of equal scores, as the notebook's choice does.
    best = max(sweep, key=lambda r: r["val_accuracy"])
    assert metrics["sweep_choice"] == best


def check_mlp_mixer(metrics):
    assert (metrics["epochs"], metrics["seeds"]) == SMOKE_BUDGET
    assert metrics["recipe"] == "mixer_small_data_adapted"
    assert metrics["recipe_values"] == adapted_recipe(metrics).applied()
    assert_seed_summary(
        metrics, metrics["test_accuracy_per_seed"], metrics["test_accuracy"]
    )
    assert metrics["trainable_parameters"] == trainable_count(
        metrics, metrics["registry_name"], **metrics["overrides"]
    )
    # One nudged token of 64: channel mixing alone moves that token only,
    # the whole block (through token mixing) every token.
    moved = (
        metrics["channel_mixing_moves_tokens"],
        metrics["block_moves_tokens"],
    )
    assert moved == (1, 64)
    _, (_, _, masks) = load_splits(metrics, return_masks=True)
    assert_localization(metrics["localization"], masks)


def check_convnext(metrics):
    assert (metrics["epochs"], metrics["seeds"]) == SMOKE_BUDGET
    assert metrics["recipe"] == "convnext_imagenet_adapted"
    recipe = adapted_recipe(metrics)
    # Adapted, except for the rate the check below chose.
    chosen = recipe.replace(learning_rate=metrics["learning_rate"])
    assert metrics["recipe_values"] == chosen.applied()
    assert_seed_summary(
        metrics, metrics["test_accuracy_per_seed"], metrics["test_accuracy"]
    )
    assert metrics["trainable_parameters"] == trainable_count(
        metrics, metrics["registry_name"], **metrics["overrides"]
    )
    # The smoke run's two candidate learning rates, the adapted one and
    # four times it, scored on the validation split; max() keeps the first
    # of equal scores, as the notebook's choice does.
    scores = metrics["learning_rate_check"]
    rate = recipe.learning_rate
    assert list(scores) == [f"{rate:g}", f"{4 * rate:g}"]
    assert_counts(scores.values(), metrics["split_sizes"]["validation"])
    assert f"{metrics['learning_rate']:g}" == max(scores, key=scores.get)
    blocks = sum(metrics["overrides"]["depths"])
    assert len(metrics["mean_layer_scale"]) == blocks, "one per block"
    _, (_, _, masks) = load_splits(metrics, return_masks=True)
    assert_localization(metrics["localization"], masks)


def check_sl_family(metrics):
    assert (metrics["epochs"], metrics["seeds"]) == SMOKE_BUDGET
    assert metrics["recipe"] == "small-data"
    (x_train, y_train), test = load_splits(metrics)
    fit, _ = hold_out(x_train, y_train, metrics)
    assert metrics["chance"] == chance(test[1])
    assert metrics["linear_probe"] == linear_probe(fit, test, max_iter=300)
    models = metrics["models"]
    for name, model in models.items():
        assert_seed_summary(
            metrics, model["test_accuracy"], model["mean_test_accuracy"]
        )
        assert model["parameters"] == trainable_count(
            metrics, name, **model["overrides"]
        )
    # SL minus plain, in points, seed by seed (the pairs are named
    # `<family>_32px` and `sl_<family>_32px`).
    for family, gains in metrics["gain_points"].items():
        plain = models[f"{family.lower()}_32px"]["test_accuracy"]
        sl = models[f"sl_{family.lower()}_32px"]["test_accuracy"]
        assert gains == pytest.approx(100 * (np.array(sl) - plain))


def check_dino(metrics):
    assert (metrics["epochs"], metrics["seeds"]) == SMOKE_BUDGET
    assert metrics["local_crops"] == 2
    (x_train, y_train), (x_test, y_test) = load_splits(metrics)
    assert len(y_train) == metrics["split_sizes"]["train"]
    # The floors, rounded by the notebook to 4 digits.
    train, test = pixels(x_train), pixels(x_test)
    knn = selfsup.knn_accuracy(train, y_train, test, y_test)
    with lbfgs_fit():
        probe = selfsup.linear_probe_accuracy(
            train, y_train, test, y_test, max_iter=500
        )
    floors = (
        metrics["chance"],
        metrics["knn_pixels"],
        metrics["linear_probe_pixels"],
    )
    assert floors == pytest.approx((chance(y_test), knn, probe), abs=5e-5)
    for label, values in metrics["knn"].items():
        assert_seed_summary(
            metrics, values, metrics["knn_mean"][label], decimals=4
        )
    # On digits the object masks are the strokes: pixels brighter than half
    # the image's maximum, of the 256 first test images.
    grey = x_test[:256].mean(axis=-1)
    masks = grey > grey.max(axis=(1, 2), keepdims=True) / 2
    for network in metrics["localization"].values():
        assert network["uniform"] == pytest.approx(float(masks.mean()))
        assert network["mean_head_ratio"] <= network["best_head_ratio"]


def check_davit(metrics):
    assert (metrics["epochs"], metrics["seeds"]) == SMOKE_BUDGET
    assert metrics["recipe"] == "davit_small_data"
    (x_train, y_train), test = load_splits(metrics)
    fit, (x_val, _) = hold_out(x_train, y_train, metrics)
    floors = (metrics["chance"], metrics["linear_probe"])
    recomputed = (chance(test[1]), linear_probe(fit, test, max_iter=1000))
    assert floors == pytest.approx(recomputed, abs=5e-5)  # 4 digits
    for model in metrics["models"].values():
        assert_model_record(metrics, model)
    # On digits the masks are the ink (pixels brighter than 0.5) of the
    # smoke run's 16 probe images, the first of the validation split.
    masks = data.to_model_range(x_val[:16]).mean(axis=-1) > 0.5
    for score in metrics["localization"].values():
        assert_localization(score, masks)


def check_metaformer(metrics):
    recipe = metrics["recipe"]
    assert (recipe["epochs"], metrics["seeds"]) == SMOKE_BUDGET
    assert recipe["name"] == "metaformer_small_data"
    (x_train, y_train), test = load_splits(metrics)
    fit, _ = hold_out(x_train, y_train, metrics)
    assert metrics["chance_accuracy"] == chance(test[1])
    assert metrics["linear_probe_accuracy"] == linear_probe(
        fit, test, max_iter=100
    )
    mixers = metrics["mixers"]
    assert list(mixers) == [
        "identity",
        "pooling",
        "depthwise_conv",
        "spatial_mlp",
        "attention",
    ]
    for mixer, summary in mixers.items():
        assert_seed_summary(
            metrics,
            summary["per_seed"],
            summary["mean"],
            summary["std"],
        )
        assert summary["parameters"] == trainable_count(
            metrics,
            metrics["registry_name"],
            token_mixer=mixer,
            **metrics["overrides"],
        )


CHECKS = {
    "01_vit_small_datasets": check_vit_small_datasets,
    "02_convmixer": check_convmixer,
    "03_mlp_mixer": check_mlp_mixer,
    "04_convnext": check_convnext,
    "05_sl_family": check_sl_family,
    "06_dino": check_dino,
    "07_davit": check_davit,
    "08_metaformer": check_metaformer,
}


RESYNC = "jupytext --sync notebooks/{name}.py"


def relative(path):
    return path.relative_to(REPO).as_posix()


def cells(notebook):
    """What pairing must preserve: type, source and tags of every cell."""
    return [
        (cell.cell_type, cell.source, cell.metadata.get("tags", []))
        for cell in notebook.cells
    ]


def test_every_notebook_is_listed():
    assert [s.stem for s in SOURCES] == sorted(EXPECTED) == sorted(CHECKS)


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem)
def test_headings_have_no_code_spans(source):
    # The docs site renders notebooks with mkdocs-jupyter, whose table of
    # contents drops a heading's code span from the link but not from the
    # heading's id, so the link points at an anchor that does not exist.
    headings = [
        line
        for cell in jupytext.read(source).cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("#") and "`" in line
    ]
    assert headings == [], f"{relative(source)}: headings with code spans"


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem)
def test_notebook_is_paired_in_sync_and_without_outputs(source):
    paired = source.with_suffix(".ipynb")
    fix = RESYNC.format(name=source.stem)
    assert paired.exists(), f"{relative(paired)} is missing; run: {fix}"
    text = jupytext.read(source)
    notebook = nbformat.read(paired, as_version=4)
    assert cells(text) == cells(notebook), (
        f"{relative(source)} and {relative(paired)} differ; edit the .py "
        f"(the source) and run: {fix}"
    )
    assert text.metadata.get("kernelspec", {}).get("name") == "python3", (
        f"{relative(source)} needs a kernelspec; run: jupytext "
        f"--set-kernel python3 {relative(source)} && {fix}"
    )
    assert notebook.metadata.get("kernelspec") == text.metadata["kernelspec"]
    # Colab opens it on a GPU runtime; kept in the .py header so that
    # `jupytext --sync` keeps it (notebook_metadata_filter).
    assert notebook.metadata.get("accelerator") == "GPU", (
        f"{relative(paired)} needs `accelerator: GPU` (and `colab`) in the "
        f"jupyter metadata of {relative(source)}'s header; see notebook 01"
    )
    # The committed notebooks carry no outputs (see notebooks/README.md).
    executed = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        and (cell.outputs or cell.execution_count is not None)
    ]
    assert not executed, (
        f"{relative(paired)} has outputs in cells {executed}; clear them "
        f"with: jupytext --to ipynb {relative(source)}"
    )
    tagged = [
        c for c in text.cells if "parameters" in c.metadata.get("tags", [])
    ]
    assert len(tagged) == 1, "exactly one cell must be tagged `parameters`"
    assert "KVISION_SMOKE" in tagged[0].source
    assert "KVISION_DATASET" in tagged[0].source


def execute(notebook, folder):
    """Runs ``notebook`` in a fresh kernel of this environment's Python."""
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=600,
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    return notebook


@pytest.fixture
def kernel_environment(tmp_path, monkeypatch):
    """The kernel inherits this environment, so set what it should see."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    # Environment kernelspecs before the user's (~/.local/share/jupyter).
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "1")
    monkeypatch.delenv("KVISION_EPOCHS", raising=False)
    return tmp_path


def test_kernel_runs_this_environments_python(kernel_environment):
    spec = KernelSpecManager().get_kernel_spec("python3")
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import os, sys\nprint(sys.executable)\n"
                "print(os.environ['KERAS_BACKEND'])"
            )
        ],
        metadata={
            "kernelspec": {
                "name": "python3",
                "language": "python",
                "display_name": spec.display_name,
            }
        },
    )
    execute(notebook, kernel_environment)
    executable, backend = notebook.cells[0].outputs[0].text.split()
    assert pathlib.Path(executable).resolve() == (
        pathlib.Path(sys.executable).resolve()
    ), f"kernelspec {spec.resource_dir} runs {executable}"
    assert backend == keras.backend.backend()


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.stem)
def test_notebook_runs_in_smoke_mode(source, kernel_environment, monkeypatch):
    dataset, figures = EXPECTED[source.stem]
    out = kernel_environment / "outputs"
    monkeypatch.setenv("KVISION_SMOKE", "1")
    monkeypatch.setenv("KVISION_DATASET", dataset)
    monkeypatch.setenv("KVISION_OUTPUT_DIR", str(out))
    notebook = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    execute(notebook, kernel_environment)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backend"] == keras.backend.backend()
    assert metrics["smoke"] is True and metrics["dataset"] == dataset
    for name in figures:
        assert (out / name).stat().st_size > 5_000, name
    shown = sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )
    assert shown >= len(figures), "figures must be displayed, not only saved"
    errors = [
        output.text
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("name") == "stderr" and "Traceback" in output.text
    ]
    assert not errors, errors[0]
    CHECKS[source.stem](metrics)
