"""Figures: functions return a ``matplotlib.figure.Figure`` and never show
it (no pyplot state, so they work in scripts, tests and notebooks alike).

matplotlib is imported when a figure is made, not with this module, so the
rest of kvision (training, the command line) works without it."""

import numpy as np
from keras import ops

from kvision import _checks
from kvision import ops as kv_ops


def _figure(**kwargs):
    """A new ``matplotlib.figure.Figure``; matplotlib is imported here."""
    try:
        from matplotlib.figure import Figure as MatplotlibFigure
    except ImportError as error:
        raise ImportError(
            "kvision's figures need matplotlib: pip install matplotlib "
            "(or the kvision[examples] extra)."
        ) from error
    return MatplotlibFigure(**kwargs)


def plot_overlays(images, maps, titles=None, suptitle=None, cmap="inferno"):
    """Images (top row) and their maps overlaid (bottom row).

    Args:
        images: ``(B, H, W, 3)`` uint8 or floats in [0, 1].
        maps: ``(B, h, w)``; each is stretched over its image.
        titles: optional per-image titles.
        suptitle: optional figure title.

    Returns:
        A ``matplotlib.figure.Figure`` with ``2 * B`` axes.
    """
    images = np.asarray(images)
    count = len(images)
    fig = _figure(figsize=(1.8 * count, 3.8))
    axes = fig.subplots(2, count, squeeze=False)
    for i in range(count):
        image = images[i]
        height, width = image.shape[:2]
        axes[0, i].imshow(image)
        axes[1, i].imshow(image)
        axes[1, i].imshow(
            maps[i], cmap=cmap, alpha=0.6, extent=(0, width, height, 0)
        )
        if titles is not None:
            axes[0, i].set_title(str(titles[i]), fontsize=9)
        for ax in axes[:, i]:
            ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_history(history):
    """Loss and accuracy curves from a ``History.history`` dict.

    Returns:
        A ``matplotlib.figure.Figure`` with one axis per metric family.
    """
    families = [m for m in ("loss", "accuracy") if m in history]
    fig = _figure(figsize=(4.5 * len(families), 3.5))
    axes = fig.subplots(1, len(families), squeeze=False)
    for ax, metric in zip(axes[0], families, strict=True):
        for key in (metric, f"val_{metric}"):
            if key in history:
                ax.plot(
                    np.arange(1, len(history[key]) + 1), history[key], label=key
                )
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.tight_layout()
    return fig


def _as_displayable(image):
    """uint8 stays as is; floats are clipped to [0, 1] for ``imshow``."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.clip(image, 0.0, 1.0)


def plot_attention_heads(images, head_maps, titles=None, cmap="inferno"):
    """Every head's map over every image: one row per image, one column per
    head, after a first column with the image itself.

    Args:
        images: ``(B, H, W, 3)`` uint8 or floats in [0, 1].
        head_maps: ``(B, heads, gh, gw)``, e.g. :func:`cls_attention`; each
            map is stretched over its image.
        titles: optional per-image titles (shown on the first column).
        cmap: matplotlib colormap of the maps.

    Returns:
        A ``matplotlib.figure.Figure`` with ``B * (heads + 1)`` axes.
    """
    images = np.asarray(images)
    head_maps = np.asarray(head_maps)
    if head_maps.ndim != 4 or len(head_maps) != len(images):
        raise ValueError(
            "`head_maps` must be (B, heads, gh, gw) with one entry per image. "
            f"Received: images.shape={images.shape}, "
            f"head_maps.shape={head_maps.shape}"
        )
    count, heads = head_maps.shape[:2]
    fig = _figure(figsize=(1.6 * (heads + 1), 1.7 * count + 0.3))
    axes = fig.subplots(count, heads + 1, squeeze=False)
    for i in range(count):
        image = _as_displayable(images[i])
        height, width = image.shape[:2]
        axes[i, 0].imshow(image)
        if titles is not None:
            axes[i, 0].set_title(str(titles[i]), fontsize=9)
        for h in range(heads):
            ax = axes[i, h + 1]
            ax.imshow(image)
            ax.imshow(
                head_maps[i, h],
                cmap=cmap,
                alpha=0.6,
                extent=(0, width, height, 0),
            )
            if i == 0:
                ax.set_title(f"head {h}", fontsize=9)
        for ax in axes[i]:
            ax.set_axis_off()
    fig.tight_layout()
    return fig


def _draw_patch_grid(ax, height, width, patch_size):
    for y in range(0, height + 1, patch_size):
        ax.axhline(y - 0.5, color="white", linewidth=0.6)
    for x in range(0, width + 1, patch_size):
        ax.axvline(x - 0.5, color="white", linewidth=0.6)


def plot_spt_views(image, patch_size):
    """What Shifted Patch Tokenization sees: the image and its four shifts.

    SPT (Lee et al., *Vision Transformer for Small-Size Datasets*,
    arXiv:2112.13492, Section 3.1) shifts the image by half a patch in the
    four diagonal directions (zero padding), concatenates the five views
    along channels and cuts them into the same patches, so each token also
    sees its neighbours' pixels. The views come from
    :func:`kvision.ops.shift_images`, the function the layer uses; the
    patch grid is drawn on every view.

    Args:
        image: ``(H, W, 3)`` uint8 or floats in [0, 1].
        patch_size: int >= 2, the SPT patch size (shift ``patch_size // 2``).

    Returns:
        A ``matplotlib.figure.Figure`` with 5 axes: the original, then
        up-left, up-right, down-left and down-right shifts.
    """
    _checks.positive_int("patch_size", patch_size)
    if patch_size < 2:
        raise ValueError(
            "SPT shifts by half a patch, so `patch_size` must be at least 2. "
            f"Received: patch_size={patch_size}"
        )
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(
            f"`image` must be (H, W, C). Received: image.shape={image.shape}"
        )
    height, width, channels = image.shape
    shifted = kv_ops.shift_images(
        ops.convert_to_tensor(image[None].astype("float32")), patch_size // 2
    )
    views = ops.convert_to_numpy(shifted)[0].astype(image.dtype)
    names = ("original", "up-left", "up-right", "down-left", "down-right")
    fig = _figure(figsize=(2.2 * len(names), 2.6))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for index, (ax, name) in enumerate(zip(axes, names, strict=True)):
        view = views[..., index * channels : (index + 1) * channels]
        ax.imshow(_as_displayable(view))
        _draw_patch_grid(ax, height, width, patch_size)
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    fig.suptitle(f"SPT views, patch {patch_size}, shift {patch_size // 2}")
    fig.tight_layout()
    return fig


def plot_attention_distance(
    distances, labels=None, ylabel="mean attention distance (pixels)"
):
    """A per-head statistic against depth, one or several models.

    Each head is a dot at its block, the mean over heads a line: the figure
    of the ViT paper (arXiv:2010.11929, Figure 7) for
    :func:`mean_attention_distance`, and just as useful for
    :func:`attention_entropy` or :func:`attention_divergence` (ViT against
    SL-ViT, say).

    Args:
        distances: a ``(blocks, heads)`` array, a list of them, or a dict
            ``{label: (blocks, heads) array}``.
        labels: legend names: a string for one array, a list for a list of
            arrays; ``None`` numbers them (a dict's keys are its labels).
        ylabel: the y-axis label.

    Returns:
        A ``matplotlib.figure.Figure`` with one axis: per model, one scatter
        of the heads and one line of their mean.
    """
    if isinstance(distances, dict):
        if labels is not None:
            raise ValueError(
                "A dict of distances is labelled by its keys; pass "
                f"`labels=None`. Received: labels={labels!r}"
            )
        labels, series = list(distances), list(distances.values())
    elif isinstance(distances, (list, tuple)):
        series = list(distances)
    else:
        series = [distances]
        labels = None if labels is None else [labels]
    if labels is None:
        # One model needs no legend; several are told apart by number.
        labels = [None] if len(series) == 1 else list(range(len(series)))
    if len(labels) != len(series):
        raise ValueError(
            f"{len(series)} arrays need as many labels. "
            f"Received: labels={labels!r}"
        )
    fig = _figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    for index, (label, values) in enumerate(zip(labels, series, strict=True)):
        values = np.asarray(values, dtype="float64")
        if values.ndim != 2:
            raise ValueError(
                "Each array must be (blocks, heads). "
                f"Received: shape {values.shape} for {label!r}"
            )
        blocks, heads = values.shape
        color = f"C{index}"
        # Models side by side within a block, so their dots do not overlap.
        offset = 0.15 * (index - (len(series) - 1) / 2)
        depth = np.arange(blocks)
        ax.scatter(
            np.repeat(depth + offset, heads),
            values.ravel(),
            s=12,
            alpha=0.6,
            color=color,
        )
        ax.plot(
            depth + offset,
            values.mean(axis=1),
            color=color,
            label=None if label is None else str(label),
        )
    ax.set_xlabel("block")
    ax.set_ylabel(ylabel)
    ax.set_xticks(np.arange(max(np.shape(v)[0] for v in series)))
    if labels[0] is not None:
        ax.legend()
    fig.tight_layout()
    return fig


def plot_token_mixing(weights, count=16, cmap="RdBu_r"):
    """Token-mixing filters of an MLP-Mixer block, one small map each.

    Args:
        weights: ``(hidden, gh, gw)`` from :func:`token_mixing_weights`.
        count: int, how many filters (the first ``count``) to show.
        cmap: a diverging colormap; each filter is centred on 0 with its own
            symmetric range, so the colours show sign and shape.

    Returns:
        A ``matplotlib.figure.Figure`` with ``min(count, hidden)`` axes.
    """
    weights = np.asarray(weights)
    if weights.ndim != 3:
        raise ValueError(
            "`weights` must be (hidden, gh, gw). "
            f"Received: weights.shape={weights.shape}"
        )
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(
            f"`count` must be a positive integer. Received: count={count!r}"
        )
    shown = min(count, len(weights))
    cols = int(np.ceil(np.sqrt(shown)))
    rows = int(np.ceil(shown / cols))
    fig = _figure(figsize=(1.2 * cols, 1.2 * rows + 0.4))
    for index in range(shown):
        ax = fig.add_subplot(rows, cols, index + 1)
        limit = float(np.abs(weights[index]).max()) or 1.0
        ax.imshow(weights[index], cmap=cmap, vmin=-limit, vmax=limit)
        ax.set_axis_off()
    fig.suptitle("token-mixing filters")
    fig.tight_layout()
    return fig
