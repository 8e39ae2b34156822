"""Every registered model builds, runs, trains a step and reloads.

Driven by the registry: a newly registered variant is tested automatically,
at the smallest input its architecture accepts.
"""

import keras
import numpy as np
import pytest

from kvision.models import create_model
from kvision.models import list_models
from kvision.models import model_config
from tests.helpers import to_numpy


def smallest_input(name):
    """The smallest square image the variant's downsampling accepts."""
    config = model_config(name)
    if "depths" in config:  # ConvNeXt: the stem, then a halving per stage
        stem = config.get("stem_patch_size", 4)
        return stem * 2 ** (len(config["depths"]) - 1)
    return config["patch_size"] * 2


def build_small(name):
    size = smallest_input(name)
    return create_model(name, input_shape=(size, size, 3), num_classes=5)


@pytest.mark.parametrize("name", list_models())
def test_registered_model_trains_and_reloads(name, tmp_path):
    model = build_small(name)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2, *model.input_shape[1:])).astype("float32")
    y = np.array([1, 3])

    before = to_numpy(model(x, training=False))
    assert before.shape == (2, 5)
    assert np.isfinite(before).all()

    # Plain SGD: no optimizer state to create for up to 350M parameters, and
    # an update step that builds in a fraction of Adam's time.
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # Compiling a whole deep model costs ~10-40 s per variant and
        # backend; the layers' compiled steps are tested on their own.
        jit_compile=False,
    )
    first = to_numpy(model.trainable_weights[0])
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert not np.array_equal(first, to_numpy(model.trainable_weights[0]))

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(
        to_numpy(loaded(x, training=False)),
        to_numpy(model(x, training=False)),
        rtol=1e-5,
        atol=1e-5,
    )
