"""Layers saved under this backend load under another with equal outputs."""

import importlib.util
import json

import keras
import numpy as np
import pytest

from tests import helpers
from tests.layer_cases import CASES

# Each backend's run hands its files to the next one, so that the three runs
# of the suite together cover every backend as a writer and as a reader.
NEXT_BACKEND = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}
MODULE_OF = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def test_saved_layers_load_under_another_backend(tmp_path):
    reader = NEXT_BACKEND[keras.backend.backend()]
    if importlib.util.find_spec(MODULE_OF[reader]) is None:
        pytest.skip(f"the {reader} backend is not installed")
    for case in CASES:
        model, _ = helpers.functional_model(case)
        x = helpers.random_input(case, seed=7)
        outputs = model(x, training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        arrays = {f"y{i}": helpers.to_numpy(y) for i, y in enumerate(outputs)}
        model.save(tmp_path / f"{case.id}.keras")
        np.savez(tmp_path / f"{case.id}.npz", x=x, **arrays)

    result = helpers.run_module(
        "tests.cross_backend_load", tmp_path, tmp_path=tmp_path, backend=reader
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == reader
    assert set(report["cases"]) == {case.id for case in CASES}
    too_far = {k: v for k, v in report["cases"].items() if not v <= 1e-5}
    assert not too_far, too_far
