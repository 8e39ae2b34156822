"""Learning-rate schedules of the papers' recipes (Keras built-ins first)."""

import keras
from keras import ops

from kvision import _checks


@keras.saving.register_keras_serializable(package="kvision")
class PiecewiseLinear(keras.optimizers.schedules.LearningRateSchedule):
    """Linear interpolation between ``(step, value)`` points.

    Keras has piecewise *constant* decay only; ConvMixer's official CIFAR
    code uses a piecewise linear "one-cycle" schedule, which this provides.
    Before the first point and after the last, the end values hold.

    Args:
        boundaries: increasing steps, at least two.
        values: the learning rate at each boundary.
    """

    def __init__(self, boundaries, values):
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) < 2 or len(boundaries) != len(values):
            raise ValueError(
                "`boundaries` and `values` need equal lengths >= 2. Received: "
                f"boundaries={boundaries}, values={values}"
            )
        if any(
            a >= b for a, b in zip(boundaries, boundaries[1:], strict=False)
        ):
            raise ValueError(
                f"`boundaries` must increase. Received: boundaries={boundaries}"
            )
        self.boundaries = [float(b) for b in boundaries]
        self.values = [float(v) for v in values]

    def __call__(self, step):
        step = ops.cast(step, "float32")
        rate = ops.convert_to_tensor(self.values[0], "float32")
        pairs = zip(self.boundaries, self.boundaries[1:], strict=False)
        for i, (start, end) in enumerate(pairs):
            fraction = ops.clip((step - start) / (end - start), 0.0, 1.0)
            rate = rate + fraction * (self.values[i + 1] - self.values[i])
        return rate

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values}


def warmup_cosine(peak, total_steps, warmup_steps, minimum=0.0):
    """Linear warm-up from 0 to ``peak``, then cosine decay to ``minimum``.

    Keras' own ``CosineDecay`` with its ``warmup_target`` (and ``alpha`` for
    the floor); the warm-up is part of ``total_steps``.
    """
    _checks.positive_int("total_steps", total_steps)
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(
            "`warmup_steps` must be in [0, total_steps). Received: "
            f"warmup_steps={warmup_steps}, total_steps={total_steps}"
        )
    if not 0 <= minimum <= peak:
        raise ValueError(
            "`minimum` must be in [0, peak]. Received: "
            f"minimum={minimum}, peak={peak}"
        )
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else peak,
        decay_steps=total_steps - warmup_steps,
        alpha=minimum / peak if peak else 0.0,
        warmup_target=peak if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def one_cycle(peak, total_steps):
    """ConvMixer's CIFAR schedule: 0 → peak at 40 %, → peak/20 at 80 %, → 0."""
    _checks.positive_int("total_steps", total_steps)
    t = total_steps
    return PiecewiseLinear(
        [0, 0.4 * t, 0.8 * t, t], [0.0, peak, peak / 20, 0.0]
    )
