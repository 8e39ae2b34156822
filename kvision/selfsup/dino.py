"""DINO: self-distillation with no labels, trained with ``model.fit``."""

import keras
from keras import ops

from kvision import _checks
from kvision.selfsup import loss as dino_math
from kvision.selfsup.head import DINOHead
from kvision.selfsup.multicrop import MultiCrop


@keras.saving.register_keras_serializable(package="kvision")
class DINO(keras.Model):
    """A student and its EMA teacher, trained by self-distillation.

    Reference: Caron et al., *Emerging Properties in Self-Supervised Vision
    Transformers* (arXiv:2104.14294) and its official code.

    ``model.fit(images)`` trains without labels on every backend: each step
    cuts the batch into crops (:class:`MultiCrop`, inside the compiled
    step), runs the student (``backbone`` + :class:`DINOHead`) on every crop
    and the teacher (a copy of both, never trained by gradients) on the
    global crops, and minimises :func:`dino_loss`. Everything that is not a
    gradient step happens inside the forward pass, as variable updates that
    Keras carries through its training step on every backend (JAX's
    stateless step included), so there is no per-backend training code:

    - the teacher follows the student by an exponential moving average with
      momentum :func:`teacher_momentum` (a cosine from ``momentum`` to 1
      over ``total_steps``), over every float weight (the prototype scales
      and any normalisation statistics included). The official code updates
      the teacher right after each optimizer step; here the same update
      happens at the start of the next step, before the teacher is used, so
      every step sees the same teacher as in the official order. After
      ``fit`` returns, the last step's student update has not reached the
      teacher yet (one step of a momentum close to 1);
    - the centre becomes ``center_momentum * center + (1 - center_momentum)
      * mean(teacher logits)`` after the loss has used the old centre;
    - the teacher temperature warms up per step (:func:`teacher_temperature`);
    - the prototypes get no gradient for ``freeze_prototype_steps`` steps
      (the official ``freeze_last_layer``, one epoch).

    Collapse shows in the logged metrics (per step, averaged over the
    epoch): ``loss`` is ``teacher_entropy + kl_divergence``. A collapsed run
    has ``kl_divergence`` near 0 (the student matches the teacher
    trivially) with either ``teacher_entropy`` near ``log(out_dim)``
    (uniform targets; the loss is pinned at ``log(out_dim)``) or
    ``teacher_batch_entropy`` near 0 (every image picks the same
    prototype); see :func:`collapse_status`.

    The teacher runs in inference mode (no dropout or stochastic depth; the
    official teacher has no drop path either). Called outside training,
    the model returns the teacher's features of the images as given (the
    class token of a transformer), which DINO's k-NN evaluation uses.

    Args:
        backbone: a built ``keras.Model`` from images to features ``(B, C)``
            or tokens ``(B, N, C)`` (the class token, token 0, is used),
            e.g. ``create_model("vit_32px", include_top=False)``. It must be
            serializable (the teacher is a copy made through its config).
        multicrop: a :class:`MultiCrop` (default: ``MultiCrop()``).
        out_dim: int, prototypes of the :class:`DINOHead` (student and
            teacher alike).
        hidden_dim: int, the head MLP's hidden width.
        bottleneck_dim: int, the head's normalised width.
        head_layers: int, dense layers of the head MLP.
        norm_last_layer: bool, freeze the prototype scales.
        head_batch_norm: bool, BatchNormalization in the head MLP (the
            official ``use_bn``).
        total_steps: int, optimizer steps of the whole run (the momentum
            schedule's length).
        momentum: float in [0, 1), the teacher momentum at step 0 (0.996
            official; 0.9995 suggested with batch 256).
        center_momentum: float in [0, 1), the centre's momentum.
        student_temperature: float > 0.
        teacher_temperature: float > 0, after the warm-up.
        warmup_teacher_temperature: float > 0 or ``None`` (no warm-up).
        teacher_temperature_warmup_steps: int >= 0.
        freeze_prototype_steps: int >= 0, steps without prototype updates.
        **kwargs: base ``keras.Model`` arguments (``name``).

    Input shape: ``(batch, height, width, channels)`` images in [0, 1].
    Output shape: training: a dict of logits for the loss; inference:
    ``(batch, features)``.

    Example:

    >>> import numpy as np
    >>> import keras
    >>> from kvision.models import create_model
    >>> from kvision.selfsup import DINO, MultiCrop
    >>> backbone = create_model("vit_32px", depth=1, include_top=False)
    >>> dino = DINO(backbone, MultiCrop(num_local_crops=2, seed=0),
    ...             out_dim=64, hidden_dim=32, bottleneck_dim=16,
    ...             total_steps=1)
    >>> dino.compile(optimizer=keras.optimizers.AdamW(1e-4))
    >>> images = np.random.default_rng(0).random((4, 32, 32, 3), "float32")
    >>> history = dino.fit(images, batch_size=4, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['kl_divergence', 'loss', 'teacher_batch_entropy', 'teacher_entropy']
    >>> tuple(dino.predict(images, verbose=0).shape)
    (4, 192)
    """

    def __init__(
        self,
        backbone,
        multicrop=None,
        out_dim=4096,
        hidden_dim=2048,
        bottleneck_dim=256,
        head_layers=3,
        norm_last_layer=True,
        head_batch_norm=False,
        total_steps=1000,
        momentum=0.996,
        center_momentum=0.9,
        student_temperature=0.1,
        teacher_temperature=0.04,
        warmup_teacher_temperature=None,
        teacher_temperature_warmup_steps=0,
        freeze_prototype_steps=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(backbone, keras.Model) or not backbone.built:
            raise ValueError(
                "`backbone` must be a built keras.Model. Received: "
                f"backbone={backbone!r}"
            )
        multicrop = MultiCrop() if multicrop is None else multicrop
        if not isinstance(multicrop, MultiCrop):
            raise ValueError(
                "`multicrop` must be a kvision.selfsup.MultiCrop or None. "
                f"Received: multicrop={multicrop!r}"
            )
        self.total_steps = _checks.positive_int("total_steps", total_steps)
        self.momentum = _checks.rate("momentum", momentum)
        self.center_momentum = _checks.rate("center_momentum", center_momentum)
        self.student_temperature = _checks.positive_float(
            "student_temperature", student_temperature
        )
        self.teacher_temperature = _checks.positive_float(
            "teacher_temperature", teacher_temperature
        )
        self.warmup_teacher_temperature = (
            None
            if warmup_teacher_temperature is None
            else _checks.positive_float(
                "warmup_teacher_temperature", warmup_teacher_temperature
            )
        )
        self.teacher_temperature_warmup_steps = _checks.non_negative_int(
            "teacher_temperature_warmup_steps",
            teacher_temperature_warmup_steps,
        )
        self.freeze_prototype_steps = _checks.non_negative_int(
            "freeze_prototype_steps", freeze_prototype_steps
        )
        head_config = dict(
            out_dim=out_dim,
            hidden_dim=hidden_dim,
            bottleneck_dim=bottleneck_dim,
            num_layers=head_layers,
            norm_last_layer=norm_last_layer,
            use_bn=head_batch_norm,
        )
        self.backbone = backbone
        self.multicrop = multicrop
        feature_dim = _feature_shape(backbone)[-1]
        self.head = DINOHead(**head_config, name="head")
        self.head.build((None, feature_dim))
        self.teacher_backbone = _copy_model(backbone)
        self.teacher_head = DINOHead(**head_config, name="teacher_head")
        self.teacher_head.build((None, feature_dim))
        self.teacher_backbone.trainable = False
        self.teacher_head.trainable = False
        pairs = self._teacher_pairs()
        for student, teacher in pairs:
            # A copy: on JAX the two variables would share one buffer, which
            # a compiled step cannot donate twice.
            teacher.assign(ops.copy(student.value))
        self.center = self.add_weight(
            shape=(out_dim,),
            initializer="zeros",
            trainable=False,
            name="center",
        )
        # Steps taken so far (float: the schedules compute with it).
        self.steps_taken = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="steps_taken"
        )
        self.teacher_entropy_tracker = keras.metrics.Mean(
            name="teacher_entropy"
        )
        self.teacher_batch_entropy_tracker = keras.metrics.Mean(
            name="teacher_batch_entropy"
        )
        self.kl_divergence_tracker = keras.metrics.Mean(name="kl_divergence")
        self.built = True

    @property
    def out_dim(self):
        return self.head.out_dim

    def _teacher_pairs(self):
        """(student weight, teacher weight) pairs the EMA runs over."""
        student = self.backbone.weights + self.head.weights
        teacher = self.teacher_backbone.weights + self.teacher_head.weights
        pairs = [
            (s, t)
            for s, t in zip(student, teacher, strict=True)
            if keras.backend.is_float_dtype(s.dtype)
        ]
        for s, t in pairs:
            if tuple(s.shape) != tuple(t.shape):
                raise ValueError(
                    "The teacher copy of `backbone` does not match it: "
                    f"{s.path} {tuple(s.shape)} against {t.path} "
                    f"{tuple(t.shape)}."
                )
        return pairs

    def _update_teacher(self, step):
        # The update the official code makes after step k - 1, made at the
        # start of step k (none at step 0: the teacher is the student).
        momentum = dino_math.teacher_momentum(
            ops.maximum(step - 1.0, 0.0), self.total_steps, self.momentum
        )
        momentum = ops.where(step > 0, momentum, 1.0)
        for student, teacher in self._teacher_pairs():
            value = ops.stop_gradient(ops.convert_to_tensor(student))
            teacher.assign(
                momentum * teacher
                + (1.0 - momentum) * ops.cast(value, teacher.dtype)
            )

    def _temperature(self, step):
        if self.warmup_teacher_temperature is None:
            return ops.convert_to_tensor(self.teacher_temperature, "float32")
        return dino_math.teacher_temperature(
            step,
            self.teacher_temperature_warmup_steps,
            self.warmup_teacher_temperature,
            self.teacher_temperature,
        )

    def call(self, images, training=False):
        if not training:
            return _features(self.teacher_backbone(images, training=False))
        # Copies, not views: the variables change below, and on PyTorch a
        # read of a variable can share its memory.
        step = ops.add(self.steps_taken, 0.0)
        center = ops.add(self.center, 0.0)
        self._update_teacher(step)
        crops = self.multicrop(images)
        num_global = self.multicrop.num_global_crops
        features = _features(self.backbone(crops, training=True))
        student = self.head(
            features,
            train_prototypes=ops.cast(
                step >= self.freeze_prototype_steps, features.dtype
            ),
        )
        student = ops.reshape(
            student, (self.multicrop.num_crops, -1, self.out_dim)
        )
        global_crops = crops[: num_global * ops.shape(images)[0]]
        teacher = self.teacher_head(
            _features(self.teacher_backbone(global_crops, training=False))
        )
        teacher = ops.stop_gradient(
            ops.reshape(teacher, (num_global, -1, self.out_dim))
        )
        batch_mean = ops.mean(ops.reshape(teacher, (-1, self.out_dim)), axis=0)
        self.center.assign(
            self.center_momentum * center
            + (1.0 - self.center_momentum) * ops.cast(batch_mean, "float32")
        )
        self.steps_taken.assign(step + 1.0)
        return {
            "student": student,
            "teacher": teacher,
            "center": center,
            "temperature": self._temperature(step),
        }

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        if not isinstance(y_pred, dict):
            raise ValueError(
                "DINO has a loss only while training (`fit`); evaluate it "
                "with k-NN on its features instead (kvision.selfsup."
                "knn_accuracy)."
            )
        student = ops.cast(y_pred["student"], "float32")
        teacher = ops.cast(y_pred["teacher"], "float32")
        temperature = y_pred["temperature"]
        loss = dino_math.dino_loss(
            student,
            teacher,
            y_pred["center"],
            self.student_temperature,
            temperature,
        )
        targets = dino_math.teacher_probabilities(
            teacher, y_pred["center"], temperature
        )
        entropy = dino_math.mean_entropy(targets)
        self.teacher_entropy_tracker.update_state(entropy)
        self.teacher_batch_entropy_tracker.update_state(
            dino_math.batch_entropy(targets)
        )
        self.kl_divergence_tracker.update_state(
            ops.stop_gradient(loss) - entropy
        )
        for extra in self.losses:
            loss = loss + ops.cast(extra, loss.dtype)
        return loss

    def get_config(self):
        head = self.head
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "multicrop": keras.saving.serialize_keras_object(self.multicrop),
            "out_dim": head.out_dim,
            "hidden_dim": head.hidden_dim,
            "bottleneck_dim": head.bottleneck_dim,
            "head_layers": head.num_layers,
            "norm_last_layer": head.norm_last_layer,
            "head_batch_norm": head.use_bn,
            "total_steps": self.total_steps,
            "momentum": self.momentum,
            "center_momentum": self.center_momentum,
            "student_temperature": self.student_temperature,
            "teacher_temperature": self.teacher_temperature,
            "warmup_teacher_temperature": self.warmup_teacher_temperature,
            "teacher_temperature_warmup_steps": (
                self.teacher_temperature_warmup_steps
            ),
            "freeze_prototype_steps": self.freeze_prototype_steps,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("backbone", "multicrop"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _feature_shape(backbone):
    shape = (
        tuple(backbone.output.shape)
        if not isinstance(backbone.output, (list, tuple, dict))
        else None
    )
    if shape is None or len(shape) not in (2, 3) or shape[-1] is None:
        raise ValueError(
            "`backbone` must output one tensor of features (B, C) or tokens "
            "(B, N, C), e.g. a kvision model with include_top=False. "
            f"Received output: {backbone.output!r}"
        )
    return shape


def _features(outputs):
    """The class token (token 0) of tokens, or the features as they are."""
    return outputs[:, 0] if len(outputs.shape) == 3 else outputs


def _copy_model(model):
    """A fresh model with ``model``'s config (weights are copied after)."""
    config = keras.saving.serialize_keras_object(model)
    config["config"] = {**config["config"], "name": f"teacher_{model.name}"}
    return keras.saving.deserialize_keras_object(config)
