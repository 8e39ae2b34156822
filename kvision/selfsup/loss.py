"""DINO's self-distillation loss and its schedules, as pure functions.

Reference: Caron et al., *Emerging Properties in Self-Supervised Vision
Transformers* (arXiv:2104.14294), the official ``DINOLoss`` and
``cosine_scheduler``. Everything here is written with ``keras.ops`` and
takes Python numbers or tensors (traced ones included), so the same code
runs inside a compiled training step on every backend.
"""

import math

from keras import ops


def dino_loss(
    student_logits,
    teacher_logits,
    center,
    student_temperature=0.1,
    teacher_temperature=0.04,
):
    """The DINO cross-entropy between teacher and student crops.

    The teacher's targets are ``softmax((teacher_logits - center) /
    teacher_temperature)`` without gradient; the student's predictions are
    ``log_softmax(student_logits / student_temperature)``. For every pair
    (teacher crop ``i``, student crop ``v``) with ``v != i`` (a global crop
    is not compared with itself) the cross-entropy is averaged over the
    batch; the loss is the mean over those pairs.

    Args:
        student_logits: ``(num_crops, batch, out_dim)``, crop-major, the
            global crops first.
        teacher_logits: ``(num_global_crops, batch, out_dim)``, the teacher
            on the same global crops in the same order.
        center: ``(out_dim,)``, the running mean of the teacher's logits.
        student_temperature: float or scalar tensor.
        teacher_temperature: float or scalar tensor.

    Returns:
        A scalar tensor.

    Example:

    >>> import numpy as np
    >>> from kvision.selfsup import dino_loss
    >>> student = np.zeros((4, 2, 8), "float32")  # uniform predictions
    >>> teacher = np.zeros((2, 2, 8), "float32")
    >>> loss = dino_loss(student, teacher, np.zeros(8, "float32"))
    >>> round(float(loss), 4) == round(float(np.log(8)), 4)
    True
    """
    student_shape = tuple(student_logits.shape)
    teacher_shape = tuple(teacher_logits.shape)
    if (
        len(student_shape) != 3
        or len(teacher_shape) != 3
        or student_shape[1:] != teacher_shape[1:]
        or teacher_shape[0] > student_shape[0]
    ):
        raise ValueError(
            "`student_logits` must be (num_crops, batch, out_dim) and "
            "`teacher_logits` (num_global_crops, batch, out_dim) with "
            "num_global_crops <= num_crops. Received: "
            f"student_logits.shape={student_shape}, "
            f"teacher_logits.shape={teacher_shape}"
        )
    num_global, num_crops = teacher_shape[0], student_shape[0]
    targets = ops.stop_gradient(
        teacher_probabilities(teacher_logits, center, teacher_temperature)
    )
    log_predictions = ops.log_softmax(
        student_logits / student_temperature, axis=-1
    )
    # cross[i, v]: batch-mean cross-entropy of teacher crop i, student crop v.
    cross = -ops.einsum("ibk,vbk->iv", targets, log_predictions)
    cross = cross / ops.cast(ops.shape(student_logits)[1], cross.dtype)
    same_crop = ops.eye(num_global, num_crops, dtype=cross.dtype)
    pairs = num_global * num_crops - num_global
    if pairs == 0:
        raise ValueError(
            "The loss needs a student crop the teacher did not see: give "
            "more student crops than teacher crops. Received: "
            f"num_crops={num_crops}, num_global_crops={num_global}"
        )
    return ops.sum(cross * (1.0 - same_crop)) / pairs


def teacher_probabilities(teacher_logits, center, teacher_temperature):
    """The teacher's centred, sharpened targets (what :func:`dino_loss`
    compares the student with)."""
    return ops.softmax((teacher_logits - center) / teacher_temperature, axis=-1)


def mean_entropy(probabilities):
    """Mean entropy (nats) of the distributions on the last axis."""
    probabilities = ops.convert_to_tensor(probabilities)
    logs = ops.log(ops.maximum(probabilities, 1e-12))
    return ops.mean(-ops.sum(probabilities * logs, axis=-1))


def batch_entropy(probabilities):
    """Entropy (nats) of the average distribution over every leading axis:
    near 0 when every input picks the same output dimension."""
    probabilities = ops.convert_to_tensor(probabilities)
    flat = ops.reshape(probabilities, (-1, ops.shape(probabilities)[-1]))
    return mean_entropy(ops.mean(flat, axis=0))


def teacher_momentum(step, total_steps, base=0.996, final=1.0):
    """The teacher's EMA momentum at ``step``: a cosine from ``base`` (step
    0) to ``final`` (step ``total_steps``), constant after it.

    ``m = final - (final - base) * (cos(pi * step / total_steps) + 1) / 2``
    (the official ``cosine_scheduler`` per iteration).

    Example:

    >>> from kvision.selfsup import teacher_momentum
    >>> [round(float(teacher_momentum(s, 10)), 4) for s in (0, 5, 10, 20)]
    [0.996, 0.998, 1.0, 1.0]
    """
    progress = ops.minimum(ops.cast(step, "float32") / float(total_steps), 1.0)
    cosine = (ops.cos(math.pi * progress) + 1.0) / 2.0
    return final - (final - base) * cosine


def teacher_temperature(step, warmup_steps, warmup_value=0.04, value=0.04):
    """The teacher temperature at ``step``: linear from ``warmup_value`` to
    ``value`` over ``warmup_steps``, then ``value``.

    The official schedule is the same line taken once per epoch; here it is
    taken every step (``warmup_steps = warmup_epochs * steps_per_epoch``).
    The official code's default has no warm-up (0.04 throughout), although
    its help text says 30 epochs; its "boost" recipe warms up from 0.04 to
    0.07 over 30 epochs.

    Example:

    >>> from kvision.selfsup import teacher_temperature
    >>> [round(float(teacher_temperature(s, 10, 0.04, 0.07)), 3)
    ...  for s in (0, 5, 10, 30)]
    [0.04, 0.055, 0.07, 0.07]
    """
    if warmup_steps <= 0:
        return ops.convert_to_tensor(value, "float32")
    progress = ops.minimum(ops.cast(step, "float32") / float(warmup_steps), 1.0)
    return warmup_value + (value - warmup_value) * progress
