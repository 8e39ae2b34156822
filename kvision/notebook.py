"""What every tutorial notebook does before it trains anything.

Form fields and environment variables, the Keras backend, the device, and
how big a run the device can take. Notebook pattern (see any
``notebooks/NN_topic.py``)::

    from kvision import notebook

    BACKEND = "jax"  # @param ["jax", "tensorflow", "torch"]
    BACKEND = notebook.setting("KERAS_BACKEND", BACKEND)
    ...
    run = notebook.start(BACKEND, DATASET, size=SIZE)

Colab turns the ``# @param`` lines into a form; outside Colab, environment
variables (set by the tests and scripts) override the form's values.

This module imports Keras only inside :func:`start`, after it has chosen
the backend: Keras reads ``KERAS_BACKEND`` once, on its first import.
"""

import ast
import dataclasses
import os
import platform
import shutil
import subprocess
import sys
import warnings

import kvision

BACKENDS = ("jax", "tensorflow", "torch")
SIZES = ("auto", "full", "cpu", "smoke")
# Datasets small enough that a CPU can take the tutorials' runs on them:
# kvision.data.datasets.OFFLINE, spelled out because importing kvision.data
# imports Keras, which must wait for the backend (a test keeps them equal).
OFFLINE_DATASETS = ("digits", "shapes", "cluttered_digits")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def setting(name, value):
    """The environment variable ``name`` if it is set, else ``value``.

    The environment's text is converted to the type of ``value`` (the form
    field's): ``bool`` accepts ``1/0``, ``true/false``, ``yes/no``; ``int``
    and ``float`` their literals; ``None`` (a "raw" form field) any Python
    literal, e.g. ``3`` or ``(0, 1, 2)``, else the text itself.

    Args:
        name: the environment variable, e.g. ``"KVISION_DATASET"``.
        value: the form field's value, used when ``name`` is not set.

    Returns:
        The setting in effect.

    >>> setting("KVISION_NOT_SET_ANYWHERE", 3)
    3
    """
    text = os.environ.get(name)
    if text is None:
        return value
    text = text.strip()
    if isinstance(value, bool):
        if text.lower() not in _TRUE | _FALSE:
            raise ValueError(
                f"`{name}` must be 1/0, true/false or yes/no. "
                f"Received: {name}={text!r}"
            )
        return text.lower() in _TRUE
    if isinstance(value, (int, float)):
        try:
            return type(value)(text)
        except ValueError:
            raise ValueError(
                f"`{name}` must be a number. Received: {name}={text!r}"
            ) from None
    if value is None:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
    return text


def seed_list(seeds, default=1):
    """The seeds to run: ``None`` gives ``range(default)``, an int ``n``
    gives ``range(n)``, a sequence is taken as it is.

    >>> seed_list(None, default=3), seed_list(2), seed_list([7, 11])
    ((0, 1, 2), (0, 1), (7, 11))
    """
    if seeds is None:
        seeds = default
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(
                f"`seeds` must be at least 1. Received: seeds={seeds}"
            )
        return tuple(range(seeds))
    if isinstance(seeds, (list, tuple)) and seeds:
        if all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            return tuple(seeds)
    raise ValueError(
        "`seeds` must be a number of seeds or a list of integers. "
        f"Received: seeds={seeds!r}"
    )


def on_colab():
    """Whether this kernel runs on Google Colab."""
    return "google.colab" in sys.modules


def use_backend(backend):
    """Makes ``backend`` the Keras backend if Keras is not imported yet.

    Keras reads ``KERAS_BACKEND`` once, when it is first imported. If it
    already was, with another backend, this process keeps that one: the
    function says so (a warning naming the restart to do) and returns the
    backend in effect.

    Args:
        backend: ``"jax"``, ``"tensorflow"`` or ``"torch"``.

    Returns:
        The backend this process will use.
    """
    if backend not in BACKENDS:
        raise ValueError(
            f"`backend` must be one of {BACKENDS}. "
            f"Received: backend={backend!r}"
        )
    keras = sys.modules.get("keras")
    if keras is None:
        os.environ["KERAS_BACKEND"] = backend
        return backend
    current = keras.backend.backend()
    if current != backend:
        restart = (
            "Runtime > Restart session" if on_colab() else "restart the kernel"
        )
        message = (
            f"Keras was already imported with the {current!r} backend in "
            f"this session, and a backend cannot change once Keras is "
            f"loaded: this run continues on {current!r}. To use "
            f"{backend!r}, {restart}, then run the notebook from the top."
        )
        warnings.warn(message, stacklevel=2)
    return current


def describe_device():
    """``(platform, description)`` of the device Keras computes on.

    Asks the backend which device it computes on (so it imports Keras)
    and, for GPUs, adds the model name that ``nvidia-smi`` reports.
    """
    from kvision._devices import default_platform  # imports Keras

    kind = default_platform()
    description = kind.upper()
    if kind == "cpu":
        description = "CPU only (no GPU or TPU found)"
    if kind == "gpu" and shutil.which("nvidia-smi"):
        names = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split("\n")
        if names and names[0].strip():
            description = f"GPU ({names[0].strip()})"
    return kind, description


@dataclasses.dataclass(frozen=True)
class Run:
    """What :func:`start` decided.

    Attributes:
        backend: the Keras backend in effect.
        dataset: the dataset name.
        size: ``"full"`` (the papers' models and data), ``"cpu"``
            (narrower models and fewer images) or
            ``"smoke"`` (a toy run that only checks the notebook works).
        device: what the device is, e.g. ``"GPU (Tesla T4)"``.
        accelerator: whether that is a GPU or TPU.
        colab: whether this is a Colab session.
    """

    backend: str
    dataset: str
    size: str
    device: str
    accelerator: bool
    colab: bool

    @property
    def smoke(self):
        return self.size == "smoke"


def choose_size(size, dataset, accelerator):
    """The run size for ``size="auto"``, and why, as ``(size, reason)``.

    >>> choose_size("auto", "cifar10", accelerator=False)[0]
    'cpu'
    """
    if size not in SIZES:
        raise ValueError(f"`size` must be one of {SIZES}. Received: {size!r}")
    if size != "auto":
        return size, f"size={size!r} was asked for"
    if dataset in OFFLINE_DATASETS:
        return "cpu", f"{dataset} is a small offline dataset"
    if accelerator:
        return "full", "an accelerator is available"
    return "cpu", (
        "no GPU or TPU was found, and the full run would take many hours "
        "on a CPU. On Colab: Runtime > Change runtime type > GPU, then run "
        "again; or set SIZE='full' to run it here anyway"
    )


def start(backend, dataset, size="auto"):
    """Chooses the backend, reports the device and picks the run size.

    Call it before importing Keras. It prints one line per decision: the
    versions, the device, and the run size with its reason (a CPU-sized run
    when there is no accelerator, unless ``size`` says otherwise).

    Args:
        backend: ``"jax"``, ``"tensorflow"`` or ``"torch"`` (see
            :func:`use_backend` for when it cannot be changed).
        dataset: the dataset the notebook will load.
        size: ``"auto"``, ``"full"``, ``"cpu"`` or ``"smoke"``.

    Returns:
        A :class:`Run`.
    """
    if size not in SIZES:
        raise ValueError(f"`size` must be one of {SIZES}. Received: {size!r}")
    backend = use_backend(backend)
    import keras

    kind, description = describe_device()
    accelerator = kind in ("gpu", "tpu")
    chosen, reason = choose_size(size, dataset, accelerator)
    run = Run(backend, dataset, chosen, description, accelerator, on_colab())
    print(
        f"kvision {kvision.__version__}, Keras {keras.__version__} on "
        f"{backend}, Python {platform.python_version()}"
        + (", Colab" if run.colab else "")
    )
    print(f"device: {description}")
    print(f"dataset: {dataset}; run size: {chosen} ({reason})")
    return run
