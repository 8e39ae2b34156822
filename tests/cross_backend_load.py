"""Loads ``.keras`` files written under another backend and compares outputs.

Run by ``test_cross_backend.py`` in a child process whose ``KERAS_BACKEND``
differs from the parent's. Prints one JSON report on stdout.
"""

import json
import pathlib
import sys

import keras
import numpy as np

import kvision.layers  # noqa: F401  (registers the serializable layers)


def main(folder):
    report = {"backend": keras.backend.backend(), "cases": {}}
    for path in sorted(pathlib.Path(folder).glob("*.keras")):
        data = np.load(path.with_suffix(".npz"))
        model = keras.saving.load_model(path)
        outputs = model(data["x"], training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        errors = [
            float(np.max(np.abs(keras.ops.convert_to_numpy(y) - data[f"y{i}"])))
            for i, y in enumerate(outputs)
        ]
        report["cases"][path.stem] = max(errors)
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
