"""Paper-sized variants have exactly the reference parameter counts.

Counts are trainable parameters, which is what PyTorch's
``sum(p.numel() for p in model.parameters())`` reports for the reference
implementations (BatchNorm's running statistics are buffers there, while
Keras' ``count_params()`` includes them). Models are only built here.
"""

import keras
import numpy as np
import pytest

from kvision.models import create_model
from kvision.models import model_config

# Published counts of the reference implementations (timm / torchvision /
# the papers' official code), with the 1000-class ImageNet head.
REFERENCE = {
    "vit_b16": 86_567_656,
    "mixer_s16": 18_528_264,
    "mixer_b16": 59_880_472,
    "mixer_l16": 208_196_168,
    "convmixer_1536_20": 51_625_960,
    "convmixer_768_32": 21_110_248,
    "convmixer_1024_20_ks9_p14": 24_383_464,
    "convmixer_512_12": 4_165_608,
    "convnext_atto": 3_695_520,
    "convnext_femto": 5_217_784,
    "convnext_pico": 9_045_672,
    "convnext_nano": 15_593_560,
    "convnext_tiny": 28_589_128,
    "convnext_small": 50_223_688,
    "convnext_base": 88_591_464,
    "convnext_large": 197_767_336,
    "convnext_xlarge": 350_196_968,
}
# The small-input variants, at their default number of classes.
SMALL = {
    "vit_32px": 2_692_426,
    "sl_vit_32px": 2_729_878,
    "vit_64px": 2_756_744,
    "sl_vit_64px": 2_906_228,
    "convmixer_256_8": 594_186,
    "mixer_32px": 1_132_170,
    "convnext_32px": 1_901_802,
}


def trainable_parameters(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def analytic_count(name):
    """The count from the architecture's formula, independent of Keras."""
    c = model_config(name)
    classes = c["num_classes"]
    if name.startswith("convnext"):
        dims, depths = c["dims"], c["depths"]
        stem = c.get("stem_patch_size", 4)
        total = 3 * stem * stem * dims[0] + dims[0] + 2 * dims[0]
        for i, (dim, depth) in enumerate(zip(dims, depths, strict=True)):
            if i:
                total += 2 * dims[i - 1] + 4 * dims[i - 1] * dim + dim
            # depthwise 7x7 + LN + 4x MLP + LayerScale
            total += depth * (8 * dim * dim + 58 * dim)
        return total + 2 * dims[-1] + dims[-1] * classes + classes
    if name.startswith("convmixer"):
        h, p, k = c["dim"], c["patch_size"], c["kernel_size"]
        stem = 3 * p * p * h + h + 2 * h
        block = (k * k * h + h + 2 * h) + (h * h + h + 2 * h)
        return stem + c["depth"] * block + h * classes + classes
    if name.startswith("mixer"):
        h, p = c["hidden_dim"], c["patch_size"]
        tokens = (c["input_shape"][0] // p) * (c["input_shape"][1] // p)
        ds, dc = c["tokens_mlp_dim"], c["channels_mlp_dim"]
        block = 4 * h + 2 * tokens * ds + ds + tokens + 2 * h * dc + dc + h
        stem = 3 * p * p * h + h
        return stem + c["depth"] * block + 2 * h + h * classes + classes
    if "vit" in name:
        d, p = c["embed_dim"], c["patch_size"]
        heads = c["num_heads"]
        head_dim = c.get("head_dim") or d // heads
        inner = heads * head_dim
        tokens = (c["input_shape"][0] // p) * (c["input_shape"][1] // p)
        if c.get("tokenizer") == "spt":
            patch = 5 * 3 * p * p
            embed = 2 * patch + patch * d + d
        else:
            embed = 3 * p * p * d + d
        qkv = d * 3 * inner + (3 * inner if c.get("qkv_bias", True) else 0)
        attention = qkv + inner * d + d
        if c.get("attention") == "lsa":
            attention += heads  # the learnable temperature
        mlp = 2 * d * c["mlp_dim"] + c["mlp_dim"] + d
        block = 4 * d + attention + mlp
        return (
            embed
            + d
            + (tokens + 1) * d
            + c["depth"] * block
            + 2 * d
            + d * classes
            + classes
        )
    raise AssertionError(f"no formula for {name}")


@pytest.mark.parametrize("name", sorted(REFERENCE) + sorted(SMALL))
def test_parameter_count(name):
    expected = {**REFERENCE, **SMALL}[name]
    assert analytic_count(name) == expected
    model = create_model(name)
    assert trainable_parameters(model) == expected
    keras.backend.clear_session()


def test_every_registered_model_has_a_count():
    from kvision.models import list_models

    assert set(list_models()) == set(REFERENCE) | set(SMALL)
