"""Reading a DINO run's logs for the two ways self-distillation collapses."""

import math
import warnings

import keras


def collapse_status(logs, out_dim, tolerance=0.1):
    """Names the collapse a DINO run's logged metrics show, if any.

    Caron et al. (arXiv:2104.14294, Section 5.3) split the loss into the
    teacher's entropy and the student-teacher KL divergence: centring alone
    collapses to uniform targets (entropy ``log(out_dim)``), sharpening
    alone to one dimension for every image; both have a KL near 0.

    Args:
        logs: a dict with ``teacher_entropy``, ``teacher_batch_entropy``
            and ``kl_divergence`` (what :class:`DINO` logs per epoch).
        out_dim: int, the head's output width.
        tolerance: float in (0, 1), the fraction of ``log(out_dim)`` within
            which a value counts as "at" its collapsed value.

    Returns:
        ``"uniform"`` (targets near uniform: loss near ``log(out_dim)``),
        ``"one_dimension"`` (every image picks nearly the same prototype)
        or ``None`` (neither).

    Example:

    >>> import math
    >>> from kvision.selfsup import collapse_status
    >>> collapse_status({"teacher_entropy": math.log(64) - 0.01,
    ...                  "teacher_batch_entropy": math.log(64),
    ...                  "kl_divergence": 0.001}, out_dim=64)
    'uniform'
    """
    if not 0 < tolerance < 1:
        raise ValueError(
            f"`tolerance` must be in (0, 1). Received: tolerance={tolerance!r}"
        )
    missing = {
        "teacher_entropy",
        "teacher_batch_entropy",
        "kl_divergence",
    } - set(logs)
    if missing:
        raise ValueError(
            f"`logs` lacks {sorted(missing)}. Received keys: {sorted(logs)}"
        )
    scale = math.log(out_dim)
    if logs["teacher_entropy"] >= (1 - tolerance) * scale:
        return "uniform"
    if logs["teacher_batch_entropy"] <= tolerance * scale:
        return "one_dimension"
    return None


class CollapseMonitor(keras.callbacks.Callback):
    """Warns at the end of an epoch whose logs show a collapse.

    Args:
        out_dim: int, the DINO head's output width.
        tolerance: see :func:`collapse_status`.

    Attributes:
        statuses: the status of every epoch so far (``None`` when healthy).
    """

    def __init__(self, out_dim, tolerance=0.1):
        super().__init__()
        self.out_dim = out_dim
        self.tolerance = tolerance
        self.statuses = []

    def on_epoch_end(self, epoch, logs=None):
        status = collapse_status(logs or {}, self.out_dim, self.tolerance)
        self.statuses.append(status)
        if status is not None:
            warnings.warn(
                f"DINO epoch {epoch + 1}: {status} collapse (teacher entropy "
                f"{logs['teacher_entropy']:.3f}, batch entropy "
                f"{logs['teacher_batch_entropy']:.3f}, KL "
                f"{logs['kl_divergence']:.4f}; log(out_dim) = "
                f"{math.log(self.out_dim):.3f}).",
                stacklevel=2,
            )
