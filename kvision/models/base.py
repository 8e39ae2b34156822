"""What every kvision model shares: config, heads and looking inside."""

import inspect

import keras

from kvision import _checks
from kvision import layers


def drop_path_rates(rate, count, schedule):
    """Per-block stochastic depth rates.

    ``"linear"`` grows from 0 to ``rate`` over the blocks (ConvNeXt, timm's
    ViT); ``"constant"`` gives every block ``rate`` (the official
    small-dataset ViT code, and timm's MLP-Mixer: the official Mixer code
    has no stochastic depth).
    """
    _checks.rate("drop_path_rate", rate)
    _checks.one_of("drop_path_schedule", schedule, {"linear", "constant"})
    if schedule == "constant" or count == 1:
        return [rate] * count
    return [rate * i / (count - 1) for i in range(count)]


def constructor_arguments(arguments):
    """A model's config from its ``__init__``'s ``locals()``, taken first.

    Keeps the constructor arguments (lists become tuples, so that a config
    read back from JSON compares equal) and drops ``self``, ``name`` and
    ``kwargs``, which the base class handles.
    """
    return {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in arguments.items()
        if key not in ("self", "name", "kwargs", "__class__")
    }


def returns_attention_scores(layer):
    """Whether ``layer`` can return attention scores: its ``call`` takes
    ``return_attention_scores`` and, where it also has an attribute
    ``has_attention_scores`` (a block whose token mixer may not be
    attention), that attribute is true."""
    parameters = inspect.signature(layer.call).parameters
    if "return_attention_scores" not in parameters:
        return False
    return bool(getattr(layer, "has_attention_scores", True))


class _AttentionScores(keras.layers.Layer):
    """The attention scores of ``block`` on its input, as a layer of its
    own: a Keras functional graph expects a layer's every call to return
    what its first did, and the model's blocks were first called without
    scores."""

    def __init__(self, block, **kwargs):
        super().__init__(
            name=f"{block.name}_scores", dtype=block.dtype_policy, **kwargs
        )
        self.block = block
        self.built = True

    def call(self, inputs, training=None):
        _, scores = self.block(
            inputs, training=training, return_attention_scores=True
        )
        return scores


class VisionModel(keras.Model):
    """Base class of kvision's functional models.

    Subclasses build their graph in ``__init__`` and pass it to
    :meth:`_build`; ``get_config`` returns the constructor arguments and
    ``from_config`` is ``cls(**config)``, so a saved model reloads as the same
    class with the same named layers.

    Inputs are float images in [0, 1], channels last, as the training code
    feeds them; uint8 pixels (0-255) would give meaningless outputs without
    an error, so convert them with :func:`kvision.data.to_model_range` (or
    put ``keras.layers.Rescaling(1 / 255)`` in front of the model).

    Looking inside works by layer name, on every backend and after loading:

    - :attr:`feature_names`: the named stage/block outputs, in order;
    - :meth:`feature_model`: a model returning a dict of those outputs;
    - :meth:`attention_model` (transformers): a model returning every
      block's attention scores ``(B, heads, N, N)``.
    """

    def _build(self, inputs, outputs, config, feature_names, name, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self._constructor_config = config
        self.feature_names = list(feature_names)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            **self._constructor_config,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _layer_output(self, name):
        try:
            return self.get_layer(name).output
        except ValueError:
            raise ValueError(
                f"{type(self).__name__} has no layer named {name!r}; "
                f"named features: {self.feature_names}. Received: "
                f"names={name!r}"
            ) from None

    def feature_model(self, names=None):
        """A model from this model's input to the named intermediate outputs.

        Args:
            names: layer names (default: :attr:`feature_names`).

        Returns:
            A ``keras.Model`` sharing this model's weights whose output is a
            dict ``{name: tensor}``.
        """
        names = self.feature_names if names is None else list(names)
        outputs = {name: self._layer_output(name) for name in names}
        return keras.Model(self.input, outputs, name=f"{self.name}_features")

    def attention_model(self):
        """A model returning each transformer block's attention scores.

        The model itself is built without the scores, so that its blocks
        take the fused attention path. This calls every block that can
        return scores (:func:`returns_attention_scores`) once more on the
        same input tensor, asking for them: the new model shares every
        weight, and computes each such block twice.

        Returns:
            A ``keras.Model`` sharing this model's weights whose output is a
            dict ``{block_name: scores}`` with scores ``(B, heads, N, N)``.
        """
        outputs = {}
        for name in self._attention_candidates():
            layer = self.get_layer(name)
            if returns_attention_scores(layer):
                outputs[name] = _AttentionScores(layer)(layer.input)
        if not outputs:
            raise ValueError(
                f"{type(self).__name__} has no attention layers; use "
                "feature_model() for its intermediate features."
            )
        return keras.Model(self.input, outputs, name=f"{self.name}_attention")

    def _attention_candidates(self):
        """Names of the layers :meth:`attention_model` reads ``(x, scores)``
        from: the named features, unless a model's blocks are not among
        them (hierarchical models name their stages)."""
        return self.feature_names


def check_head_arguments(include_top, num_classes, pooling):
    if include_top:
        _checks.positive_int("num_classes", num_classes)
    _checks.one_of("pooling", pooling, {None, "avg", "max"})


def image_input(input_shape):
    """The model input; the image size must be static (3-tuple, HWC)."""
    if input_shape is None or len(tuple(input_shape)) != 3:
        raise ValueError(
            "`input_shape` must be (height, width, channels). "
            f"Received: input_shape={input_shape!r}"
        )
    for size in input_shape:
        _checks.positive_int("input_shape", size)
    return keras.Input(tuple(input_shape), name="images")


def patch_tokens(inputs, tokenizer, patch_size, embed_dim, norm_epsilon):
    """The tokens of a plain ViT-style model: Shifted Patch Tokenization
    (``tokenizer="spt"``, layer ``"spt"``) or a linear patch embedding
    (``"patch"``, layer ``"patch_embedding"``)."""
    if tokenizer == "spt":
        return layers.ShiftedPatchTokenization(
            patch_size,
            embed_dim,
            norm_epsilon=norm_epsilon,
            data_format="channels_last",
            name="spt",
        )(inputs)
    return layers.PatchEmbedding(
        patch_size,
        embed_dim,
        data_format="channels_last",
        name="patch_embedding",
    )(inputs)


def token_initializer(weight_init):
    """The class token's and position embedding's initializer: the SPT/LSA
    repository draws both from ``torch.randn`` (std 1), which its
    ``"xavier_normal"`` scheme stands for here; ``None`` keeps the layers'
    defaults."""
    if weight_init == "xavier_normal":
        return keras.initializers.RandomNormal(stddev=1.0)
    return None


def class_token_output(
    x, norm_epsilon, include_top, num_classes, activation, pooling
):
    """``"final_norm"``, then the classifier on the class token (first) or,
    headless, the optional pooling of every token."""
    x = keras.layers.LayerNormalization(
        epsilon=norm_epsilon, name="final_norm"
    )(x)
    if include_top:
        return classifier(x[:, 0], num_classes, activation)
    return pool_features(x, pooling, spatial=False)


def classifier(x, num_classes, activation):
    return keras.layers.Dense(num_classes, activation=activation, name="head")(
        x
    )


def pool_features(x, pooling, spatial):
    """Optional global pooling of a headless model's output.

    Models are channels-last (tokens ``(B, N, C)``, feature maps
    ``(B, H, W, C)``) whatever Keras' global image data format is, which
    Keras' pooling layers would otherwise follow.
    """
    if pooling is None:
        return x
    if spatial:
        layer = {
            "avg": keras.layers.GlobalAveragePooling2D,
            "max": keras.layers.GlobalMaxPooling2D,
        }[pooling]
    else:
        layer = {
            "avg": keras.layers.GlobalAveragePooling1D,
            "max": keras.layers.GlobalMaxPooling1D,
        }[pooling]
    return layer(data_format="channels_last", name=f"{pooling}_pool")(x)
