"""Loads ``.keras`` files written under another backend and compares outputs.

Run by ``test_cross_backend.py`` in a child process whose ``KERAS_BACKEND``
differs from the parent's, with one or more folders of ``name.keras`` files
beside ``name.npz`` files holding the input ``x`` and the outputs ``y0``,
``y1``… Prints one JSON report on stdout: ``{"backend": ..., "folders":
{folder name: {file stem: largest absolute output difference}}}``.
"""

import json
import pathlib
import sys

import keras
import numpy as np

import kvision.layers  # noqa: F401  (registers the serializable layers)
import kvision.models  # noqa: F401  (registers the model classes)


def compare(folder):
    errors = {}
    for path in sorted(pathlib.Path(folder).glob("*.keras")):
        data = np.load(path.with_suffix(".npz"))
        model = keras.saving.load_model(path)
        outputs = model(data["x"], training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        if len(outputs) != sum(key.startswith("y") for key in data):
            errors[path.stem] = float("inf")  # a lost or an extra output
            continue
        errors[path.stem] = max(
            float(np.max(np.abs(keras.ops.convert_to_numpy(y) - data[f"y{i}"])))
            for i, y in enumerate(outputs)
        )
        keras.backend.clear_session(free_memory=False)
    return errors


def main(*folders):
    report = {
        "backend": keras.backend.backend(),
        "folders": {pathlib.Path(f).name: compare(f) for f in folders},
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:])
