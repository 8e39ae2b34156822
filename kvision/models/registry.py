"""Model variants by name: create, list and register them."""

import fnmatch

_VARIANTS = {}


def register_model(name, cls, description="", **config):
    """Registers a named variant: a model class and its constructor arguments.

    Args:
        name: the variant name, e.g. ``"convmixer_256_8"``.
        cls: a kvision model class (or any callable returning a model).
        description: one line shown by :func:`list_models` users.
        **config: the variant's constructor arguments.

    Returns:
        ``name``.
    """
    if name in _VARIANTS:
        raise ValueError(f"A model named {name!r} is already registered.")
    _VARIANTS[name] = (cls, description, dict(config))
    return name


def list_models(pattern=None):
    """Sorted names of the registered variants, optionally matching a glob.

    Example:

    >>> from kvision.models import list_models
    >>> list_models("convmixer_*")[:2]
    ['convmixer_1024_20_ks9_p14', 'convmixer_1536_20']
    """
    names = sorted(_VARIANTS)
    if pattern is None:
        return names
    return [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def model_config(name):
    """The constructor arguments a variant is built with (a copy)."""
    return dict(_lookup(name)[2])


def model_class(name):
    """The class a variant is built with."""
    return _lookup(name)[0]


def describe_model(name):
    """The one-line description of a variant."""
    return _lookup(name)[1]


def create_model(name, **overrides):
    """Builds a registered variant, with any constructor argument overridden.

    Example:

    >>> from kvision.models import create_model
    >>> model = create_model("vit_32px", num_classes=100, depth=2)
    >>> tuple(model.output.shape)
    (None, 100)
    """
    cls, _, config = _lookup(name)
    return cls(**{"name": name, **config, **overrides})


def _lookup(name):
    if name not in _VARIANTS:
        close = fnmatch.filter(_VARIANTS, f"*{str(name)[:6]}*")
        raise ValueError(
            f"Unknown model {name!r}. Registered models matching it: "
            f"{sorted(close) or list_models()}. Received: name={name!r}"
        )
    return _VARIANTS[name]
