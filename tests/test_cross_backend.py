"""Layers and models saved under this backend load under another with equal
outputs.

The files are written here and read by ``tests/cross_backend_load.py`` in
one child process on the next backend, so that the three runs of the suite
together cover every backend as a writer and as a reader.
"""

import importlib.util
import json

import keras
import numpy as np
import pytest

from kvision.models import create_model
from kvision.models import model_class
from kvision.models import model_config
from tests import helpers
from tests.layer_cases import CASES
from tests.models.test_registry_models import SMALL

NEXT_BACKEND = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}
MODULE_OF = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def first_small_variant_per_class():
    """One registered small variant of every model class (sorted names:
    ``sl_vit_32px`` stands for ViT, with SPT and LSA)."""
    chosen = {}
    for name in SMALL:
        chosen.setdefault(model_class(name), name)
    return sorted(chosen.values())


FAMILIES = first_small_variant_per_class()
# Both tests read one module fixture that writes every case and runs a child
# process: under pytest-xdist they share a worker so it runs once.
pytestmark = pytest.mark.xdist_group("cross_backend")


def shallow(name):
    """At most two blocks per stage: every block kind a family alternates
    (Swin's shifted windows, DaViT's spatial and channel attention) stays,
    at a fraction of the layers to build, save and load."""
    overrides = {}
    for key, value in model_config(name).items():
        if key.endswith("depth") and isinstance(value, int):
            overrides[key] = min(value, 2)
        elif key == "depths":
            overrides[key] = tuple(min(depth, 2) for depth in value)
    return create_model(name, **overrides)


def save_with_outputs(model, x, folder, stem):
    outputs = model(x, training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    arrays = {f"y{i}": helpers.to_numpy(y) for i, y in enumerate(outputs)}
    folder.mkdir(exist_ok=True)
    model.save(folder / f"{stem}.keras")
    np.savez(folder / f"{stem}.npz", x=x, **arrays)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """What the next backend read back: ``{"backend": name, "layers":
    {case: max error}, "models": {variant: max error}}``."""
    reader = NEXT_BACKEND[keras.backend.backend()]
    if importlib.util.find_spec(MODULE_OF[reader]) is None:
        pytest.skip(f"the {reader} backend is not installed")
    folder = tmp_path_factory.mktemp("cross_backend")
    keras.utils.set_random_seed(1337)
    for case in CASES:
        model, _ = helpers.functional_model(case)
        x = helpers.random_input(case, seed=7)
        save_with_outputs(model, x, folder / "layers", case.id)
    rng = np.random.default_rng(7)
    for name in FAMILIES:
        model = shallow(name)
        x = rng.uniform(size=(2, *model.input_shape[1:])).astype("float32")
        save_with_outputs(model, x, folder / "models", name)
        keras.backend.clear_session(free_memory=False)
    result = helpers.run_module(
        "tests.cross_backend_load",
        folder / "layers",
        folder / "models",
        tmp_path=folder,
        backend=reader,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == reader
    return report


def test_saved_layers_load_under_another_backend(report):
    errors = report["folders"]["layers"]
    assert set(errors) == {case.id for case in CASES}
    too_far = {k: v for k, v in errors.items() if not v <= 1e-5}
    assert not too_far, too_far


def test_saved_models_load_under_another_backend(report):
    errors = report["folders"]["models"]
    assert set(errors) == set(FAMILIES)
    too_far = {k: v for k, v in errors.items() if not v <= 1e-5}
    assert not too_far, too_far
