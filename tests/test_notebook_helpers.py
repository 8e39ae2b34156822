"""kvision.notebook: form fields and the environment, the backend, the
device and the run size (what every tutorial notebook does first)."""

import subprocess
import sys

import keras
import pytest

from kvision import notebook
from kvision.data import datasets


def test_setting_takes_the_environment_over_the_form(monkeypatch):
    monkeypatch.delenv("KVISION_TEST_SETTING", raising=False)
    assert notebook.setting("KVISION_TEST_SETTING", "cifar10") == "cifar10"
    for form, text, expected in [
        ("cifar10", "digits", "digits"),
        (False, "1", True),
        (True, "no", False),
        (20, "3", 3),
        (None, "3", 3),
        (None, "(0, 4)", (0, 4)),
        (None, "cpu", "cpu"),
    ]:
        monkeypatch.setenv("KVISION_TEST_SETTING", text)
        assert notebook.setting("KVISION_TEST_SETTING", form) == expected


@pytest.mark.parametrize("form, text", [(False, "maybe"), (3, "three")])
def test_setting_rejects_text_of_the_wrong_type(monkeypatch, form, text):
    monkeypatch.setenv("KVISION_TEST_SETTING", text)
    with pytest.raises(ValueError, match="KVISION_TEST_SETTING"):
        notebook.setting("KVISION_TEST_SETTING", form)


def test_seed_list():
    assert notebook.seed_list(None, default=3) == (0, 1, 2)
    assert notebook.seed_list(2) == (0, 1)
    assert notebook.seed_list([5, 9]) == (5, 9)
    for bad in (0, [], ["a"], True, 1.5):
        with pytest.raises(ValueError, match="seeds"):
            notebook.seed_list(bad)


def test_run_size_follows_the_device_and_the_dataset():
    assert notebook.choose_size("auto", "cifar10", True)[0] == "full"
    size, reason = notebook.choose_size("auto", "cifar10", False)
    assert size == "cpu" and "GPU" in reason
    for offline in notebook.OFFLINE_DATASETS:
        assert notebook.choose_size("auto", offline, True)[0] == "cpu"
    assert notebook.choose_size("full", "cifar10", False)[0] == "full"
    with pytest.raises(ValueError, match="size"):
        notebook.choose_size("huge", "cifar10", False)


def test_offline_datasets_match_kvision_data():
    # notebook.py spells them out: importing kvision.data imports Keras.
    assert set(notebook.OFFLINE_DATASETS) == set(datasets.OFFLINE)


def test_start_reports_this_process_backend_and_device(capsys):
    run = notebook.start(keras.backend.backend(), "digits", size="auto")
    printed = capsys.readouterr().out
    assert run.backend == keras.backend.backend() and run.size == "cpu"
    assert not run.accelerator and "CPU" in run.device
    assert keras.backend.backend() in printed and "run size: cpu" in printed
    assert not run.colab


def test_asking_for_another_backend_after_keras_says_restart():
    other = next(b for b in notebook.BACKENDS if b != keras.backend.backend())
    with pytest.warns(UserWarning, match="restart the kernel"):
        assert notebook.use_backend(other) == keras.backend.backend()
    with pytest.raises(ValueError, match="backend"):
        notebook.use_backend("numpy")


def test_backend_is_set_when_keras_is_not_imported_yet(tmp_path):
    code = (
        "import sys; from kvision import notebook; "
        "assert 'keras' not in sys.modules; "
        "notebook.use_backend('torch'); import keras; "
        "print(keras.backend.backend())"
    )
    env = {"PATH": "/usr/bin:/bin", "KERAS_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "torch"
