"""DINO's projection head: an MLP, an L2 normalisation and cosine prototypes."""

import math

import keras
from keras import ops

from kvision import _checks


@keras.saving.register_keras_serializable(package="kvision")
class DINOHead(keras.layers.Layer):
    """The DINO projection head: MLP → L2-normalise → weight-normalised
    prototypes.

    Reference: Caron et al., *Emerging Properties in Self-Supervised Vision
    Transformers* (arXiv:2104.14294), the official ``DINOHead``.

    ``num_layers`` dense layers (GELU between them, none after the last)
    map the backbone feature to a ``bottleneck_dim`` vector ``z``, which is
    L2-normalised; the logits are ``z @ (g * v / ||v||)`` with one column
    ``v_k`` (a "prototype") per output dimension, normalised over its
    ``bottleneck_dim`` entries (PyTorch's ``weight_norm`` of the last
    layer). The scale ``g`` starts at 1; with ``norm_last_layer=True`` (the
    official default) it stays frozen, so every logit is the cosine between
    ``z`` and a prototype, in [-1, 1].

    Initialisation as in the official code: the MLP's kernels are drawn
    from a truncated normal with standard deviation 0.02 and its biases are
    zero; the prototypes keep PyTorch's default ``Linear`` draw,
    ``U(-1/sqrt(bottleneck_dim), 1/sqrt(bottleneck_dim))``, because the
    official head creates them after its initialisation pass.

    The official code's ``freeze_last_layer`` (no prototype update during
    the first epoch) is ``call(..., train_prototypes=0.0)``: the prototypes'
    gradient is cut, so an optimizer step leaves them as they are, apart
    from the weight decay an optimizer may still apply.

    Args:
        out_dim: int, number of prototypes (the output width). The official
            default is 65,536; small-data reproductions use 2,048–4,096.
        hidden_dim: int, width of the MLP's hidden layers.
        bottleneck_dim: int, width of the normalised vector ``z``.
        num_layers: int, dense layers in the MLP (1 maps straight to the
            bottleneck).
        norm_last_layer: bool, freeze the prototype scales ``g`` at 1.
        use_bn: bool, batch normalisation after each hidden dense layer
            (the official option, used there for ConvNet backbones). It
            always normalises with the batch's own statistics, as the
            official head does in training, the only time a DINO head
            runs, so it keeps no running statistics and the teacher's head
            normalises its batch too. It removes what every image's
            feature has in common, which keeps small ViTs trained on
            little data from collapsing (see :class:`DINO`).
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: ``(batch, features)``.
    Output shape: ``(batch, out_dim)``.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from kvision.selfsup import DINOHead
    >>> head = DINOHead(out_dim=64, hidden_dim=32, bottleneck_dim=16)
    >>> logits = keras.ops.convert_to_numpy(head(np.ones((2, 8), "float32")))
    >>> logits.shape, bool(np.abs(logits).max() <= 1.0 + 1e-6)
    ((2, 64), True)
    """

    def __init__(
        self,
        out_dim,
        hidden_dim=2048,
        bottleneck_dim=256,
        num_layers=3,
        norm_last_layer=True,
        use_bn=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.out_dim = _checks.positive_int("out_dim", out_dim)
        self.hidden_dim = _checks.positive_int("hidden_dim", hidden_dim)
        self.bottleneck_dim = _checks.positive_int(
            "bottleneck_dim", bottleneck_dim
        )
        self.num_layers = _checks.positive_int("num_layers", num_layers)
        self.norm_last_layer = bool(norm_last_layer)
        self.use_bn = bool(use_bn)
        widths = [hidden_dim] * (num_layers - 1) + [bottleneck_dim]
        self.dense_layers = [
            keras.layers.Dense(
                width,
                kernel_initializer=keras.initializers.TruncatedNormal(
                    stddev=0.02
                ),
                bias_initializer="zeros",
                dtype=self.dtype_policy,
                name=f"dense_{i}",
            )
            for i, width in enumerate(widths)
        ]

    def build(self, input_shape):
        _checks.input_rank(self, input_shape, (2,), "(batch, features)")
        _checks.static_dims(self, input_shape, (-1,), "features")
        shape = tuple(input_shape)
        self.norm_scales, self.norm_offsets = [], []
        for i, layer in enumerate(self.dense_layers):
            layer.build(shape)
            shape = (shape[0], layer.units)
            if self.use_bn and i < len(self.dense_layers) - 1:
                self.norm_scales.append(
                    self.add_weight(
                        shape=(layer.units,),
                        initializer="ones",
                        name=f"norm_scale_{i}",
                    )
                )
                self.norm_offsets.append(
                    self.add_weight(
                        shape=(layer.units,),
                        initializer="zeros",
                        name=f"norm_offset_{i}",
                    )
                )
        bound = 1.0 / math.sqrt(self.bottleneck_dim)
        self.prototypes = self.add_weight(
            shape=(self.bottleneck_dim, self.out_dim),
            initializer=keras.initializers.RandomUniform(-bound, bound),
            name="prototypes",
        )
        self.prototype_scale = self.add_weight(
            shape=(self.out_dim,),
            initializer="ones",
            trainable=not self.norm_last_layer,
            name="prototype_scale",
        )

    def call(self, inputs, train_prototypes=1.0):
        x = inputs
        for i, layer in enumerate(self.dense_layers):
            x = layer(x)
            if i < len(self.norm_scales):
                x = _batch_normalize(
                    x, self.norm_scales[i], self.norm_offsets[i]
                )
            if i < len(self.dense_layers) - 1:
                x = ops.gelu(x, approximate=False)
        x = _l2_normalize(x, axis=-1)
        prototypes = ops.cast(self.prototypes, x.dtype)
        # A gate of 0 keeps the value and cuts the gradient, on every backend
        # and inside a compiled step (the gate may be a traced scalar).
        gate = ops.cast(train_prototypes, x.dtype)
        frozen = ops.stop_gradient(prototypes)
        prototypes = frozen + gate * (prototypes - frozen)
        weights = _l2_normalize(prototypes, axis=0) * ops.cast(
            self.prototype_scale, x.dtype
        )
        return ops.matmul(x, weights)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.out_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "out_dim": self.out_dim,
            "hidden_dim": self.hidden_dim,
            "bottleneck_dim": self.bottleneck_dim,
            "num_layers": self.num_layers,
            "norm_last_layer": self.norm_last_layer,
            "use_bn": self.use_bn,
        }


def _batch_normalize(x, scale, offset):
    # PyTorch's BatchNorm1d in training mode: biased variance, epsilon 1e-5.
    mean = ops.mean(x, axis=0, keepdims=True)
    variance = ops.mean(ops.square(x - mean), axis=0, keepdims=True)
    normalized = (x - mean) * ops.rsqrt(variance + 1e-5)
    return normalized * ops.cast(scale, x.dtype) + ops.cast(offset, x.dtype)


def _l2_normalize(x, axis):
    # PyTorch's F.normalize: divide by max(norm, 1e-12).
    norm = ops.sqrt(ops.sum(ops.square(x), axis=axis, keepdims=True))
    return x / ops.maximum(norm, 1e-12)
