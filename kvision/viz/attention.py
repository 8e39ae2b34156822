"""Attention statistics: rollout, distance, entropy and divergence.

Two layers of functions: pure NumPy ones on attention arrays
``(B, heads, N, N)`` (``rollout``, ``distance_of``, ``entropy_of``,
``divergence_of``), which hand-made matrices can test, and thin model-level
ones that read a model's attention outputs (a kvision transformer's
``model.attention_model()``, or any Keras model that returns weights in
that layout, see :func:`kvision.viz.attention_maps`) and call them.
Every result is a NumPy array and no gradients are needed, so all of it
runs on every backend.
"""

import numpy as np

from kvision import _checks
from kvision.layers import ClassToken
from kvision.viz.maps import attention_maps
from kvision.viz.maps import patch_grid

HEAD_FUSIONS = ("mean", "max", "min")


def _check_rollout_arguments(head_fusion, discard_ratio):
    _checks.one_of("head_fusion", head_fusion, set(HEAD_FUSIONS))
    _checks.rate("discard_ratio", discard_ratio)


def _normalised_rows(attention):
    """Rows as probability distributions, in float64.

    Softmax rows already sum to one; float16 or bfloat16 outputs only nearly
    do, and the statistics below assume exact distributions.
    """
    attention = np.asarray(attention, dtype="float64")
    return attention / attention.sum(axis=-1, keepdims=True)


def _check_attention(attention, name="attention"):
    attention = np.asarray(attention)
    if attention.ndim != 4 or attention.shape[-1] != attention.shape[-2]:
        raise ValueError(
            f"`{name}` must be attention weights of shape (batch, heads, "
            f"tokens, tokens). Received: {name}.shape={attention.shape}"
        )
    return attention


def _discard_lowest(weights, ratio, keep_first_column):
    """Zeroes the lowest ``ratio`` fraction of each row of ``(B, N, N)``.

    The first column (the class token) is never discarded when
    ``keep_first_column``: it is where the classifier reads from.
    """
    start = 1 if keep_first_column else 0
    candidates = weights[..., start:]
    count = int(ratio * candidates.shape[-1])
    if count == 0:
        return weights
    lowest = np.argsort(candidates, axis=-1, kind="stable")[..., :count]
    candidates = candidates.copy()
    np.put_along_axis(candidates, lowest, 0.0, axis=-1)
    return np.concatenate([weights[..., :start], candidates], axis=-1)


def rollout(
    attentions, head_fusion="mean", discard_ratio=0.0, has_class_token=True
):
    """Attention rollout (Abnar and Zuidema, 2020) on attention arrays.

    Per layer: fuse the heads (mean, max or min), optionally zero the lowest
    ``discard_ratio`` fraction of each row (never the class token's column),
    add the identity for the residual connection and renormalise the rows;
    then multiply the layers, the first layer rightmost::

        R = A_L @ ... @ A_2 @ A_1,   A_l = rows(fuse(W_l) + I)

    ``R[q, k]`` is how much of output token ``q`` comes from input token
    ``k`` if attention were the only mixing. Reference: Abnar and Zuidema,
    *Quantifying Attention Flow in Transformers* (arXiv:2005.00928).

    Args:
        attentions: list of ``(B, heads, N, N)`` arrays, first block first.
        head_fusion: ``"mean"``, ``"max"`` or ``"min"`` over heads.
        discard_ratio: float in [0, 1), the fraction of each row's weights
            (class token column excluded) set to zero before the identity
            is added; removes low-weight noise that rollout accumulates.
        has_class_token: bool, whether token 0 is a class token (its
            column is then never discarded).

    Returns:
        ``(B, N, N)`` float64: the rolled-out attention, rows summing to 1.

    Example:

    >>> import numpy as np
    >>> uniform = np.full((1, 2, 4, 4), 0.25)
    >>> rollout([uniform, uniform])[0, 0].round(4).tolist()
    [0.4375, 0.1875, 0.1875, 0.1875]
    """
    _check_rollout_arguments(head_fusion, discard_ratio)
    if len(attentions) == 0:
        raise ValueError("`attentions` must hold at least one block's weights.")
    result = None
    for index, attention in enumerate(attentions):
        attention = _check_attention(attention, f"attentions[{index}]")
        weights = getattr(np, head_fusion)(
            np.asarray(attention, "float64"), axis=1
        )
        if discard_ratio:
            weights = _discard_lowest(weights, discard_ratio, has_class_token)
        weights = weights + np.eye(weights.shape[-1])
        weights = weights / weights.sum(axis=-1, keepdims=True)
        if result is not None and result.shape != weights.shape:
            raise ValueError(
                "Rollout multiplies the blocks' attention, so every block "
                "needs the same tokens. Received: shapes "
                f"{result.shape} and {weights.shape}"
            )
        result = weights if result is None else weights @ result
    return result


def _token_layout(model, num_tokens):
    """``(class_tokens, (gh, gw))`` of a model's attention over N tokens.

    The class token is found by type (a :class:`~kvision.layers.ClassToken`
    layer), the grid from the remaining tokens and the image's aspect. A
    model without kvision's layer has a class token when N - 1 tokens, but
    not N, tile the image in square patches (65 tokens on a square image).
    """
    extra = int(any(isinstance(layer, ClassToken) for layer in model.layers))
    if not extra:
        try:
            return 0, patch_grid(model, num_tokens)
        except ValueError:
            extra = 1
    return extra, patch_grid(model, num_tokens - extra)


def _blocks(model, images):
    maps = attention_maps(model, images)
    if not maps:
        raise ValueError(f"{model.name} returned no attention maps.")
    return list(maps.values())


def attention_rollout(model, images, head_fusion="mean", discard_ratio=0.0):
    """What the class token gathers from each patch through all blocks.

    :func:`rollout` over every transformer block of ``model``, read at the
    class token's row and the patches' columns. A model without a class
    token (all tokens are patches) gets the mean of the rolled-out matrix
    over its query tokens instead: how much each patch feeds the average
    output token, the quantity a mean-pooling head reads.

    Reference: Abnar and Zuidema, *Quantifying Attention Flow in
    Transformers* (arXiv:2005.00928), as used in the ViT paper
    (arXiv:2010.11929, Figure 6).

    Args:
        model: a kvision transformer, or any Keras model returning
            attention weights (see :func:`~kvision.viz.attention_maps`);
            every block must see the same tokens.
        images: ``(B, H, W, C)`` inputs as the model takes them.
        head_fusion: ``"mean"``, ``"max"`` or ``"min"`` over heads.
        discard_ratio: float in [0, 1), see :func:`rollout`.

    Returns:
        ``(B, gh, gw)`` float64 maps on the patch grid (they sum to at most
        1: the rest stays on the class token).
    """
    _check_rollout_arguments(head_fusion, discard_ratio)
    blocks = _blocks(model, images)
    extra, grid = _token_layout(model, blocks[0].shape[-1])
    rolled = rollout(
        blocks,
        head_fusion=head_fusion,
        discard_ratio=discard_ratio,
        has_class_token=bool(extra),
    )
    if extra:
        maps = rolled[:, 0, extra:]
    else:
        maps = rolled.mean(axis=1)
    return maps.reshape(len(maps), *grid)


def distance_of(attention, grid, patch_pixels=(1.0, 1.0), class_tokens=0):
    """Mean attention distance of each head of one block.

    The distance between a query patch's centre and the key patches'
    centres, weighted by the query's attention, averaged over queries and
    images. Class tokens are left out on both sides and each query's
    attention over the patches is renormalised to sum to 1. The measure of
    the ViT paper (Dosovitskiy et al., arXiv:2010.11929, Figure 7), the
    analogue of a CNN's receptive field size.

    Args:
        attention: ``(B, heads, N, N)`` weights.
        grid: ``(gh, gw)``, the patch grid (``gh * gw + class_tokens = N``,
            row-major order).
        patch_pixels: ``(height, width)`` of a patch in pixels (the unit of
            the result).
        class_tokens: int, how many leading tokens are not patches.

    Returns:
        ``(heads,)`` float64 distances.

    Example:

    >>> import numpy as np
    >>> to_the_right = np.zeros((1, 1, 4, 4))  # 2x2 grid, attend rightwards
    >>> to_the_right[0, 0, [0, 1, 2, 3], [1, 1, 3, 3]] = 1.0
    >>> distance_of(to_the_right, (2, 2), patch_pixels=(8, 8)).tolist()
    [4.0]
    """
    attention = _check_attention(attention)
    gh, gw = grid
    if gh * gw + class_tokens != attention.shape[-1]:
        raise ValueError(
            f"A {gh}x{gw} grid and {class_tokens} class tokens do not make "
            f"{attention.shape[-1]} tokens. Received: grid={tuple(grid)}, "
            f"class_tokens={class_tokens}"
        )
    patches = _normalised_rows(attention[:, :, class_tokens:, class_tokens:])
    rows, cols = np.divmod(np.arange(gh * gw), gw)
    centres = np.stack(
        [rows * patch_pixels[0], cols * patch_pixels[1]], axis=-1
    ).astype("float64")
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    return np.einsum("bhqk,qk->h", patches, distances) / (
        patches.shape[0] * patches.shape[2]
    )


def entropy_of(attention):
    """Mean entropy (nats) of the attention rows of each head.

    ``H(p) = -sum_k p_k log p_k`` per query row (``0 log 0 = 0``), averaged
    over queries and images. Uniform rows over N keys give ``log N``; a row
    on one key gives 0.

    Args:
        attention: ``(B, heads, N, N)`` weights.

    Returns:
        ``(heads,)`` float64 entropies.

    Example:

    >>> import numpy as np
    >>> entropy_of(np.full((2, 3, 4, 4), 0.25)).round(4).tolist()
    [1.3863, 1.3863, 1.3863]
    """
    p = _normalised_rows(_check_attention(attention))
    logs = np.log(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(axis=-1).mean(axis=(0, 2))


def divergence_of(attention):
    """Mean KL divergence of the attention rows from the uniform row.

    ``KL(p || u) = sum_k p_k log(N p_k) = log N - H(p)`` with ``u`` uniform
    over all N keys, averaged over queries and images: 0 for uniform
    attention, ``log N`` for attention on a single key. It measures how far
    attention is from averaging every token, i.e. how sharp it is: the
    small-dataset ViT paper (Lee et al., arXiv:2112.13492, Section 3) says
    LSA "sharpens the distribution of attention scores" against ViT's
    near-uniform attention, and this is that notion as a number (kvision's
    definition; the paper's own figure may aggregate differently). Keys are
    all N tokens, so LSA's masked diagonal counts as a zero-weight key (LSA's
    most uniform row, over the N - 1 others, scores ``log(N / (N - 1))``).

    Args:
        attention: ``(B, heads, N, N)`` weights.

    Returns:
        ``(heads,)`` float64 divergences (nats).

    Example:

    >>> import numpy as np
    >>> divergence_of(np.full((1, 2, 5, 5), 0.2)).round(6).tolist()
    [0.0, 0.0]
    """
    attention = _check_attention(attention)
    return np.log(attention.shape[-1]) - entropy_of(attention)


def mean_attention_distance(model, images):
    """Mean attention distance per block and head, in pixels.

    :func:`distance_of` for every transformer block: how far (in image
    pixels) each head looks from its query patch on average, class token
    excluded. A patch's size in pixels is the image side over the block's
    grid side. ViT paper (arXiv:2010.11929), Figure 7; small-data ViTs
    lack the local heads of early blocks, which SPT and LSA restore
    (arXiv:2112.13492).

    Args:
        model: a kvision transformer, or any Keras model returning
            attention weights (see :func:`~kvision.viz.attention_maps`).
        images: ``(B, H, W, C)`` inputs as the model takes them.

    Returns:
        ``(blocks, heads)`` float64 distances in pixels.
    """
    height, width = model.input.shape[1:3]
    rows = []
    for attention in _blocks(model, images):
        extra, grid = _token_layout(model, attention.shape[-1])
        pixels = (height / grid[0], width / grid[1])
        rows.append(distance_of(attention, grid, pixels, class_tokens=extra))
    return np.stack(rows)


def attention_entropy(model, images):
    """Mean entropy (nats) of the attention rows, per block and head.

    :func:`entropy_of` for every transformer block; all tokens (class
    token included) as queries and keys.

    Args:
        model: a kvision transformer, or any Keras model returning
            attention weights (see :func:`~kvision.viz.attention_maps`).
        images: ``(B, H, W, C)``.

    Returns:
        ``(blocks, heads)`` float64 entropies.
    """
    return np.stack([entropy_of(a) for a in _blocks(model, images)])


def attention_divergence(model, images):
    """How sharp attention is: mean KL(attention row || uniform).

    :func:`divergence_of` for every transformer block, all tokens as queries
    and keys: 0 when every row is uniform, up to ``log N`` when each row
    sits on one token. The small-dataset ViT paper (Lee et al.,
    arXiv:2112.13492) introduces LSA (diagonal masking and a learned
    softmax temperature) to sharpen attention away from ViT's near-uniform
    distribution; compare this measure between a ViT and an SL-ViT to see
    it. It equals ``log N - attention_entropy``.

    Args:
        model: a kvision transformer, or any Keras model returning
            attention weights (see :func:`~kvision.viz.attention_maps`).
        images: ``(B, H, W, C)``.

    Returns:
        ``(blocks, heads)`` float64 divergences (nats).
    """
    return np.stack([divergence_of(a) for a in _blocks(model, images)])
