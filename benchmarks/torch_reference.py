"""kvision's small models re-written in plain PyTorch, as a speed reference.

A throughput benchmark of kvision on the PyTorch backend needs a point
outside kvision to compare against: the same networks written the way a
PyTorch user would write them, with ``torch.nn`` and ``torch.nn.functional``
only (no timm or torchvision). Each reference mirrors the kvision variant of
the same name layer for layer: it reads the variant's configuration from
:func:`kvision.models.model_config` (and the class defaults), so widths,
depths, activations (exact or tanh GELU), norm epsilons, class token,
position embedding, qkv bias, LayerScale and head are kvision's, and the
parameter shapes and counts are the same (``tests/test_torch_reference.py``
checks counts, FLOPs and, with copied weights, the logits).

Differences, all irrelevant to throughput at inference and to the weights:
the modules take channels-first images ``(B, C, H, W)``; dropout and
stochastic depth (drop path) are left out, i.e. identity, whatever the
configuration says; and the initialisation is PyTorch's default except for
the tensors kvision initialises specially (class token, position embedding,
LSA temperature, LayerScale).

Usage (kvision is imported for the configurations; set
``KERAS_BACKEND=torch`` to avoid loading another framework)::

    from benchmarks.torch_reference import build_reference

    model = build_reference("convmixer_256_8")  # or depth=4, num_classes=100
    logits = model(torch.randn(8, 3, 32, 32))  # (8, 10)
"""

import inspect
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

# kvision's activation names; Keras' "gelu" is the exact erf form.
ACTIVATIONS = {
    "gelu": lambda: nn.GELU(),
    "gelu_approximate": lambda: nn.GELU(approximate="tanh"),
    "relu": lambda: nn.ReLU(),
}


def activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(
            f"No PyTorch reference for activation {name!r}; known: "
            f"{sorted(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name]()


class MLP(nn.Sequential):
    """``fc2(act(fc1(x)))`` on the last axis (kvision's ``MLP``)."""

    def __init__(self, dim, hidden_dim, act="gelu"):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = activation(act)
        self.fc2 = nn.Linear(hidden_dim, dim)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map (kvision normalises the
    last axis of NHWC maps, which is the same computation)."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


# Vision Transformer ------------------------------------------------------


class PatchEmbedding(nn.Module):
    """Stride-``p`` convolution, grid flattened row-major to tokens."""

    def __init__(self, in_channels, patch_size, dim):
        super().__init__()
        self.projection = nn.Conv2d(
            in_channels, dim, patch_size, stride=patch_size
        )

    def forward(self, x):
        return self.projection(x).flatten(2).transpose(1, 2)


class ShiftedPatchTokenization(nn.Module):
    """SPT: the image and four diagonally shifted copies, patchified,
    layer-normalised and projected."""

    # (row, column) offsets of the crops, in the order of the official code
    # (and kvision), so that the projection weights line up.
    OFFSETS = ((-1, -1), (-1, 1), (1, -1), (1, 1))

    def __init__(self, in_channels, patch_size, dim, eps):
        super().__init__()
        self.patch_size = patch_size
        self.shift = patch_size // 2
        patch_dim = 5 * in_channels * patch_size**2
        self.norm = nn.LayerNorm(patch_dim, eps=eps)
        self.projection = nn.Linear(patch_dim, dim)

    def forward(self, x):
        batch, _, height, width = x.shape
        s, p = self.shift, self.patch_size
        padded = F.pad(x, (s, s, s, s))
        views = [x] + [
            padded[:, :, (dy + 1) * s :, (dx + 1) * s :][..., :height, :width]
            for dy, dx in self.OFFSETS
        ]
        x = torch.cat(views, dim=1)
        channels = x.shape[1]
        # Each patch flattened as (row, col, channel), like kvision's
        # channels-last patchify, so one projection matrix serves both.
        x = x.reshape(batch, channels, height // p, p, width // p, p)
        x = x.permute(0, 2, 4, 3, 5, 1).flatten(3).flatten(1, 2)
        return self.projection(self.norm(x))


class Attention(nn.Module):
    """Multi-head self-attention; ``lsa=True`` for Locality Self-Attention
    (learnable per-head temperature, each token's self-attention masked)."""

    def __init__(self, dim, num_heads, head_dim, qkv_bias, lsa=False):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, head_dim
        inner_dim = num_heads * head_dim
        self.qkv = nn.Linear(dim, 3 * inner_dim, bias=qkv_bias)
        self.projection = nn.Linear(inner_dim, dim)
        self.temperature = None
        if lsa:
            self.temperature = nn.Parameter(
                torch.full((num_heads,), head_dim**-0.5)
            )

    def forward(self, x):
        batch, tokens, _ = x.shape
        qkv = self.qkv(x).reshape(
            batch, tokens, 3, self.num_heads, self.head_dim
        )
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        if self.temperature is None:
            x = F.scaled_dot_product_attention(query, key, value)
        else:
            logits = query @ key.transpose(-2, -1)
            logits = logits * self.temperature.view(-1, 1, 1)
            diagonal = torch.eye(tokens, dtype=torch.bool, device=x.device)
            # kvision's finite "minus infinity": exp() underflows to 0.
            logits = logits.masked_fill(diagonal, -1e30)
            x = logits.softmax(dim=-1) @ value
        return self.projection(x.transpose(1, 2).flatten(2))


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(LN(x))``, then ``x + MLP(LN(x))``."""

    def __init__(self, dim, num_heads, head_dim, mlp_dim, qkv_bias, lsa, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attention = Attention(dim, num_heads, head_dim, qkv_bias, lsa)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim, mlp_dim)

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """ViT / SL-ViT: tokens, class token, position embedding, blocks,
    final LayerNorm, classifier on the class token."""

    def __init__(self, config):
        super().__init__()
        height, width, channels = config["input_shape"]
        p, dim = config["patch_size"], config["embed_dim"]
        eps = config["norm_epsilon"]
        if config["tokenizer"] == "spt":
            self.tokenizer = ShiftedPatchTokenization(channels, p, dim, eps)
        else:
            self.tokenizer = PatchEmbedding(channels, p, dim)
        tokens = (height // p) * (width // p) + 1
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position_embedding = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.trunc_normal_(self.class_token, std=0.02)
        nn.init.trunc_normal_(self.position_embedding, std=0.02)
        head_dim = config["head_dim"] or dim // config["num_heads"]
        self.blocks = nn.Sequential(
            *(
                TransformerBlock(
                    dim,
                    config["num_heads"],
                    head_dim,
                    config["mlp_dim"],
                    config["qkv_bias"],
                    config["attention"] == "lsa",
                    eps,
                )
                for _ in range(config["depth"])
            )
        )
        self.final_norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, config["num_classes"])

    def forward(self, images):
        x = self.tokenizer(images)
        x = torch.cat([self.class_token.expand(len(x), -1, -1), x], dim=1)
        x = self.blocks(x + self.position_embedding)
        return self.head(self.final_norm(x)[:, 0])


# ConvMixer ---------------------------------------------------------------


class ConvMixerBlock(nn.Module):
    """``x + BN(act(depthwise(x)))``, then ``BN(act(pointwise(x)))``."""

    def __init__(self, dim, kernel_size, act):
        super().__init__()
        self.depthwise = nn.Conv2d(
            dim, dim, kernel_size, padding="same", groups=dim
        )
        self.depthwise_act = activation(act)
        self.depthwise_bn = nn.BatchNorm2d(dim, eps=1e-5, momentum=0.1)
        self.pointwise = nn.Conv2d(dim, dim, 1)
        self.pointwise_act = activation(act)
        self.pointwise_bn = nn.BatchNorm2d(dim, eps=1e-5, momentum=0.1)

    def forward(self, x):
        x = x + self.depthwise_bn(self.depthwise_act(self.depthwise(x)))
        return self.pointwise_bn(self.pointwise_act(self.pointwise(x)))


class ConvMixer(nn.Module):
    def __init__(self, config):
        super().__init__()
        dim, p, act = config["dim"], config["patch_size"], config["activation"]
        channels = config["input_shape"][2]
        # BatchNorm as kvision's (the official code's): PyTorch momentum 0.1
        # is Keras' 0.9, epsilon 1e-5.
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(channels, dim, p, stride=p),
                act=activation(act),
                bn=nn.BatchNorm2d(dim, eps=1e-5, momentum=0.1),
            )
        )
        self.blocks = nn.Sequential(
            *(
                ConvMixerBlock(dim, config["kernel_size"], act)
                for _ in range(config["depth"])
            )
        )
        self.head = nn.Linear(dim, config["num_classes"])

    def forward(self, images):
        x = self.blocks(self.stem(images))
        return self.head(x.mean(dim=(2, 3)))


# MLP-Mixer ---------------------------------------------------------------


class MixerBlock(nn.Module):
    """Token mixing (an MLP across patches), then channel mixing."""

    def __init__(self, tokens, dim, tokens_mlp_dim, channels_mlp_dim, act, eps):
        super().__init__()
        self.token_norm = nn.LayerNorm(dim, eps=eps)
        self.token_mixing = MLP(tokens, tokens_mlp_dim, act)
        self.channel_norm = nn.LayerNorm(dim, eps=eps)
        self.channel_mixing = MLP(dim, channels_mlp_dim, act)

    def forward(self, x):
        y = self.token_mixing(self.token_norm(x).transpose(1, 2))
        x = x + y.transpose(1, 2)
        return x + self.channel_mixing(self.channel_norm(x))


class MLPMixer(nn.Module):
    def __init__(self, config):
        super().__init__()
        height, width, channels = config["input_shape"]
        p, dim = config["patch_size"], config["hidden_dim"]
        eps = config["norm_epsilon"]
        tokens = (height // p) * (width // p)
        self.stem = PatchEmbedding(channels, p, dim)
        self.blocks = nn.Sequential(
            *(
                MixerBlock(
                    tokens,
                    dim,
                    config["tokens_mlp_dim"],
                    config["channels_mlp_dim"],
                    config["activation"],
                    eps,
                )
                for _ in range(config["depth"])
            )
        )
        self.final_norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, config["num_classes"])

    def forward(self, images):
        x = self.final_norm(self.blocks(self.stem(images)))
        return self.head(x.mean(dim=1))


# ConvNeXt ----------------------------------------------------------------


class ConvNeXtBlock(nn.Module):
    """``x + gamma * MLP(LN(depthwise(x)))``, the MLP on channels-last."""

    def __init__(self, dim, kernel_size, layer_scale, eps):
        super().__init__()
        self.depthwise = nn.Conv2d(
            dim, dim, kernel_size, padding="same", groups=dim
        )
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim, 4 * dim)
        self.layer_scale = None
        if layer_scale:
            self.layer_scale = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x):
        # The 1x1 convolutions are Linear layers on NHWC, as in the official
        # ConvNeXt code and kvision; the permutes are part of that design.
        y = self.mlp(self.norm(self.depthwise(x).permute(0, 2, 3, 1)))
        if self.layer_scale is not None:
            y = y * self.layer_scale
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtStage(nn.Module):
    def __init__(self, in_dim, dim, depth, kernel_size, layer_scale, eps):
        super().__init__()
        self.downsampling = nn.Identity()
        if in_dim is not None:
            self.downsampling = nn.Sequential(
                OrderedDict(
                    norm=LayerNorm2d(in_dim, eps=eps),
                    conv=nn.Conv2d(in_dim, dim, 2, stride=2),
                )
            )
        self.blocks = nn.Sequential(
            *(
                ConvNeXtBlock(dim, kernel_size, layer_scale, eps)
                for _ in range(depth)
            )
        )

    def forward(self, x):
        return self.blocks(self.downsampling(x))


class ConvNeXt(nn.Module):
    def __init__(self, config):
        super().__init__()
        dims, eps = config["dims"], config["norm_epsilon"]
        p, channels = config["stem_patch_size"], config["input_shape"][2]
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(channels, dims[0], p, stride=p),
                norm=LayerNorm2d(dims[0], eps=eps),
            )
        )
        self.stages = nn.Sequential(
            *(
                ConvNeXtStage(
                    dims[s - 1] if s else None,
                    dims[s],
                    depth,
                    config["kernel_size"],
                    config["layer_scale_init_value"],
                    eps,
                )
                for s, depth in enumerate(config["depths"])
            )
        )
        self.head_norm = nn.LayerNorm(dims[-1], eps=eps)
        self.head = nn.Linear(dims[-1], config["num_classes"])

    def forward(self, images):
        x = self.stages(self.stem(images))
        return self.head(self.head_norm(x.mean(dim=(2, 3))))


# Building ----------------------------------------------------------------

REFERENCES = {
    "VisionTransformer": VisionTransformer,
    "ConvMixer": ConvMixer,
    "MLPMixer": MLPMixer,
    "ConvNeXt": ConvNeXt,
}


def reference_config(name, **overrides):
    """kvision's full configuration of a variant: class defaults, then the
    registered arguments, then ``overrides``."""
    from kvision import models

    cls = models.model_class(name)
    defaults = {
        key: parameter.default
        for key, parameter in inspect.signature(cls).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    return {**defaults, **models.model_config(name), **overrides}


def build_reference(name, **overrides):
    """The PyTorch reference of the kvision variant ``name``.

    Args:
        name: a kvision model name (the tested ones:
            ``benchmarks.budgets.SMALL_MODELS``).
        **overrides: constructor arguments, as for
            ``kvision.models.create_model``.

    Returns:
        A ``torch.nn.Module`` mapping ``(B, C, H, W)`` float images to
        ``(B, num_classes)`` logits.
    """
    from kvision import models

    config = reference_config(name, **overrides)
    if not config["include_top"] or config["classifier_activation"]:
        raise ValueError(
            "The PyTorch references always end with the logits classifier: "
            "include_top=False and classifier_activation are not supported. "
            f"Received: include_top={config['include_top']!r}, "
            f"classifier_activation={config['classifier_activation']!r}"
        )
    cls_name = models.model_class(name).__name__
    if cls_name not in REFERENCES:
        raise ValueError(f"No PyTorch reference for {cls_name} ({name!r}).")
    return REFERENCES[cls_name](config)
