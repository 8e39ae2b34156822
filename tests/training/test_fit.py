"""Training end to end: outputs, reproducibility, the CLI, distribution."""

import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import pytest

from kvision import data
from kvision import models
from kvision.training import get_recipe
from kvision.training.fit import fit_model
from kvision.training.fit import train
from tests import helpers

REPO = pathlib.Path(__file__).resolve().parents[2]
TINY_VIT = dict(depth=1, embed_dim=16, num_heads=2, head_dim=None)


def test_train_writes_metrics_and_figures_and_reproduces(tmp_path):
    kwargs = dict(
        dataset="shapes",
        epochs=2,
        image_size=16,
        num_train=96,
        num_test=32,
        batch_size=32,
        verbose=0,
        **TINY_VIT,
    )
    # SL-ViT at 16 px: patch 4 gives a 4x4 grid.
    first = train("sl_vit_32px", out=tmp_path / "a", seed=3, **kwargs)
    second = train("sl_vit_32px", out=tmp_path / "b", seed=3, **kwargs)
    for key in ("test_accuracy", "test_loss"):
        assert first[key] == pytest.approx(second[key], abs=1e-6)
    assert first["backend"] == keras.backend.backend()
    assert first["epochs"] == 2 and first["batch_size"] == 32
    written = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert written["test_accuracy"] == first["test_accuracy"]
    history = json.loads((tmp_path / "a" / "history.json").read_text())
    assert len(history["loss"]) == 2 and "val_accuracy" in history
    for name in ("training_curves.png", "maps.png"):
        assert (tmp_path / "a" / name).stat().st_size > 5_000


def test_fit_model_validates_as_asked_and_evaluates_at_the_end():
    train_data, test_data = data.load_dataset(
        "digits", image_size=16, num_train=64, num_test=40
    )
    recipe = get_recipe("sl_vit_32px", batch_size=32, epochs=2)

    def fitted(**kwargs):
        keras.utils.set_random_seed(0)
        model = models.create_model(
            "sl_vit_32px", input_shape=(16, 16, 3), **TINY_VIT
        )
        return model, fit_model(model, recipe, train_data, verbose=0, **kwargs)

    model, each_epoch = fitted(test_data=test_data)
    assert len(each_epoch.history["val_accuracy"]) == 2
    assert each_epoch.train_seconds > 0
    x_test, y_test = test_data
    _, accuracy = model.evaluate(
        x_test.astype("float32") / 255.0,
        keras.utils.to_categorical(y_test, 10),
        verbose=0,
    )
    assert each_epoch.test_accuracy == pytest.approx(float(accuracy))

    _, at_end = fitted(test_data=test_data, validate_each_epoch=False)
    assert sorted(at_end.history) == ["accuracy", "loss"]
    assert at_end.test_accuracy == pytest.approx(each_epoch.test_accuracy)

    _, untested = fitted()
    assert untested.test_accuracy is None and untested.test_loss is None


def test_adapted_paper_recipe_with_mixing_trains_a_convnet(tmp_path):
    # ConvNeXt's recipe mixes every batch (MixUp 0.8 / CutMix 1.0), kept in
    # this one-epoch run on request; the mixing itself is checked in
    # tests/data/test_mixing.py.
    metrics = train(
        "convnext_32px",
        dataset="digits",
        epochs=1,
        paper_augmentation=True,
        num_train=48,
        num_test=16,
        out=tmp_path,
        verbose=0,
        depths=(1,),
        dims=(8,),
    )
    # One epoch on 48 images: the number is near chance, so what can be
    # checked is that it is the saved model's score on the same 16 images.
    helpers.check_reported_accuracy(
        tmp_path, metrics, image_size=32, num_train=48, num_test=16, seed=0
    )
    assert metrics["recipe"] == "convnext_imagenet_adapted"
    values = metrics["recipe_values"]
    assert values["mixup"] == 0.8 and values["mix_prob"] == 1.0
    assert values["rand_augment_ops"] == 2 and values["erasing"] == 0.25
    # 48 images: the smallest batch, 16; digits are not mirrored.
    assert metrics["batch_size"] == 16 and not values["flip"]
    assert metrics["learning_rate"] == pytest.approx(4e-3 * (16 / 4096) ** 0.5)
    assert "batch_size" in metrics["adaptations"]
    assert (tmp_path / "maps.png").exists()


def run_cli(args, tmp_path, **env):
    environment = dict(os.environ, KERAS_HOME=str(tmp_path / "kh"), **env)
    return subprocess.run(
        [sys.executable, "-m", "kvision.train", *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_cli_trains_and_writes_metrics(tmp_path):
    result = run_cli(
        [
            "mixer_32px",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--num-train",
            "64",
            "--num-test",
            "32",
            "--out",
            str(tmp_path / "run"),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["model"] == "mixer_32px"
    helpers.check_reported_accuracy(
        tmp_path / "run",
        metrics,
        image_size=32,
        num_train=64,
        num_test=32,
        seed=0,
    )
    # The adapted recipe is printed before training, beside the paper's.
    assert metrics["recipe"] == "mixer_small_data_adapted"
    assert "Recipe 'mixer_small_data_adapted'" in result.stdout
    assert re.search(r"batch_size\s+128\s+16\s", result.stdout)
    # One epoch of 64 images is a short run: no MixUp, said why.
    assert metrics["recipe_values"]["mixup"] == 0.0
    assert re.search(r"mixup\s+0.5\s+0\s+off: a short run", result.stdout)


def test_cli_can_keep_the_papers_augmentation(monkeypatch, tmp_path):
    from kvision import train as cli
    from kvision.training import fit

    asked = []
    monkeypatch.setattr(
        fit, "train", lambda *args, **kwargs: asked.append(kwargs) or {}
    )
    common = ["vit_32px", "--out", str(tmp_path)]
    cli.main(common)
    cli.main([*common, "--paper-augmentation"])
    assert [kwargs["paper_augmentation"] for kwargs in asked] == [False, True]


@pytest.mark.backend("jax")
def test_cli_distributes_over_simulated_devices(tmp_path):
    result = run_cli(
        [
            "mixer_32px",
            "--epochs",
            "1",
            "--num-train",
            "64",
            "--num-test",
            "32",
            "--batch-size",
            "32",
            "--distribute",
            "--out",
            str(tmp_path / "run"),
        ],
        tmp_path,
        XLA_FLAGS="--xla_force_host_platform_device_count=4",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout[result.stdout.index("{") :])
    assert printed["devices"] == 4


@pytest.mark.backend("tensorflow", "torch")
def test_cli_distribute_explains_it_needs_jax(tmp_path):
    result = run_cli(
        ["mixer_32px", "--distribute", "--out", str(tmp_path)], tmp_path
    )
    assert result.returncode != 0
    assert "JAX backend only" in result.stderr
