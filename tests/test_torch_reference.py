"""The plain-PyTorch references of benchmarks/torch_reference.py are the same
networks as kvision's: parameters, FLOPs and, with copied weights, logits."""

import re

import keras
import numpy as np
import pytest

if keras.backend.backend() != "torch":
    pytest.skip(
        "the PyTorch references are compared with kvision on the torch "
        "backend only",
        allow_module_level=True,
    )

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402
from torch.utils.flop_counter import sdpa_flop_count  # noqa: E402

from benchmarks.budgets import SMALL_MODELS as MODELS  # noqa: E402
from benchmarks.torch_reference import build_reference  # noqa: E402
from kvision.models import create_model  # noqa: E402
from kvision.models import model_config  # noqa: E402


def reference_and_kvision(name):
    torch.manual_seed(0)
    return build_reference(name), create_model(name)


@pytest.mark.parametrize("name", MODELS)
def test_same_parameter_count(name):
    reference, model = reference_and_kvision(name)
    parameters = sum(p.numel() for p in reference.parameters())
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert parameters == trainable
    # Keras' count_params() also counts BatchNorm's moving statistics, which
    # PyTorch keeps as buffers (ConvMixer only; the others have no BN).
    statistics = sum(
        b.numel()
        for key, b in reference.named_buffers()
        if key.endswith(("running_mean", "running_var"))
    )
    assert parameters + statistics == model.count_params()


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_and_optimizer_step(name):
    torch.manual_seed(0)
    reference = build_reference(name)
    images = torch.randn(2, 3, 32, 32)
    logits = reference(images)
    assert logits.shape == (2, model_config(name)["num_classes"])
    assert torch.isfinite(logits).all()

    optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in reference.parameters()]
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    loss.backward()
    optimizer.step()
    assert all(
        torch.isfinite(p.grad).all()
        for p in reference.parameters()
        if p.grad is not None
    )
    pairs = zip(before, reference.parameters(), strict=True)
    changed = [not torch.equal(b, a) for b, a in pairs]
    assert any(changed)


def cpu_sdpa_flops(query, key, value, *args, out_shape=None, **kwargs):
    return sdpa_flop_count(query, key, value)


def count_flops(function, *args):
    """FLOPs that ``torch.utils.flop_counter`` attributes to a call.

    FlopCounterMode counts matrix multiplications (mm, addmm, bmm, baddbmm,
    matmul's lowerings, einsum once lowered to bmm), convolutions (grouped
    ones included) and fused attention kernels, at 2 FLOPs per multiply-add;
    elementwise work (norms, activations, softmax, residuals) is not
    counted. On CPU, ``F.scaled_dot_product_attention`` runs
    ``aten._scaled_dot_product_flash_attention_for_cpu``, which the counter
    has no formula for (it counts the CUDA kernels only), so it is given
    torch's own SDPA formula (QKᵀ plus weights·V, like the two einsums kvision
    uses); without it the ViT references would miss their attention FLOPs.
    """
    cpu_sdpa = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    counter = FlopCounterMode(
        display=False, custom_mapping={cpu_sdpa: cpu_sdpa_flops}
    )
    with counter, torch.no_grad():
        function(*args)
    return counter.get_total_flops()


@pytest.mark.parametrize("name", MODELS)
def test_same_flops(name):
    reference, model = reference_and_kvision(name)
    reference_flops = count_flops(reference.eval(), torch.zeros(1, 3, 32, 32))
    kvision_flops = count_flops(model, torch.zeros(1, 32, 32, 3))
    assert reference_flops > 0
    assert reference_flops == pytest.approx(kvision_flops, rel=0.01)


# Copying kvision's weights into a reference: Keras weight paths to PyTorch
# state-dict keys (the references use kvision's layer names), then layouts.
RENAMES = (
    (r"^block_(\d+)/", r"blocks/\1/"),
    (r"^stage_(\d+)_block_(\d+)/", r"stages/\1/blocks/\2/"),
    (r"^stage_(\d+)_downsampling/", r"stages/\1/downsampling/"),
    (r"^(spt|patch_embedding)/", "tokenizer/"),
    (r"^class_token/token$", "class_token"),
    (r"^position_embedding/embedding$", "position_embedding"),
    (r"layer_scale/gamma$", "layer_scale"),
    (r"(kernel|gamma)$", "weight"),
    (r"beta$", "bias"),
    (r"moving_mean$", "running_mean"),
    (r"moving_variance$", "running_var"),
)


def torch_key(path):
    for pattern, replacement in RENAMES:
        path = re.sub(pattern, replacement, path)
    return path.replace("/", ".")


def torch_layout(path, value):
    if path.endswith("kernel") and value.ndim == 4:
        # (kh, kw, in, out) -> (out, in, kh, kw); depthwise (kh, kw, C, 1)
        # -> (C, 1, kh, kw).
        axes = (2, 3, 0, 1) if "depthwise" in path else (3, 2, 0, 1)
        return value.transpose(axes)
    if path.endswith("kernel"):
        return value.T  # Dense (in, out) -> Linear (out, in)
    return value


def copy_weights(model, reference):
    state = reference.state_dict()
    copied = set()
    for weight in model.weights:
        key = torch_key(weight.path)
        value = torch_layout(weight.path, keras.ops.convert_to_numpy(weight))
        # reshape: position embedding (N, D) -> (1, N, D), 1x1 conv kernels.
        state[key] = torch.from_numpy(value.copy()).reshape(state[key].shape)
        copied.add(key)
    assert copied == {k for k in state if not k.endswith("num_batches_tracked")}
    reference.load_state_dict(state)


def perturb(model, rng):
    """Moves norms, biases, statistics and LayerScale off their initial
    values (kernels are already random) so that every weight matters."""
    for weight in model.weights:
        if weight.path.endswith("kernel"):
            continue
        value = keras.ops.convert_to_numpy(weight)
        if weight.path.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, value.shape)
        else:
            value = value + rng.normal(0.0, 0.1, value.shape)
        weight.assign(value.astype("float32"))


@pytest.mark.parametrize("name", MODELS)
def test_same_logits_with_copied_weights(name):
    reference, model = reference_and_kvision(name)
    rng = np.random.default_rng(0)
    perturb(model, rng)
    copy_weights(model, reference)
    images = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    with torch.no_grad():
        logits = reference.eval()(torch.from_numpy(images).permute(0, 3, 1, 2))
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-4, atol=1e-4)
