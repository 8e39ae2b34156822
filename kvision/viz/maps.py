"""What a model looks at, as NumPy arrays, on any backend (no gradients)."""

import math

import keras
import numpy as np


def attention_maps(model, images, batch_size=64):
    """Every transformer block's attention weights.

    Args:
        model: a kvision transformer (it has ``attention_model()``).
        images: ``(B, H, W, C)`` inputs as the model takes them.

    Returns:
        ``{block_name: (B, heads, N, N)}`` NumPy arrays.
    """
    probe = model.attention_model()
    outputs = probe.predict(images, batch_size=batch_size, verbose=0)
    return {name: np.asarray(scores) for name, scores in outputs.items()}


def cls_attention(model, images, block=-1):
    """Class-token attention to every patch, per head, on the patch grid.

    Args:
        model: a kvision transformer with a class token (token 0).
        images: ``(B, H, W, C)``.
        block: index of the block (default: the last).

    Returns:
        ``(B, heads, gh, gw)``: row 0 of the block's attention without the
        class token's own column.
    """
    maps = attention_maps(model, images)
    scores = list(maps.values())[block][:, :, 0, 1:]
    side = math.isqrt(scores.shape[-1])
    return scores.reshape(*scores.shape[:2], side, -1)


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
