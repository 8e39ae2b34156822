"""The notebooks: each ``notebooks/NN_topic.py`` (the source) has a paired,
output-free ``.ipynb`` with the same cells, and every notebook runs top to
bottom in smoke mode, on offline data, on this process's Keras backend."""

import json
import pathlib
import sys

import jupytext
import keras
import nbclient
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))

# What each notebook must leave in its output folder, and the offline data
# its smoke run uses ("shapes" runs the object-mask code paths).
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
        "shapes",
        [
            "training_curves.png",
            "token_mixing_init.png",
            "token_mixing_block_0.png",
            "token_mixing_last_block.png",
            "class_activation_maps.png",
        ],
    ),
    "04_convnext": (
        "shapes",
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
    assert [s.stem for s in SOURCES] == sorted(EXPECTED)


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
