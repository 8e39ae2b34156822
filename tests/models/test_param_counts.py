"""Paper-sized variants have exactly the reference parameter counts.

Counts are trainable parameters, which is what PyTorch's
``sum(p.numel() for p in model.parameters())`` reports for the reference
implementations (BatchNorm's running statistics are buffers there, while
Keras' ``count_params()`` includes them). Models are only built here, and
``test_parameter_count`` builds them symbolically (``tests/symbolic.py``):
every weight gets its exact shape but no value, so counting a 350M-parameter
variant costs well under a second instead of 5-20 s of initialisation.
"""

import pytest

from kvision.models import model_config
from tests.symbolic import symbolic_model
from tests.symbolic import trainable_parameters

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
    # sail-sg/poolformer, models/poolformer.py
    "poolformer_s12": 11_915_176,
    "poolformer_s24": 21_388_968,
    "poolformer_s36": 30_862_760,
    "poolformer_m36": 56_172_520,
    "poolformer_m48": 73_473_448,
    # microsoft/Swin-Transformer (= timm's swin_*_patch4_window7_224)
    "swin_tiny": 28_288_354,
    "swin_small": 49_606_258,
    "swin_base": 87_768_224,
    # naver-ai/pit, pit.py
    "pit_ti": 4_847_272,
    "pit_xs": 10_618_888,
    "pit_s": 23_461_912,
    "pit_b": 73_764_840,
    # dingmyu/davit, timm/models/davit.py
    "davit_tiny": 28_360_168,
    "davit_small": 49_745_896,
    "davit_base": 87_954_408,
    # facebookresearch/deit, cait_models.py (= timm's cait_*_224)
    "cait_xxs24": 11_956_264,
    "cait_xxs36": 17_299_720,
    "cait_s24": 46_916_200,
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
    "poolformer_32px": 2_861_290,
    "metaformer_32px": 4_042_602,  # with its default attention mixer
    # aanna0701/SPT_LSA_ViT at 32 px, CIFAR-10 head (CIFAR-100 below)
    "swin_32px": 7_073_188,
    "sl_swin_32px": 8_562_166,
    "pit_32px": 6_972_586,
    "sl_pit_32px": 8_642_014,
    "davit_32px": 578_570,
    "cait_32px": 9_020_618,
    "sl_cait_32px": 9_058_066,
    "t2t_32px": 6_486_080,
    "sl_t2t_32px": 6_507_081,
}
# The small-dataset paper's code with its CIFAR-100 head.
CIFAR100 = {
    "swin_32px": 7_107_838,
    "sl_swin_32px": 8_596_816,
    "pit_32px": 7_007_236,
    "sl_pit_32px": 8_676_664,
}


def metaformer_count(c):
    """Stem, blocks (two norms, the mixer, the 4x MLP, two LayerScales),
    3x3 downsampling convolutions, the final norm and the classifier."""
    dims, depths = c["dims"], c["depths"]
    mixer = c.get("token_mixer", "pooling")
    k, stride = c["stem_patch_size"], c["stem_stride"]
    side = (c["input_shape"][0] + 2 * c["stem_padding"] - k) // stride + 1
    total = 3 * k * k * dims[0] + dims[0]
    for i, (dim, depth) in enumerate(zip(dims, depths, strict=True)):
        if i:
            total += 9 * dims[i - 1] * dim + dim
            side = (side - 1) // 2 + 1
        tokens = side * side
        mixing = {
            "pooling": 0,
            "identity": 0,
            "attention": 4 * dim * dim + dim,  # qkv without bias, proj
            "spatial_mlp": 2 * tokens * tokens + 2 * tokens,
            "depthwise_conv": 9 * dim + dim,
        }[mixer]
        total += depth * (4 * dim + 8 * dim * dim + 5 * dim + 2 * dim + mixing)
    return total + 2 * dims[-1] + dims[-1] * c["num_classes"] + c["num_classes"]


def spt_embedding_count(patch_size, width, channels=3):
    """SPT: LayerNorm over 5 * C * p * p values, then a dense layer."""
    patch = 5 * channels * patch_size**2
    return 2 * patch + patch * width + width


def swin_count(c):
    """Embedding, blocks (two norms, qkv, projection, relative position
    table, MLP, LSA temperatures), merges, final norm and classifier."""
    p, d = c["patch_size"], c["embed_dim"]
    side = c["input_shape"][0] // p
    lsa = c.get("attention") == "lsa"
    if c.get("tokenizer") == "spt":
        total = spt_embedding_count(p, d)
    else:
        total = 3 * p * p * d + d + 2 * d  # convolution + LayerNorm
    if c.get("absolute_position_embedding"):
        total += side * side * d
    stages = len(c["depths"])
    for s, (depth, heads) in enumerate(
        zip(c["depths"], c["num_heads"], strict=True)
    ):
        d = c["embed_dim"] * 2**s
        window = min(c.get("window_size", 7), side)
        hidden = int(d * c.get("mlp_ratio", 4.0))
        attention = 4 * d * d + 4 * d + (2 * window - 1) ** 2 * heads
        mlp = 2 * d * hidden + hidden + d
        total += depth * (4 * d + attention + mlp + (heads if lsa else 0))
        if s < stages - 1:
            if c.get("merging") == "spt":  # SPT pooling on C channels
                total += spt_embedding_count(2, 2 * d, channels=d)
            else:  # LayerNorm(4C) + bias-free 4C -> 2C
                total += 8 * d + 8 * d * d
            side //= 2
    classes = c["num_classes"]
    return total + 2 * d + d * classes + classes


def pit_count(c):
    """Embedding, class token and position embedding, blocks, poolings
    (depthwise + optional pointwise + class dense, or SPT), final norm and
    classifier."""
    p = c["patch_size"]
    stride = c.get("stride") or p
    head_dim = c["head_dim"]
    widths = [head_dim * heads for heads in c["num_heads"]]
    side = (c["input_shape"][0] - p) // stride + 1
    lsa = c.get("attention") == "lsa"
    d = widths[0]
    if c.get("tokenizer") == "spt":
        total = spt_embedding_count(p, d)
    else:
        total = 3 * p * p * d + d
    positions = side * side + int(c.get("class_position_embedding", False))
    total += d + positions * d
    stages = len(widths)
    for s, (depth, heads) in enumerate(
        zip(c["depths"], c["num_heads"], strict=True)
    ):
        d, inner = widths[s], head_dim * heads
        hidden = int(d * c.get("mlp_ratio", 4.0))
        qkv = 3 * d * inner + (3 * inner if c.get("qkv_bias", True) else 0)
        attention = qkv + inner * d + d + (heads if lsa else 0)
        mlp = 2 * d * hidden + hidden + d
        total += depth * (4 * d + attention + mlp)
        if s < stages - 1:
            out = widths[s + 1]
            if c.get("token_pooling") == "spt":
                total += spt_embedding_count(2, out, channels=d)
            else:
                total += 9 * out + out  # depthwise 3x3, multiplier out / d
                if c.get("pointwise_pooling"):
                    total += out * out + out
            total += d * out + out  # the class token's dense layer
    classes = c["num_classes"]
    return total + 2 * d + d * classes + classes


def davit_count(c):
    """Stem (7x7 conv + LayerNorm), downsamplings (LayerNorm + 2x2 conv),
    blocks (two 3x3 depthwise position encodings, two norms, qkv with bias,
    projection, MLP) in spatial/channel pairs, head norm and classifier."""
    dims, depths = c["dims"], c["depths"]
    hidden = c.get("mlp_ratio", 4.0)
    total = 3 * 49 * dims[0] + dims[0] + 2 * dims[0]
    for i, (dim, depth) in enumerate(zip(dims, depths, strict=True)):
        if i:
            total += 2 * dims[i - 1] + 4 * dims[i - 1] * dim + dim
        mlp = int(dim * hidden)
        block = 2 * (9 * dim + dim) + 4 * dim + 4 * dim * dim + 4 * dim
        block += 2 * dim * mlp + mlp + dim
        total += 2 * depth * block
    classes = c["num_classes"]
    return total + 2 * dims[-1] + dims[-1] * classes + classes


def talking_heads_count(mode, heads):
    """Two (heads x heads) mixing maps, with biases for ``"linear"``."""
    return {None: 0, "matrix": 2 * heads * heads}.get(
        mode, 2 * (heads * heads + heads)
    )


def cait_count(c):
    """Embedding, position embedding, self-attention blocks (two norms,
    qkv, talking heads, projection, MLP, two LayerScales, LSA
    temperatures), class token, class-attention blocks (the same with
    query + key/value projections), final norm and classifier."""
    d, p = c["embed_dim"], c["patch_size"]
    heads = c["num_heads"]
    inner = heads * (c.get("head_dim") or d // heads)
    tokens = (c["input_shape"][0] // p) * (c["input_shape"][1] // p)
    if c.get("tokenizer") == "spt":
        total = spt_embedding_count(p, d)
    else:
        total = 3 * p * p * d + d
    total += tokens * d + d  # position embedding, class token
    qkv = 3 * d * inner + (3 * inner if c.get("qkv_bias", True) else 0)
    lsa = heads if c.get("attention") == "lsa" else 0

    def block(mlp_dim, mixing):
        mlp = 2 * d * mlp_dim + mlp_dim + d
        attention = qkv + inner * d + d + lsa
        return (
            4 * d + attention + talking_heads_count(mixing, heads) + mlp + 2 * d
        )

    total += c["depth"] * block(c["mlp_dim"], c.get("talking_heads", "linear"))
    class_mlp = c.get("class_mlp_dim") or c["mlp_dim"]
    class_depth = c.get("class_depth", 2)
    total += class_depth * block(class_mlp, c.get("class_talking_heads"))
    classes = c["num_classes"]
    return total + 2 * d + d * classes + classes


def t2t_count(c):
    """T2T module (token transformers: two norms, bias-free qkv, projection,
    1x MLP, LSA temperature; optional norm; projection), class token,
    blocks, final norm and classifier; the sinusoidal position table is
    frozen."""
    d, td = c["embed_dim"], c["token_dim"]
    lsa = c.get("attention") == "lsa"
    in_dim = 9 * 3 * (5 if c.get("shift_size") else 1)
    total = 0
    for _ in range(c["num_iterations"]):
        total += 2 * in_dim + 3 * in_dim * td + td * td + td  # norm, qkv, proj
        total += 2 * td + 2 * td * td + 2 * td + int(lsa)  # norm, MLP, tau
        in_dim = 9 * td
    if c.get("projection_norm"):
        total += 2 * in_dim
    total += in_dim * d + d + d  # projection, class token
    heads = c["num_heads"]
    inner = heads * (c.get("head_dim") or d // heads)
    qkv = 3 * d * inner + (3 * inner if c.get("qkv_bias") else 0)
    mlp = 2 * d * c["mlp_dim"] + c["mlp_dim"] + d
    block = 4 * d + qkv + inner * d + d + (heads if lsa else 0) + mlp
    total += c["depth"] * block
    classes = c["num_classes"]
    return total + 2 * d + d * classes + classes


def analytic_count(name):
    """The count from the architecture's formula, independent of Keras."""
    c = model_config(name)
    classes = c["num_classes"]
    if name.startswith(("poolformer", "metaformer")):
        return metaformer_count(c)
    if name.startswith(("swin", "sl_swin")):
        return swin_count(c)
    if name.startswith(("pit", "sl_pit")):
        return pit_count(c)
    if name.startswith("davit"):
        return davit_count(c)
    if name.startswith(("cait", "sl_cait")):
        return cait_count(c)
    if name.startswith(("t2t", "sl_t2t")):
        return t2t_count(c)
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
    model = symbolic_model(name)
    assert trainable_parameters(model) == expected


def test_every_registered_model_has_a_count():
    from kvision.models import list_models

    assert set(list_models()) == set(REFERENCE) | set(SMALL)


@pytest.mark.parametrize("name", sorted(CIFAR100))
def test_small_data_count_with_cifar100_head(name):
    # Built at 10 classes by test_parameter_count; the formula covers the
    # paper code's 100-class head, which only widens the classifier.
    config = {**model_config(name), "num_classes": 100}
    formula = swin_count if "swin" in name else pit_count
    assert formula(config) == CIFAR100[name]
    assert CIFAR100[name] - SMALL[name] == 90 * (384 + 1)


# The small-dataset paper's CaiT and T2T with its CIFAR-100 head.
CIFAR100_CAIT_T2T = {
    "cait_32px": 9_037_988,
    "sl_cait_32px": 9_075_436,
    "t2t_32px": 6_509_210,
    "sl_t2t_32px": 6_530_211,
}


@pytest.mark.parametrize("name", sorted(CIFAR100_CAIT_T2T))
def test_cait_and_t2t_counts_with_cifar100_head(name):
    expected = CIFAR100_CAIT_T2T[name]
    config = {**model_config(name), "num_classes": 100}
    formula = cait_count if "cait" in name else t2t_count
    assert formula(config) == expected
    width = config["embed_dim"]
    assert expected - SMALL[name] == 90 * (width + 1)


@pytest.mark.parametrize("name", ["sl_cait_32px", "sl_t2t_32px"])
def test_cait_and_t2t_built_with_cifar100_head(name):
    # The plain variants differ from these in layers test_parameter_count
    # builds; the head is the same.
    model = symbolic_model(name, num_classes=100)
    assert trainable_parameters(model) == CIFAR100_CAIT_T2T[name]
