"""What a model looks at, as NumPy arrays, on any backend (no gradients)."""

import math

import keras
import numpy as np

from kvision.data.images import resize_bilinear
from kvision.layers import MetaFormerBlock
from kvision.layers import MixerBlock


def patch_grid(model, patches):
    """``(gh, gw)`` of ``patches`` square patches over the model's images.

    Patches are square, so the grid has the image's aspect ratio.
    """
    height, width = model.input.shape[1:3]
    side = math.sqrt(height * width / patches)
    grid = (round(height / side), round(width / side))
    if grid[0] * grid[1] != patches:
        raise ValueError(
            f"{model.name}: {patches} patches do not tile a {height}x{width} "
            "image in square patches."
        )
    return grid


def _is_attention(value):
    shape = getattr(value, "shape", ())
    return len(shape) == 4 and shape[-1] == shape[-2]


def attention_maps(model, images, batch_size=64):
    """Every transformer block's attention weights, first block first.

    Works with kvision's transformers and with any Keras model that returns
    attention weights in the same layout: ``(B, heads, N, N)`` arrays whose
    rows are softmax distributions over the N keys, as outputs of the model
    (a dict ``{name: weights}`` or a list, first block first). Outputs of
    other shapes, such as logits, are ignored, so a model built as
    ``keras.Model(inputs, [logits, scores_0, scores_1])`` works as it is.

    Args:
        model: a kvision transformer (its ``attention_model()`` is used), or
            any Keras model with attention weights among its outputs.
        images: ``(B, H, W, C)`` inputs as the model takes them (kvision
            models: floats in [0, 1]).
        batch_size: int, images per prediction batch.

    Returns:
        ``{block_name: (B, heads, N, N)}`` NumPy arrays, in block order
        (output names, or ``"output_i"`` for a list).

    Raises:
        ValueError: the model returns no array of that layout.
    """
    probe = (
        model.attention_model() if hasattr(model, "attention_model") else model
    )
    outputs = probe.predict(images, batch_size=batch_size, verbose=0)
    if isinstance(outputs, dict):
        # Keras returns dict outputs in sorted key order ("block_10" before
        # "block_2"): put the blocks back in the network's layer order.
        rank = {layer.name: i for i, layer in enumerate(model.layers)}
        order = sorted(outputs, key=lambda name: rank.get(name, len(rank)))
        items = [(name, outputs[name]) for name in order]
    elif isinstance(outputs, (list, tuple)):
        items = [(f"output_{i}", value) for i, value in enumerate(outputs)]
    else:
        items = [("output_0", outputs)]
    maps = {name: np.asarray(v) for name, v in items if _is_attention(v)}
    if not maps:
        raise ValueError(
            f"{model.name} returns no attention weights of shape (batch, "
            "heads, tokens, tokens) among its outputs. Received: output "
            f"shapes {[getattr(v, 'shape', None) for _, v in items]}"
        )
    return maps


def cls_attention(model, images, block=-1):
    """Class-token attention to every patch, per head, on the patch grid.

    Args:
        model: a transformer with a class token (token 0): a kvision one,
            or any Keras model returning attention weights as
            :func:`attention_maps` describes.
        images: ``(B, H, W, C)`` inputs as the model takes them.
        block: index of the block (default: the last).

    Returns:
        ``(B, heads, gh, gw)``: row 0 of the block's attention without the
        class token's own column.
    """
    maps = attention_maps(model, images)
    scores = list(maps.values())[block][:, :, 0, 1:]
    grid = patch_grid(model, scores.shape[-1])
    return scores.reshape(*scores.shape[:2], *grid)


def _pooled_head(model):
    """The feature layer, classifier weights and per-channel scale of a model
    whose head is global average pooling → [LayerNorm] → Dense."""
    names = [layer.name for layer in model.layers]
    if "head" not in names or "avg_pool" not in names:
        raise ValueError(
            f"{model.name} has no global-pooling classifier head; class "
            "activation maps need one (ConvMixer, ConvNeXt, MLP-Mixer)."
        )
    kernel = keras.ops.convert_to_numpy(model.get_layer("head").kernel)
    scale = np.ones(kernel.shape[0], "float32")
    normalised = "head_norm" in names
    if normalised:
        scale = keras.ops.convert_to_numpy(model.get_layer("head_norm").gamma)
    features = model.get_layer("avg_pool").input
    return features, kernel * scale[:, None], normalised


def class_activation_map(model, images, class_index=None):
    """Class activation maps (Zhou et al., 2016) for pooled classifier heads.

    ``CAM_k(x, y) = sum_c w_ck * f_c(x, y)``: its mean over positions plus
    the head's bias is the class-``k`` logit. For ConvNeXt's LayerNorm head
    the weights are scaled by the norm's gamma and the features centred per
    image, so the mean is the logit up to the per-image LayerNorm scale and
    a class constant. Computed from features and head weights: no
    gradients, every backend.

    Args:
        model: a kvision ConvMixer, ConvNeXt or MLP-Mixer with its head.
        images: ``(B, H, W, C)``.
        class_index: int, or ``None`` for each image's predicted class.

    Returns:
        ``(B, h, w)`` maps on the feature grid (tokens are put back on their
        square grid for MLP-Mixer).
    """
    features_tensor, weights, normalised = _pooled_head(model)
    probe = keras.Model(model.input, [features_tensor, model.output])
    features, logits = probe.predict(images, verbose=0)
    if class_index is None:
        classes = np.argmax(logits, axis=-1)
    else:
        classes = np.full(len(features), class_index)
    if features.ndim == 3:  # tokens (B, N, C) -> (B, g, g, C)
        side = math.isqrt(features.shape[1])
        features = features.reshape(len(features), side, side, -1)
    if normalised:
        # LayerNorm(pooled) = gamma * (pooled - mu) / sigma + beta: centring
        # by each image's mu makes the map's mean sigma * (logit - const).
        mu = features.mean(axis=(1, 2, 3), keepdims=True)
        features = features - mu
    return np.einsum("bhwc,cb->bhw", features, weights[:, classes])


def token_mixing_weights(model, block=0):
    """An MLP-Mixer block's token-mixing filters on the patch grid.

    The first dense layer of a :class:`~kvision.layers.MixerBlock`'s
    token-mixing MLP has a kernel ``(N, hidden)``: each hidden unit weighs
    the N patches, so its column, put back on the patch grid, is a spatial
    filter. MLP-Mixer's Figure 5 (Tolstikhin et al., arXiv:2105.01601)
    shows them for the first blocks: some span the whole image, others a
    small region, and many come in pairs of opposite sign. A
    :class:`~kvision.layers.MetaFormerBlock` with
    ``token_mixer="spatial_mlp"`` holds the same MLP, over its stage's
    grid.

    Args:
        model: a kvision MLP-Mixer, or a MetaFormer with spatial-MLP
            blocks.
        block: int, which token-mixing block, in network order (negative
            counts from the end).

    Returns:
        ``(hidden, gh, gw)`` NumPy array: filter ``j`` is the weight each
        patch gets in hidden unit ``j``.

    Example:

    >>> from kvision.models import create_model
    >>> mixer = create_model("mixer_32px", depth=1, hidden_dim=8)
    >>> token_mixing_weights(mixer).shape
    (64, 8, 8)
    """
    blocks = [
        layer
        for layer in model.layers
        if isinstance(layer, MixerBlock)
        or (
            isinstance(layer, MetaFormerBlock)
            and layer.token_mixer == "spatial_mlp"
        )
    ]
    if not blocks:
        raise ValueError(
            f"{model.name} has no MLP-Mixer blocks (nor MetaFormer blocks "
            "with token_mixer='spatial_mlp'); token-mixing weights exist "
            "only in those."
        )
    if isinstance(block, bool) or not isinstance(block, int):
        raise ValueError(f"`block` must be an int. Received: block={block!r}")
    if not -len(blocks) <= block < len(blocks):
        raise ValueError(
            f"{model.name} has {len(blocks)} token-mixing blocks. "
            f"Received: block={block}"
        )
    chosen = blocks[block]
    if isinstance(chosen, MixerBlock):
        dense = chosen.token_mlp.fc1
        grid = None
    else:  # a MetaFormer stage's own grid, not the input's patch grid
        dense = chosen.mixer.fc1
        grid = tuple(chosen.input.shape[1:3])
    kernel = keras.ops.convert_to_numpy(dense.kernel)  # (N, hidden)
    grid = grid or patch_grid(model, kernel.shape[0])
    return kernel.T.reshape(kernel.shape[1], *grid)


def localization_score(maps, masks):
    """How much of each map's mass lies on the object.

    Each map is stretched bilinearly over its mask (``(B, h, w)`` to
    ``(B, H, W)``, pixel centres aligned), and ``score`` is the mean over
    images of ``sum(map * mask) / sum(map)``. A map spread evenly scores
    the mask's area fraction, so ``uniform`` (the mean area fraction) is the
    baseline and ``ratio = score / uniform`` says how many times better than
    chance the map lands on the object. It is the "energy-based pointing
    game" of Score-CAM (Wang et al., arXiv:1910.01279) with object masks
    instead of boxes, averaged over images.

    Maps must be non-negative mass. Attention and rollout are, and are used
    as they are (subtracting their floor would inflate weak contrast into
    a high score). Class activation maps are signed (their level is a
    logit): a map with a negative value is shifted by its minimum so that
    its lowest point is 0. A map with no mass (constant after the shift)
    scores its mask's area fraction, like a uniform map.

    Args:
        maps: ``(B, h, w)`` maps (attention grids, rollout, CAMs).
        masks: ``(B, H, W)`` boolean or 0/1 object masks, square
            (``H == W``), e.g. from
            :func:`kvision.data.make_cluttered_digits`.

    Returns:
        ``{"score": float, "uniform": float, "ratio": float}``.

    Example:

    >>> import numpy as np
    >>> masks = np.zeros((1, 4, 4), bool)
    >>> masks[0, :2, :2] = True  # a quarter of the image
    >>> on_object = masks * 1.0  # all mass on the object
    >>> result = localization_score(on_object, masks)
    >>> {k: round(v, 3) for k, v in result.items()}
    {'score': 1.0, 'uniform': 0.25, 'ratio': 4.0}
    """
    maps = np.asarray(maps, dtype="float64")
    masks = np.asarray(masks)
    if maps.ndim != 3 or masks.ndim != 3 or len(maps) != len(masks):
        raise ValueError(
            "`maps` must be (B, h, w) and `masks` (B, H, W) with the same B. "
            f"Received: maps.shape={maps.shape}, masks.shape={masks.shape}"
        )
    if masks.shape[1] != masks.shape[2]:
        raise ValueError(
            "`masks` must be square (H == W), as the bilinear resize makes "
            f"square maps. Received: masks.shape={masks.shape}"
        )
    masks = masks.astype("float64")
    if np.any((masks != 0) & (masks != 1)):
        raise ValueError("`masks` must be boolean or hold only 0 and 1.")
    lowest = maps.min(axis=(1, 2), keepdims=True)
    maps = maps - np.minimum(lowest, 0.0)
    maps = resize_bilinear(maps, masks.shape[1]).astype("float64")
    area = masks.mean(axis=(1, 2))
    mass = maps.sum(axis=(1, 2))
    inside = (maps * masks).sum(axis=(1, 2))
    shares = np.where(mass > 0, inside / np.where(mass > 0, mass, 1.0), area)
    score, uniform = float(shares.mean()), float(area.mean())
    ratio = score / uniform if uniform > 0 else float("nan")
    return {"score": score, "uniform": uniform, "ratio": ratio}
