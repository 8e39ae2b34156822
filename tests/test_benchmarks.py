"""The accuracy-under-budget benchmark runs end to end (smoke size)."""

import json
import os
import pathlib
import subprocess
import sys

import keras

from benchmarks import accuracy_under_budget as bench

REPO = pathlib.Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_quick_benchmark_writes_json_table_and_plot(tmp_path):
    env = dict(os.environ, KERAS_HOME=str(tmp_path / "keras_home"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.accuracy_under_budget",
            "--quick",
            "--models",
            "sl_vit_32px",
            "--datasets",
            "shapes",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    backend = keras.backend.backend()
    record = json.loads((tmp_path / f"accuracy_{backend}.json").read_text())
    assert record["backend"] == backend and record["quick"] is True
    (run,) = record["runs"]
    assert (run["model"], run["dataset"], run["epochs"]) == (
        "sl_vit_32px",
        "shapes",
        1,
    )
    assert run["parameters"] > 0 and run["train_seconds"] > 0
    assert 0.0 <= run["test_accuracy"] <= 1.0
    (probe,) = record["baselines"]
    assert probe["model"] == bench.PROBE and probe["dataset"] == "shapes"
    assert 0.0 <= probe["test_accuracy"] <= 1.0

    table = (tmp_path / "accuracy.md").read_text()
    row = f"| sl_vit_32px | shapes | {backend} | {run['parameters']:,} | 1 |"
    assert row in table
    assert "quick mode" in table
    assert f"| {probe['test_accuracy']:.3f} |" in table
    png = (tmp_path / "accuracy_vs_time.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000


def test_report_combines_backends_and_lists_each_baseline_once(tmp_path):
    def record(backend, accuracy):
        run = {
            "model": "convmixer_256_8",
            "dataset": "digits",
            "backend": backend,
            "parameters": 1234,
            "epochs": 3,
            "batch_size": 128,
            "image_size": 16,
            "overrides": {"depth": 2},
            "train_seconds": 4.0,
            "total_seconds": 5.0,
            "cpu_seconds": 6.0,
            "test_accuracy": accuracy,
        }
        probe = {
            "model": bench.PROBE,
            "dataset": "digits",
            "backend": "scikit-learn",
            "parameters": 7690,
            "epochs": None,
            "image_size": 16,
            "train_seconds": 0.5,
            "total_seconds": 0.5,
            "cpu_seconds": 0.5,
            "test_accuracy": 0.9,
        }
        return {
            "backend": backend,
            "keras": "3",
            "python": "3",
            "machine": "cpu",
            "date": "2025-01-01",
            "seed": 0,
            "quick": False,
            "OMP_NUM_THREADS": None,
            "load_average": [1.0, 2.0],
            "runs": [run, dict(run, epochs=9, train_seconds=12.0)],
            "baselines": [probe],
        }

    for backend, accuracy in (("jax", 0.5), ("torch", 0.75)):
        path = tmp_path / f"accuracy_{backend}.json"
        path.write_text(json.dumps(record(backend, accuracy)))
    bench.main(["--report-only", "--out", str(tmp_path)])

    table = (tmp_path / "accuracy.md").read_text()
    for row in (
        "| convmixer_256_8 | digits | jax | 1,234 | 3 | 4.0 | 6.0 | 0.500 |",
        "| convmixer_256_8 | digits | torch | 1,234 | 9 | 12.0 | 6.0 | 0.750 |",
    ):
        assert row in table
    assert table.count("| digits | 16 | 7,690 | 0.5 | 0.900 |") == 1
    assert "| convmixer_256_8 | 16 | 128 | depth=2 |" in table
    png = (tmp_path / "accuracy_vs_time.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
