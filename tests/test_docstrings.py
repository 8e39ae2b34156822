"""Every public layer is documented, and every example in kvision runs."""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import kvision
from kvision import layers

PUBLIC_LAYERS = [getattr(layers, name) for name in layers.__all__]
MODULES = [
    importlib.import_module(info.name)
    for info in pkgutil.walk_packages(kvision.__path__, "kvision.")
]


@pytest.mark.parametrize("cls", PUBLIC_LAYERS, ids=lambda c: c.__name__)
def test_public_layer_docstring_has_the_required_parts(cls):
    doc = inspect.getdoc(cls)
    assert "arXiv:" in doc, "paper reference"
    for part in ("Args:", "Output shape", ">>> "):
        assert part in doc, part
    # Every constructor argument is documented under Args.
    args = doc.split("Args:", 1)[1]
    for name in inspect.signature(cls.__init__).parameters:
        if name not in ("self", "kwargs"):
            assert f"{name}:" in args, f"{cls.__name__}: {name} undocumented"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0


def test_every_public_layer_has_an_example():
    finder = doctest.DocTestFinder()
    for cls in PUBLIC_LAYERS:
        examples = [
            t for t in finder.find(cls) if t.name.endswith(cls.__name__)
        ]
        assert examples and examples[0].examples, cls.__name__
