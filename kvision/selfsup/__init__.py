"""Self-supervised training: DINO (Caron et al., arXiv:2104.14294).

Train a backbone without labels with :class:`DINO` and ``model.fit(images)``
on any backend, then measure what it learned with :func:`knn_accuracy`,
:func:`linear_probe_accuracy` and :func:`attention_masks`.
"""

from kvision.selfsup.collapse import CollapseMonitor
from kvision.selfsup.collapse import collapse_status
from kvision.selfsup.dino import DINO
from kvision.selfsup.evaluation import attention_masks
from kvision.selfsup.evaluation import class_token_features
from kvision.selfsup.evaluation import knn_accuracy
from kvision.selfsup.evaluation import knn_predict
from kvision.selfsup.evaluation import linear_probe_accuracy
from kvision.selfsup.head import DINOHead
from kvision.selfsup.loss import batch_entropy
from kvision.selfsup.loss import dino_loss
from kvision.selfsup.loss import mean_entropy
from kvision.selfsup.loss import teacher_momentum
from kvision.selfsup.loss import teacher_probabilities
from kvision.selfsup.loss import teacher_temperature
from kvision.selfsup.multicrop import MultiCrop

__all__ = [
    "CollapseMonitor",
    "DINO",
    "DINOHead",
    "MultiCrop",
    "attention_masks",
    "batch_entropy",
    "class_token_features",
    "collapse_status",
    "dino_loss",
    "knn_accuracy",
    "knn_predict",
    "linear_probe_accuracy",
    "mean_entropy",
    "teacher_momentum",
    "teacher_probabilities",
    "teacher_temperature",
]
