"""The analytic FLOP formulas against the products PyTorch actually runs."""

import keras
import numpy as np
import pytest

from benchmarks import flops
from kvision.models import create_model
from tests.symbolic import symbolic_model

CASES = [
    ("vit_32px", {}),
    ("sl_vit_32px", {"depth": 2}),
    ("vit_32px", {"depth": 1, "head_dim": None, "num_heads": 4}),
    ("convmixer_256_8", {"depth": 2}),
    ("convmixer_256_8", {"depth": 1, "kernel_size": 4, "include_top": False}),
    ("mixer_32px", {}),
    ("convnext_32px", {}),
    ("convnext_atto", {"input_shape": (64, 64, 3), "kernel_size": 5}),
]


@pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="counts PyTorch's operations"
)
@pytest.mark.parametrize("name,overrides", CASES)
def test_formula_equals_pytorch_flop_counter(name, overrides):
    # FlopCounterMode counts 2 FLOPs per multiply-add of every matmul,
    # convolution and attention kernel PyTorch runs: the formulas' convention.
    model = create_model(name, **overrides)
    assert flops.has_formula(model)
    assert flops.counted_forward_flops(model) == flops.forward_flops(model)


@pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="counts PyTorch's operations"
)
def test_families_without_a_formula_are_counted():
    model = create_model("swin_32px", depths=(1, 1), num_heads=(2, 2))
    assert not flops.has_formula(model)
    # More than the patch embedding's products: 256 patches, 2x2x3 -> 96.
    assert flops.counted_forward_flops(model) > 2 * 256 * 12 * 96


@pytest.mark.skipif(
    keras.backend.backend() == "torch", reason="the refusal off torch"
)
def test_counting_needs_the_torch_backend():
    model = create_model("mixer_32px", depth=1)
    with pytest.raises(ValueError, match="needs the torch backend"):
        flops.counted_forward_flops(model)


def test_known_published_sizes():
    # timm's model cards: ConvNeXt-atto 0.55 GMACs, Mixer-S/16 3.79 GMACs.
    # The formulas read the config only: symbolic builds suffice.
    atto = flops.forward_flops(symbolic_model("convnext_atto"))
    assert np.isclose(atto / 2e9, 0.55, rtol=0.01)
    mixer = flops.forward_flops(symbolic_model("mixer_s16"))
    assert np.isclose(mixer / 2e9, 3.79, rtol=0.01)


def test_unknown_family_is_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="No FLOP formula for Sequential"):
        flops.forward_flops(model)


def test_gflops_rounds_to_three_significant_digits():
    assert flops.gflops(375_433_728) == 0.375
    assert flops.gflops(7_553_916_928) == 7.55
    assert flops.gflops(0) == 0.0
