"""Figures: functions return a ``matplotlib.figure.Figure`` and never show
it (no pyplot state, so they work in scripts, tests and notebooks alike)."""

import numpy as np
from matplotlib.figure import Figure


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
    fig = Figure(figsize=(1.8 * count, 3.8))
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
    fig = Figure(figsize=(4.5 * len(families), 3.5))
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
