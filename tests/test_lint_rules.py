"""The backend ban in pyproject.toml really rejects backend imports."""

import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "source",
    [
        "import torch\n",
        "import jax.numpy as jnp\n",
        "from tensorflow import nn\n",
    ],
)
def test_library_code_may_not_import_a_backend(source):
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the dev extra)")
    probe = subprocess.run(
        [ruff, "check", "--stdin-filename", "kvision/probe.py", "-"],
        input=source,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 1
    assert "TID251" in probe.stdout


def test_tests_may_import_a_backend():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the dev extra)")
    probe = subprocess.run(
        [ruff, "check", "--stdin-filename", "tests/probe.py", "-"],
        input="import torch\n\nprint(torch)\n",
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stdout
