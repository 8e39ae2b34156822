"""The example scripts run end to end (smoke size) on this backend."""

import json
import os
import pathlib
import subprocess
import sys

import keras

from tests import helpers

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_sl_vit_digits_example_trains_and_plots(tmp_path):
    env = dict(os.environ, KVISION_SMOKE="1")
    env["KERAS_HOME"] = str(tmp_path / "keras_home")
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "sl_vit_digits.py"),
            "--out",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["backend"] == keras.backend.backend()
    helpers.check_reported_accuracy(
        tmp_path, {**metrics, "dataset": "digits"}, image_size=32, num_train=256
    )
    for name in ("class_token_attention.png", "training_curves.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
