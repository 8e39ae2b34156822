"""Looking inside models, headless variants, configs and the registry."""

import inspect

import keras
import numpy as np
import pytest

from kvision import models
from kvision import ops as kv_ops
from kvision.models import create_model
from kvision.models import list_models
from tests.helpers import count_calls
from tests.helpers import inference
from tests.helpers import to_numpy

MODEL_CLASSES = [
    models.VisionTransformer,
    models.ConvMixer,
    models.MLPMixer,
    models.ConvNeXt,
    models.DaViT,
    models.CaiT,
    models.T2TViT,
]
# One small instance per family: (registry name, overrides).
SMALL = {
    "sl_vit_32px": dict(depth=2, embed_dim=32, num_heads=2, head_dim=None),
    "convmixer_256_8": dict(depth=2, dim=16),
    "mixer_32px": dict(depth=2, hidden_dim=16),
    "convnext_32px": dict(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32)),
    "sl_cait_32px": dict(
        depth=1, class_depth=1, embed_dim=16, num_heads=2, mlp_dim=16
    ),
    "sl_t2t_32px": dict(
        depth=1, embed_dim=16, num_heads=2, mlp_dim=16, token_dim=8
    ),
}


def small(name, **overrides):
    return create_model(name, **{**SMALL[name], **overrides})


def images(batch=2, size=32):
    rng = np.random.default_rng(0)
    return rng.uniform(size=(batch, size, size, 3)).astype("float32")


def test_attention_model_exposes_every_block_and_survives_saving(tmp_path):
    model = small("sl_vit_32px")
    path = tmp_path / "vit.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    for m in (model, loaded):
        scores = m.attention_model()(images())
        assert sorted(scores) == ["block_0", "block_1"]
        s = to_numpy(scores["block_1"])
        assert s.shape == (2, 2, 65, 65)
        np.testing.assert_allclose(s.sum(-1), 1.0, atol=1e-5)
        # LSA: no token attends to itself, the class token included.
        assert np.all(np.diagonal(s, axis1=-2, axis2=-1) == 0.0)
    np.testing.assert_allclose(
        to_numpy(loaded.attention_model()(images())["block_0"]),
        to_numpy(model.attention_model()(images())["block_0"]),
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("vit_32px", dict(depth=2, embed_dim=32, num_heads=2)),
        ("sl_vit_32px", SMALL["sl_vit_32px"]),
        ("sl_t2t_32px", SMALL["sl_t2t_32px"]),
        ("pit_32px", dict(depths=(1, 1, 1), num_heads=(1, 2, 2))),
    ],
)
def test_models_attend_through_the_fused_path(monkeypatch, name, overrides):
    # Only the attention view materialises the weights: a model whose
    # blocks returned their scores in its graph would compute them always.
    model = create_model(name, **overrides)
    calls = count_calls(monkeypatch, kv_ops, "attention_probabilities")
    model(images(), training=False)
    model.predict_on_batch(images())
    assert calls == []
    model.attention_model()(images())
    assert calls


def test_plain_vit_attention_keeps_the_diagonal():
    model = create_model("vit_32px", depth=1, embed_dim=32, num_heads=2)
    s = to_numpy(model.attention_model()(images())["block_0"])
    assert np.all(np.diagonal(s, axis1=-2, axis2=-1) > 0.0)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("sl_vit_32px", {"block_0": (2, 65, 32), "block_1": (2, 65, 32)}),
        (
            "convmixer_256_8",
            {
                "stem": (2, 16, 16, 16),
                "block_0": (2, 16, 16, 16),
                "block_1": (2, 16, 16, 16),
            },
        ),
        ("mixer_32px", {"block_0": (2, 64, 16), "block_1": (2, 64, 16)}),
        (
            "convnext_32px",
            {
                "stage_0": (2, 16, 16, 8),
                "stage_1": (2, 8, 8, 16),
                "stage_2": (2, 4, 4, 24),
                "stage_3": (2, 2, 2, 32),
            },
        ),
    ],
)
def test_feature_model_returns_named_intermediates(name, expected):
    model = small(name)
    assert model.feature_names == list(expected)
    features = model.feature_model()(images())
    assert {k: tuple(v.shape) for k, v in features.items()} == expected
    one = model.feature_model([model.feature_names[-1]])(images())
    assert list(one) == [model.feature_names[-1]]


def test_feature_model_and_attention_model_reject_what_is_not_there():
    with pytest.raises(ValueError, match="names='nope'"):
        small("mixer_32px").feature_model(["nope"])
    with pytest.raises(ValueError, match="no attention layers"):
        small("convmixer_256_8").attention_model()


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("pooling", [None, "avg", "max"])
def test_headless_models(name, pooling):
    model = small(name, include_top=False, pooling=pooling)
    features = inference(model, images())
    last = inference(model.feature_model(), images())[model.feature_names[-1]]
    channels = features.shape[-1]
    if pooling is None:
        assert features.shape[0] == 2 and features.ndim == last.ndim
    else:
        assert tuple(features.shape) == (2, channels)
    assert not any("head" in layer.name for layer in model.layers)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_config_round_trip_rebuilds_the_same_model(name):
    model = small(name, num_classes=7, classifier_activation="softmax")
    config = model.get_config()
    clone = type(model).from_config(config)
    assert clone.get_config() == config
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
    probabilities = inference(clone, images())
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    missing = set(inspect.signature(type(model).__init__).parameters)
    missing -= set(config) | {"self", "kwargs"}
    assert not missing


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda c: c.__name__)
def test_model_docstrings_document_every_argument(cls):
    doc = inspect.getdoc(cls)
    assert "arXiv:" in doc and "| name |" in doc and ">>> " in doc
    args = doc.split("Args:", 1)[1]
    for name in inspect.signature(cls.__init__).parameters:
        if name not in ("self", "kwargs"):
            assert f"{name}:" in args, f"{cls.__name__}: {name}"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: create_model("vit_tiny"), "name='vit_tiny'"),
        (
            lambda: create_model("vit_32px", input_shape=(32, 32)),
            "input_shape=(32, 32)",
        ),
        (lambda: create_model("vit_32px", pooling="sum"), "pooling='sum'"),
        (lambda: create_model("vit_32px", tokenizer="conv"), "tokenizer="),
        (lambda: create_model("vit_32px", num_classes=0), "num_classes=0"),
        (lambda: create_model("vit_32px", depth=0), "depth=0"),
        (
            lambda: create_model("vit_32px", drop_path_schedule="cosine"),
            "drop_path_schedule='cosine'",
        ),
        (
            lambda: create_model("convnext_32px", depths=(1, 1), dims=(8,)),
            "depths=(1, 1), dims=(8,)",
        ),
        (
            lambda: create_model("convmixer_256_8", input_shape=(31, 31, 3)),
            "patch_size=2",
        ),
    ],
)
def test_bad_model_arguments(make, message):
    import re

    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_registry_lists_creates_and_refuses_duplicates():
    assert list_models("sl_vit_*") == ["sl_vit_32px", "sl_vit_64px"]
    assert "ConvMixer-256/8" in models.describe_model("convmixer_256_8")
    assert models.model_config("convmixer_256_8")["kernel_size"] == 5
    model = create_model("convmixer_256_8", depth=1, dim=8, num_classes=3)
    assert model.name == "convmixer_256_8"
    assert tuple(model.output.shape) == (None, 3)
    with pytest.raises(ValueError, match="already registered"):
        models.register_model("vit_32px", models.VisionTransformer)


def test_headless_models_headless_include_top_ignores_num_classes():
    model = small("mixer_32px", include_top=False, num_classes=None)
    assert tuple(model.output.shape) == (None, 64, 16)


def test_every_model_documents_its_input_range():
    """Models take floats in [0, 1]; uint8 pixels would fail silently."""
    from kvision.models import list_models
    from kvision.models import model_class

    for name in list_models():
        doc = model_class(name).__doc__ or ""
        assert "[0, 1]" in doc and "to_model_range" in doc, name
