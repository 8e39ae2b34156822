"""Every registered model builds at the smallest input its architecture
accepts; every small one also runs, trains a step and reloads.

Driven by the registry: a newly registered variant is tested automatically.
Variants registered for ImageNet-size images (a default input of 224 px or
more) are built symbolically: the whole graph, its output shape and its
config round trip through a ``.keras`` file's JSON, with weights that have
shapes but no values (``tests/symbolic.py``), so a 350M-parameter variant
costs what a small one does. What training and reloading would add for
them is what it adds for the small variants of the same classes, which run
the same code at other widths and depths; their exact parameter counts are
asserted in ``test_param_counts.py``.
"""

import inspect

import keras
import numpy as np
import pytest

from kvision.models import create_model
from kvision.models import list_models
from kvision.models import model_class
from kvision.models import model_config
from tests.helpers import inference
from tests.helpers import to_numpy
from tests.symbolic import symbolic
from tests.symbolic import symbolic_from_config


def smallest_input(name):
    """The smallest square image the variant's downsampling accepts."""
    config = model_config(name)
    if name.startswith(("poolformer", "metaformer")):
        # The stem's stride, then a halving per later stage, to a 1x1 last
        # grid (2x2 for attention, which would take a softmax over one).
        last = 2 if config.get("token_mixer") == "attention" else 1
        return config["stem_stride"] * 2 ** (len(config["depths"]) - 1) * last
    if name.startswith(("swin", "sl_swin")):
        # A halving per merge down to a 2x2 last map: a one-token window
        # would take a softmax over one (and LSA needs two tokens).
        return config["patch_size"] * 2 ** len(config["depths"])
    if name.startswith(("pit", "sl_pit")):
        if config.get("token_pooling") == "spt":  # SPT pooling halves grids
            return config["patch_size"] * 2 ** (len(config["depths"]) - 1)
        return config["patch_size"]  # one token, which PiT's pooling keeps
    if name.startswith("davit"):
        # The stride-4 stem, then a halving per later stage down to a 1x1
        # map (smaller maps are padded into one attention window).
        return 4 * 2 ** (len(config["depths"]) - 1)
    if name.startswith(("t2t", "sl_t2t")):
        # Each soft split halves the side: 2x2 tokens for the last token
        # transformer (LSA needs two), then one token beside the class token.
        return 2 ** (config["num_iterations"] + 1)
    if "depths" in config:  # ConvNeXt: the stem, then a halving per stage
        stem = config.get("stem_patch_size", 4)
        return stem * 2 ** (len(config["depths"]) - 1)
    return config["patch_size"] * 2


def small_overrides(name):
    """Arguments a variant needs at its smallest input."""
    if name.startswith(("swin", "sl_swin")):
        # Windows of 7 tile no power-of-two map; two blocks in the first
        # stage (unshifted, shifted) and one per later stage run every path.
        stages = len(model_config(name)["depths"])
        return {"window_size": 4, "depths": (2,) + (1,) * (stages - 1)}
    if name.startswith(("pit", "sl_pit")):
        return {"depths": (1,) * len(model_config(name)["depths"])}
    if name.startswith(("poolformer", "metaformer")):
        # One block per stage runs the stem, every downsampling and the
        # mixer at each grid (test_param_counts builds the full depths).
        return {"depths": (1,) * len(model_config(name)["depths"])}
    if name.startswith("davit") and not imagenet_size(name):
        # Two stages: every block kind and a downsampling (the full variant
        # runs in test_cross_backend and the notebook; the ImageNet ones
        # build symbolically in full).
        config = model_config(name)
        return {
            key: tuple(config[key][:2])
            for key in ("depths", "dims", "num_heads")
        }
    if name.startswith(("cait", "sl_cait", "t2t", "sl_t2t")):
        # 12-36 blocks: two are the same code (test_param_counts builds the
        # full depth).
        return {"depth": 2}
    return {}


def build_small(name):
    size = smallest_input(name)
    return create_model(
        name,
        input_shape=(size, size, 3),
        num_classes=5,
        **small_overrides(name),
    )


def imagenet_size(name):
    """Whether the variant is registered for images of 224 px or more."""
    shape = model_config(name).get("input_shape")
    if shape is None:
        signature = inspect.signature(model_class(name))
        shape = signature.parameters["input_shape"].default
    return min(shape[:2]) >= 224


IMAGENET_SIZE = [n for n in list_models() if imagenet_size(n)]
SMALL = [n for n in list_models() if not imagenet_size(n)]


@pytest.mark.parametrize("name", IMAGENET_SIZE)
def test_imagenet_size_model_builds_symbolically(name):
    model = symbolic(build_small, name)
    assert tuple(model.output.shape) == (None, 5)
    clone = symbolic_from_config(model)
    assert type(clone) is type(model)
    assert clone.get_config() == model.get_config()
    assert [(w.path, w.shape) for w in clone.weights] == [
        (w.path, w.shape) for w in model.weights
    ]


def test_every_model_class_trains_a_small_variant():
    untrained = {model_class(n) for n in IMAGENET_SIZE} - {
        model_class(n) for n in SMALL
    }
    assert not untrained, (
        f"{sorted(c.__name__ for c in untrained)} only have ImageNet-size "
        "variants, which this file builds but never trains: register a "
        "small variant (e.g. for 32x32 images)"
    )


@pytest.mark.parametrize("name", SMALL)
def test_small_model_trains_and_reloads(name, tmp_path):
    model = build_small(name)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2, *model.input_shape[1:])).astype("float32")
    y = np.array([1, 3])

    # Plain SGD: no optimizer state to create, and an update step that
    # builds in a fraction of Adam's time.
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # Compiled on JAX only, where eager execution compiles every
        # operation on its own. Seconds of this test on JAX, eager /
        # compiled: sl_swin_32px 37.9 / 16.5, metaformer_32px 34.5 / 12.3,
        # davit_32px 28.8 / 12.8, pit_32px 28.3 / 11.2, convnext_32px
        # 25.2 / 27.6; all 18 small models 284 / 178. On TensorFlow and
        # torch one eager step costs less than compiling one.
        jit_compile=keras.backend.backend() == "jax",
    )
    first = to_numpy(model.trainable_weights[0])
    # Two steps: a model that starts its classifier at zero (MLP-Mixer's
    # zero_head) passes no gradient to the layers below it on the first one.
    for _ in range(2):
        loss = model.train_on_batch(x, y)
        assert np.isfinite(loss)
    assert not np.array_equal(first, to_numpy(model.trainable_weights[0]))

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    for built in (model, loaded):
        # An unbuilt sublayer makes Keras (JAX) run one eager forward pass
        # before the compiled one in predict_on_batch.
        unbuilt = [lay.name for lay in built._flatten_layers() if not lay.built]
        assert not unbuilt, unbuilt
    trained = inference(model, x)
    assert trained.shape == (2, 5)
    assert np.isfinite(trained).all()
    np.testing.assert_allclose(
        inference(loaded, x), trained, rtol=1e-5, atol=1e-5
    )
