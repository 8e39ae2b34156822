"""Analytic FLOPs per image of kvision's model families, from their configs.

The convention is the one of PyTorch's ``FlopCounterMode``, fvcore and
most papers' tables: 2 FLOPs per multiply-add of every convolution and
matrix product (attention's ``Q K^T`` and ``A V`` included); norms,
activations, softmax, residual adds and pooling are left out (a few
percent here). A training step costs about three forward passes (the
backward pass computes two products per forward product), which is what
``TRAIN_FACTOR`` stands for.

``tests/test_flops.py`` checks these formulas against the products that
PyTorch actually runs for the kvision models on the torch backend.
"""

import math

TRAIN_FACTOR = 3


def _grid(config, patch_size):
    height, width = config["input_shape"][:2]
    return (height // patch_size) * (width // patch_size)


def _head(config, features):
    return 2 * features * config["num_classes"] if config["include_top"] else 0


def vit(config):
    tokens = _grid(config, config["patch_size"])
    channels = config["input_shape"][2]
    if config["tokenizer"] == "spt":
        channels *= 5  # the image and its four diagonal shifts
    width = config["embed_dim"]
    inner = config["num_heads"] * (
        config["head_dim"] or width // config["num_heads"]
    )
    flops = 2 * tokens * config["patch_size"] ** 2 * channels * width
    tokens += 1  # the class token
    block = (
        2 * tokens * width * 3 * inner  # query, key and value
        + 2 * 2 * tokens * tokens * inner  # Q K^T and A V
        + 2 * tokens * inner * width  # output projection
        + 2 * 2 * tokens * width * config["mlp_dim"]  # the MLP
    )
    return flops + config["depth"] * block + _head(config, width)


def convmixer(config):
    tokens = _grid(config, config["patch_size"])
    dim = config["dim"]
    stem = 2 * tokens * config["patch_size"] ** 2 * config["input_shape"][2]
    block = 2 * tokens * dim * (config["kernel_size"] ** 2 + dim)
    return stem * dim + config["depth"] * block + _head(config, dim)


def mlp_mixer(config):
    tokens = _grid(config, config["patch_size"])
    dim = config["hidden_dim"]
    stem = 2 * tokens * config["patch_size"] ** 2 * config["input_shape"][2]
    block = 2 * 2 * dim * tokens * config["tokens_mlp_dim"] + (
        2 * 2 * tokens * dim * config["channels_mlp_dim"]
    )
    return stem * dim + config["depth"] * block + _head(config, dim)


def convnext(config):
    patch = config["stem_patch_size"]
    dims, depths = config["dims"], config["depths"]
    positions = _grid(config, patch)
    flops = 2 * positions * patch**2 * config["input_shape"][2] * dims[0]
    for stage, (dim, depth) in enumerate(zip(dims, depths, strict=True)):
        if stage:
            positions //= 4  # a 2x2 convolution with stride 2
            flops += 2 * positions * 4 * dims[stage - 1] * dim
        block = 2 * positions * dim * (config["kernel_size"] ** 2 + 8 * dim)
        flops += depth * block
    return flops + _head(config, dims[-1])


FAMILIES = {
    "VisionTransformer": vit,
    "ConvMixer": convmixer,
    "MLPMixer": mlp_mixer,
    "ConvNeXt": convnext,
}


def forward_flops(model):
    """FLOPs of one image through a kvision model's forward pass.

    Args:
        model: a kvision model (anything of the classes in ``FAMILIES``).

    Returns:
        int, the FLOPs of one image.
    """
    family = type(model).__name__
    if family not in FAMILIES:
        raise ValueError(
            f"No FLOP formula for {family}; known: {sorted(FAMILIES)}. "
            f"Received: model={model.name!r}"
        )
    config = model.get_config()
    config.setdefault("include_top", True)
    return int(FAMILIES[family](config))


def has_formula(model):
    """Whether :func:`forward_flops` knows ``model``'s family."""
    return type(model).__name__ in FAMILIES


def counted_forward_flops(model):
    """FLOPs of one image through ``model`` as PyTorch's ``FlopCounterMode``
    counts them (the formulas' convention), for the families without a
    formula. Needs the torch backend.

    Attention runs through PyTorch's math kernel while counting: the
    counter has no formula for the fused CPU kernel, and the math kernel
    computes the same two products as matmuls.
    """
    import keras

    if keras.backend.backend() != "torch":
        raise ValueError(
            "Counting FLOPs runs the model under PyTorch's FlopCounterMode: "
            "it needs the torch backend. Received: backend="
            f"{keras.backend.backend()!r}"
        )
    import torch
    from torch.nn.attention import SDPBackend
    from torch.nn.attention import sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    images = torch.zeros((1, *model.input_shape[1:]))
    with (
        FlopCounterMode(display=False) as counter,
        torch.no_grad(),
        sdpa_kernel(SDPBackend.MATH),
    ):
        model(images, training=False)
    return int(counter.get_total_flops())


def model_forward_flops(model):
    """``(FLOPs of one image, source)``: the formula where the family has
    one (``"formula"``), else PyTorch's count on the torch backend
    (``"counted"``), else ``(None, None)`` (the torch row of the same model
    counts them).
    """
    import keras

    if has_formula(model):
        return forward_flops(model), "formula"
    if keras.backend.backend() == "torch":
        return counted_forward_flops(model), "counted"
    return None, None


def gflops(flops):
    """FLOPs as GFLOPs, rounded to three significant digits."""
    if not flops:
        return 0.0
    digits = 2 - int(math.floor(math.log10(abs(flops / 1e9))))
    return round(flops / 1e9, max(digits, 0))
