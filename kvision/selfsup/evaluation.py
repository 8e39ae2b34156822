"""Evaluating frozen features, as DINO does: k-NN, linear probes, masks.

Caron et al., *Emerging Properties in Self-Supervised Vision Transformers*
(DINO, arXiv:2104.14294), judge a backbone without fine-tuning it: a
weighted k-nearest-neighbour vote and a linear classifier on its class-token
features (Section 4.1), and masks that keep most of the class token's
attention (Section 4.2.1, Figure 3). Everything here is NumPy on the host,
on every backend; tensors are converted with ``keras.ops.convert_to_numpy``.
"""

import keras
import numpy as np

from kvision import _checks


def _to_numpy(value):
    if isinstance(value, np.ndarray):
        return value
    return keras.ops.convert_to_numpy(value)


def _features(name, value):
    array = _to_numpy(value)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(
            f"`{name}` must be a 2-D numeric array (samples, channels). "
            f"Received: {name} with shape {array.shape} and dtype "
            f"{array.dtype}"
        )
    return array


def _labels(name, value, count, integer=True):
    array = _to_numpy(value)
    if array.ndim != 1 or len(array) != count:
        raise ValueError(
            f"`{name}` must be 1-D with one label per feature row ({count}). "
            f"Received: {name} with shape {array.shape}"
        )
    if integer and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"`{name}` must hold integer class indices. Received: {name} "
            f"with dtype {array.dtype}"
        )
    if integer and array.size and array.min() < 0:
        raise ValueError(
            f"`{name}` must be non-negative class indices. Received: "
            f"{name} with minimum {array.min()}"
        )
    return array


def _same_width(train, test):
    if train.shape[1] != test.shape[1]:
        raise ValueError(
            "`train_features` and `test_features` must have the same number "
            f"of channels. Received: train_features.shape={train.shape}, "
            f"test_features.shape={test.shape}"
        )


def _l2_normalise(features):
    # The floor on the norm is torch.nn.functional.normalize's (what DINO
    # calls): an all-zero row stays zero instead of becoming NaN.
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def knn_predict(
    train_features,
    train_labels,
    test_features,
    k=20,
    temperature=0.07,
    num_classes=None,
    batch_size=1024,
):
    """Labels from DINO's weighted k-nearest-neighbour vote.

    Caron et al., DINO (arXiv:2104.14294), Section 4.1 and the official
    ``eval_knn.py``: rows of both feature sets are L2-normalised, each test
    row's cosine similarities ``s`` to the training rows are computed, and
    its ``k`` most similar training rows vote for their labels with weights
    ``exp(s / temperature)``. The class with the largest total weight wins.
    The paper's defaults are ``k=20`` and ``temperature=0.07``.

    Weights are computed as ``exp((s - s_max) / temperature)`` with the row's
    largest similarity ``s_max``: the same vote (every weight of a row is
    scaled by one factor) without overflow at small temperatures. Ties
    between equal similarities at the k-th place, and between classes of
    equal total weight, are broken by NumPy (``argpartition``; the lowest
    class index), not as PyTorch's ``topk`` and ``sort`` would.

    Args:
        train_features: ``(N, C)`` features of the labelled set (NumPy
            arrays or backend tensors).
        train_labels: ``(N,)`` integer class indices.
        test_features: ``(M, C)`` features to classify.
        k: int, neighbours per test row; at most ``N``.
        temperature: positive float, the softness of the vote.
        num_classes: int, or ``None`` for ``max(train_labels) + 1``.
        batch_size: int, test rows per chunk: memory grows as
            ``batch_size * N``.

    Returns:
        ``(M,)`` int64 NumPy array of predicted class indices.

    Raises:
        ValueError: shapes disagree, labels are not class indices, ``k``
            exceeds ``N``, or an argument is out of range.

    Example:

    >>> import numpy as np
    >>> train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> test = np.array([[1.0, 0.2], [0.1, 1.0]])
    >>> knn_predict(train, np.array([0, 0, 1]), test, k=1)
    array([0, 1])
    """
    train = _features("train_features", train_features)
    test = _features("test_features", test_features)
    _same_width(train, test)
    labels = _labels("train_labels", train_labels, len(train))
    _checks.positive_int("k", k)
    if k > len(train):
        raise ValueError(
            f"`k` must be at most the number of training rows "
            f"({len(train)}). Received: k={k}"
        )
    temperature = _checks.positive_float("temperature", temperature)
    _checks.positive_int("batch_size", batch_size)
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    _checks.positive_int("num_classes", num_classes)
    if labels.max() >= num_classes:
        raise ValueError(
            f"`train_labels` must be below `num_classes` ({num_classes}). "
            f"Received: train_labels with maximum {labels.max()}"
        )
    dtype = np.result_type(train.dtype, test.dtype, np.float32)
    train = _l2_normalise(train.astype(dtype))
    test = _l2_normalise(test.astype(dtype))
    predictions = np.empty(len(test), "int64")
    for start in range(0, len(test), batch_size):
        chunk = test[start : start + batch_size]
        similarity = chunk @ train.T  # (rows, N)
        # The k largest per row, unordered: the vote is a sum.
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        nearest = np.take_along_axis(similarity, top, axis=1)
        weights = np.exp(
            (nearest - nearest.max(axis=1, keepdims=True)) / temperature
        )
        scores = np.zeros((len(chunk), num_classes), "float64")
        rows = np.repeat(np.arange(len(chunk)), k)
        np.add.at(scores, (rows, labels[top].reshape(-1)), weights.ravel())
        predictions[start : start + len(chunk)] = scores.argmax(axis=1)
    return predictions


def knn_accuracy(
    train_features,
    train_labels,
    test_features,
    test_labels,
    k=20,
    temperature=0.07,
    num_classes=None,
    batch_size=1024,
):
    """Top-1 accuracy of DINO's weighted k-NN classifier.

    Caron et al., DINO (arXiv:2104.14294), Section 4.1: the fraction of
    ``test_labels`` that :func:`knn_predict` recovers (see there for the
    vote, its weights and its ties).

    Args:
        train_features: ``(N, C)`` features of the labelled set.
        train_labels: ``(N,)`` integer class indices.
        test_features: ``(M, C)`` features to classify, ``M >= 1``.
        test_labels: ``(M,)`` their integer class indices.
        k: int, neighbours per test row; at most ``N``.
        temperature: positive float, the softness of the vote.
        num_classes: int, or ``None`` for ``max(train_labels) + 1``.
        batch_size: int, test rows per chunk.

    Returns:
        Python float in [0, 1].

    Example:

    >>> import numpy as np
    >>> train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> test = np.array([[1.0, 0.2], [0.1, 1.0]])
    >>> knn_accuracy(train, np.array([0, 0, 1]), test, np.array([0, 0]), k=1)
    0.5
    """
    test = _features("test_features", test_features)
    if len(test) == 0:
        raise ValueError(
            "`test_features` must have at least one row. Received: "
            f"test_features.shape={test.shape}"
        )
    labels = _labels("test_labels", test_labels, len(test))
    predictions = knn_predict(
        train_features,
        train_labels,
        test,
        k=k,
        temperature=temperature,
        num_classes=num_classes,
        batch_size=batch_size,
    )
    return float(np.mean(predictions == labels))


def linear_probe_accuracy(
    train_features,
    train_labels,
    test_features,
    test_labels,
    max_iter=2000,
    C=1.0,
    standardize=True,
):
    """Test accuracy of a logistic-regression probe on frozen features.

    DINO (Caron et al., arXiv:2104.14294, Section 4.1) reports a linear
    classifier on frozen features next to k-NN. Its ``eval_linear.py``
    trains that layer with SGD and augmentation for 100 epochs; this is the
    cheaper probe CLIP uses (Radford et al., arXiv:2103.00020, Appendix
    A.3): features standardised with the training set's mean and standard
    deviation (channels with zero deviation are only centred), then
    scikit-learn's ``LogisticRegression`` (L-BFGS, L2 penalty, from zero
    weights, so the same data gives the same accuracy).

    With ``standardize=False`` and images flattened to pixels in [0, 1] it
    is the floor every kvision tutorial and benchmark puts beside a trained
    model: a logistic regression on the raw pixels.

    The fit runs on one BLAS thread: on a busy 2-core machine, OpenBLAS'
    spinning threads made a fit of 64 digits take 30 s instead of 0.3 s.

    Needs scikit-learn (``pip install scikit-learn``, or kvision's
    ``examples`` extra).

    Args:
        train_features: ``(N, C)`` features the probe is fitted on.
        train_labels: ``(N,)`` their labels.
        test_features: ``(M, C)`` features it is scored on, ``M >= 1``.
        test_labels: ``(M,)`` their labels.
        max_iter: int, L-BFGS iterations at most.
        C: positive float, inverse L2 regularisation strength.
        standardize: bool, scale the features by the training set's
            statistics first (``False``: fit them as they are).

    Returns:
        Python float in [0, 1].

    Example:

    >>> import numpy as np
    >>> features = np.array([[0.0], [1.0], [4.0], [5.0]])
    >>> labels = np.array([0, 0, 1, 1])
    >>> linear_probe_accuracy(features, labels, features, labels)
    1.0
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits
    except ImportError as error:
        raise ImportError(
            "linear_probe_accuracy fits scikit-learn's LogisticRegression: "
            "pip install scikit-learn"
        ) from error
    train = _features("train_features", train_features)
    test = _features("test_features", test_features)
    _same_width(train, test)
    if len(test) == 0:
        raise ValueError(
            "`test_features` must have at least one row. Received: "
            f"test_features.shape={test.shape}"
        )
    y_train = _labels("train_labels", train_labels, len(train), False)
    y_test = _labels("test_labels", test_labels, len(test), False)
    _checks.positive_int("max_iter", max_iter)
    C = _checks.positive_float("C", C)
    if not isinstance(standardize, bool):
        raise ValueError(
            f"`standardize` must be True or False. Received: "
            f"standardize={standardize!r}"
        )
    train = train.astype("float64")
    test = test.astype("float64")
    if standardize:
        mean = train.mean(axis=0)
        std = train.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        train, test = (train - mean) / std, (test - mean) / std
    with threadpool_limits(limits=1):
        probe = LogisticRegression(max_iter=max_iter, C=C).fit(train, y_train)
        predictions = probe.predict(test)
    return float(np.mean(predictions == y_test))


def attention_masks(maps, mass=0.6):
    """Masks keeping the fewest patches that hold ``mass`` of each map.

    DINO's thresholded attention (Caron et al., arXiv:2104.14294, Section
    4.2.1 and Figure 3, with ``mass=0.6``; the official
    ``visualize_attention.py``): a map's values are sorted ascending and
    normalised to sum 1, and a patch is kept when the cumulative sum up to
    and including it exceeds ``1 - mass``. The kept patches are the largest
    ones, their total is at least ``mass``, and it falls below ``mass``
    without the smallest of them.

    Equal values are ordered by a stable sort, so at the boundary a tie
    keeps the patches that come later in row-major order; a uniform map
    keeps its last patches. ``mass=1`` keeps exactly the non-zero patches,
    and an all-zero map keeps none.

    Args:
        maps: ``(..., gh, gw)`` non-negative maps on the patch grid, e.g.
            ``(B, heads, gh, gw)`` from :func:`kvision.viz.cls_attention`
            (NumPy arrays or backend tensors); each trailing ``(gh, gw)``
            grid is thresholded on its own.
        mass: float in (0, 1], the share of each map's total to keep.

    Returns:
        Boolean NumPy array of the shape of ``maps``.

    Raises:
        ValueError: ``mass`` is out of range, or ``maps`` has fewer than
            two dimensions or negative or non-finite values.

    Example:

    >>> import numpy as np
    >>> grid = np.array([[0.5, 0.1], [0.3, 0.1]])
    >>> attention_masks(grid, mass=0.6)
    array([[ True, False],
           [ True, False]])
    """
    if (
        isinstance(mass, bool)
        or not isinstance(mass, (int, float))
        or not 0.0 < mass <= 1.0
    ):
        raise ValueError(f"`mass` must be in (0, 1]. Received: mass={mass!r}")
    maps = _to_numpy(maps)
    if maps.ndim < 2 or not np.issubdtype(maps.dtype, np.number):
        raise ValueError(
            "`maps` must be numeric with the patch grid as its last two "
            f"dimensions (..., gh, gw). Received: maps.shape={maps.shape}, "
            f"dtype={maps.dtype}"
        )
    maps = maps.astype("float64")
    if not np.all(np.isfinite(maps)) or np.any(maps < 0):
        raise ValueError(
            "`maps` must be finite and non-negative. Received: maps with "
            f"minimum {maps.min() if maps.size else None}"
        )
    flat = maps.reshape(*maps.shape[:-2], -1)
    order = np.argsort(flat, axis=-1, kind="stable")
    ascending = np.take_along_axis(flat, order, axis=-1)
    total = ascending.sum(axis=-1, keepdims=True)
    # An all-zero map has no mass to keep: dividing by 1 leaves it at zero.
    shares = ascending / np.where(total > 0, total, 1.0)
    kept = np.cumsum(shares, axis=-1) > 1.0 - mass
    masks = np.empty(flat.shape, bool)
    np.put_along_axis(masks, order, kept, axis=-1)
    return masks.reshape(maps.shape)


def class_token_features(model, images, batch_size=256):
    """A transformer backbone's class-token features, for k-NN and probes.

    DINO (Caron et al., arXiv:2104.14294, Section 4.1) evaluates the class
    token of the last block's normalised output. ``model`` is a headless
    backbone, e.g. ``create_model("vit_32px", include_top=False)``: a
    ``(B, N, C)`` token output gives token 0, the class token; a ``(B, C)``
    output (a pooled backbone, ``pooling="avg"``, the way to use models
    without a class token) is returned as it is.

    Args:
        model: a Keras model with a single output, ``(B, N, C)`` tokens
            with the class token first, or ``(B, C)`` features.
        images: ``(B, H, W, C)`` inputs as the model takes them (kvision
            models: floats in [0, 1]).
        batch_size: int, images per prediction batch.

    Returns:
        ``(B, C)`` float32 NumPy array.

    Raises:
        ValueError: the model's output is neither ``(B, N, C)`` nor
            ``(B, C)``.

    Example:

    A stand-in backbone whose tokens are the pixels (a kvision ViT with
    ``include_top=False`` is used the same way):

    >>> import keras
    >>> import numpy as np
    >>> inputs = keras.Input((2, 2, 3))
    >>> tokens = keras.layers.Reshape((4, 3))(inputs)  # (B, N, C)
    >>> backbone = keras.Model(inputs, tokens)
    >>> images = np.arange(24, dtype="float32").reshape(2, 2, 2, 3)
    >>> class_token_features(backbone, images)
    array([[ 0.,  1.,  2.],
           [12., 13., 14.]], dtype=float32)
    """
    _checks.positive_int("batch_size", batch_size)
    outputs = model.predict(images, batch_size=batch_size, verbose=0)
    shape = getattr(outputs, "shape", None)
    if shape is None or len(shape) not in (2, 3):
        shapes = keras.tree.map_structure(
            lambda x: getattr(x, "shape", None), outputs
        )
        raise ValueError(
            f"{model.name} must return one (B, N, C) token or (B, C) "
            f"feature array. Received: output shape {shapes}"
        )
    features = _to_numpy(outputs)
    if features.ndim == 3:
        features = features[:, 0]
    return features.astype("float32")
