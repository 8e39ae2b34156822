"""The shared checks every kvision layer goes through, on every backend."""

import inspect
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np

BATCH = 3
REPO = pathlib.Path(__file__).resolve().parents[1]


def random_input(case, batch=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    shape = (batch, *case.input_shape)
    return rng.normal(size=shape).astype("float32")


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def inference(model, x):
    """``model(x)`` in inference mode, as NumPy: eager on TensorFlow and
    torch; compiled on JAX, where an eager call compiles every operation
    on its own (sl_swin_32px's first call: 3.1 s eager, 0.4 s compiled)."""
    if keras.backend.backend() == "jax":
        return keras.tree.map_structure(np.asarray, model.predict_on_batch(x))
    return keras.tree.map_structure(to_numpy, model(x, training=False))


def check_reported_accuracy(folder, metrics, **load):
    """The ``test_accuracy`` a training run wrote into ``metrics`` is what
    the model it saved in ``folder/model.keras`` scores on the test split
    (``kvision.data.load_dataset(metrics["dataset"], **load)``, images
    scaled to [0, 1]); a per-epoch record must end on the same number."""
    from kvision import data

    model = keras.saving.load_model(pathlib.Path(folder) / "model.keras")
    _, (x_test, y_test) = data.load_dataset(metrics["dataset"], **load)
    outputs = inference(model, x_test.astype("float32") / 255.0)
    accuracy = float(np.mean(np.argmax(outputs, axis=-1) == y_test))
    assert abs(metrics["test_accuracy"] - accuracy) < 1e-6, (
        metrics["test_accuracy"],
        accuracy,
    )
    per_epoch = metrics.get("test_accuracy_per_epoch")
    if per_epoch:
        assert abs(per_epoch[-1] - accuracy) < 1e-4, (per_epoch, accuracy)
    return accuracy


def count_calls(monkeypatch, module, name):
    """Replaces ``module.name`` with a wrapper that records each call (for
    this test); returns the list it appends a 1 to per call."""
    calls = []
    original = getattr(module, name)

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def call(layer, x, case, **kwargs):
    """Calls a layer; returns (outputs, scores or None)."""
    if case.returns_scores:
        return layer(x, return_attention_scores=True, **kwargs)
    return layer(x, **kwargs), None


def expected_shapes(layer, case, batch):
    """Output (and score) shapes as the layer itself declares them."""
    shape = (batch, *case.input_shape)
    outputs = tuple(layer.compute_output_shape(shape))
    if not case.returns_scores:
        return outputs, None
    if case.scores_shape is not None:
        return outputs, (batch, *case.scores_shape)
    tokens = case.input_shape[0]
    return outputs, (batch, layer.num_heads, tokens, tokens)


def functional_model(case, layer=None):
    """A model with a ``None`` batch axis around one layer."""
    layer = layer or case.make()
    inputs = keras.Input(case.input_shape)
    outputs, scores = call(layer, inputs, case)
    if scores is not None:
        outputs = [outputs, scores]
    return keras.Model(inputs, outputs), layer


def check_eager_and_symbolic_shapes(case):
    layer = case.make()
    x = random_input(case)
    outputs, scores = call(layer, x, case)
    want, want_scores = expected_shapes(layer, case, BATCH)
    assert tuple(outputs.shape) == want
    if case.returns_scores:
        assert tuple(scores.shape) == want_scores

    model, built = functional_model(case)
    # A symbolic call must build every sublayer: one left unbuilt makes
    # Keras (JAX) run an eager forward pass in predict_on_batch.
    unbuilt = [lay.name for lay in built._flatten_layers() if not lay.built]
    assert not unbuilt, unbuilt
    symbolic = model.outputs
    assert tuple(symbolic[0].shape) == (None, *want[1:])
    if case.returns_scores:
        assert tuple(symbolic[1].shape) == (None, *want_scores[1:])


def init_parameters(cls):
    """Constructor arguments a config must carry (not the base Layer's)."""
    names = set()
    for klass in cls.__mro__:
        if klass is keras.layers.Layer:
            break
        if "__init__" in vars(klass):
            params = inspect.signature(klass.__init__).parameters.values()
            names.update(
                p.name
                for p in params
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            )
        # A kvision layer that extends a public Keras layer owes that
        # layer's arguments, not those of Keras' private bases (``rank``).
        if not klass.__module__.startswith("kvision"):
            break
    names.discard("self")
    return names


def check_config_round_trip(case):
    layer = case.make()
    layer.build((None, *case.input_shape))
    config = layer.get_config()
    missing = init_parameters(case.cls) - set(config)
    assert not missing, f"get_config() lacks constructor arguments {missing}"
    for name, value in case.kwargs.items():
        assert _jsonable(config[name]) == _jsonable(value), name

    # Through the same path as a .keras file: JSON and the registry.
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == f"kvision>{case.cls.__name__}"
    text = json.dumps(serialized)
    clone = keras.saving.deserialize_keras_object(json.loads(text))
    assert type(clone) is case.cls
    assert _jsonable(clone.get_config()) == _jsonable(config)


def _jsonable(value):
    return json.loads(json.dumps(value))


def check_save_and_load(case, tmp_path):
    model, _ = functional_model(case)
    x = random_input(case)
    before = [to_numpy(y) for y in _as_list(model(x, training=False))]
    path = tmp_path / f"{case.id}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    after = [to_numpy(y) for y in _as_list(loaded(x, training=False))]
    assert len(before) == len(after)
    for b, a in zip(before, after, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert {type(layer) for layer in loaded.layers} >= {case.cls}


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def jit_compile_setting():
    # torch.compile would add minutes of compilation per layer to the suite;
    # Keras' own default ("auto") for torch is eager, which is what users get.
    return "auto" if keras.backend.backend() == "torch" else True


def check_training_step(case):
    """One compiled training step changes every trainable weight."""
    layer = case.make()
    inputs = keras.Input(case.input_shape)
    x = inputs
    layer.build(inputs.shape)
    if not layer.trainable_weights:
        # A weightless layer must still let gradients through while training:
        # the dense layer in front of it only learns if they do.
        x = keras.layers.Dense(case.input_shape[-1], name="probe")(x)
    outputs, _ = call(layer, x, case)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss="mse",
        jit_compile=jit_compile_setting(),
    )
    x = random_input(case)
    target = np.random.default_rng(1).normal(size=model.outputs[0].shape[1:])
    y = np.broadcast_to(target, (BATCH, *target.shape)).astype("float32")
    before = {w.path: to_numpy(w) for w in model.trainable_weights}
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    unchanged = [
        w.path
        for w in model.trainable_weights
        if np.array_equal(to_numpy(w), before[w.path])
    ]
    assert not unchanged, f"not trained: {unchanged}"
    return before


def check_mixed_precision(case, policy):
    layer = case.make(dtype=policy)
    x = random_input(case)
    outputs, scores = call(layer, x, case, training=True)
    compute_dtype = keras.DTypePolicy(policy).compute_dtype
    for tensor in (outputs, scores):
        if tensor is None:
            continue
        assert keras.backend.standardize_dtype(tensor.dtype) == compute_dtype
        assert np.isfinite(to_numpy(keras.ops.cast(tensor, "float32"))).all()
    for weight in layer.weights:
        assert weight.dtype == "float32", weight.path

    # The same weights in float32 give the reference: the low-precision
    # result may differ by rounding only. Largest measured difference,
    # relative to max(1, the output's scale), over every case and backend:
    # float16 0.0010, bfloat16 0.014 (JAX); the bounds leave 3-5x room.
    reference = case.make()
    functional_model(case, reference)  # builds it, symbolically
    reference.set_weights(layer.get_weights())
    low = call(layer, x, case, training=False)
    full = call(reference, x, case, training=False)
    bound = MIXED_PRECISION_BOUND[compute_dtype]
    for name, got, want in zip(("outputs", "scores"), low, full, strict=True):
        if want is None:
            continue
        got = to_numpy(keras.ops.cast(got, "float32"))
        want = to_numpy(want)
        error = np.abs(got - want).max() / max(1.0, np.abs(want).max())
        assert error <= bound, f"{name}: {error:.4f} > {bound} ({policy})"


MIXED_PRECISION_BOUND = {"float16": 5e-3, "bfloat16": 4e-2}


def run_module(module, *args, tmp_path, backend=None, timeout=900):
    """Runs ``python -m module *args`` from the repository root, in a fresh
    process on ``backend`` (default: this one) with its own Keras home;
    fails the test with the end of stderr if it fails.

    Returns:
        the ``subprocess.CompletedProcess`` (text stdout and stderr).
    """
    env = dict(
        os.environ,
        KERAS_BACKEND=backend or keras.backend.backend(),
        KERAS_HOME=str(tmp_path / "keras_home"),
    )
    result = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result
