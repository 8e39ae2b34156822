"""The parts of a pre-norm residual block that every block here shares.

``x + DropPath(LayerScale(branch(norm(x))))``, twice: once around the token
mixer, once around the channel MLP. The blocks of ViT, Swin, DaViT and
MetaFormer, and CaiT's class-attention block, differ in their token mixer
and norms; these helpers build and apply the rest, under the same weight
names.
"""

from kvision import _seeds
from kvision.layers.mlp import MLP
from kvision.layers.regularization import DropPath
from kvision.layers.regularization import LayerScale


def build_residual_parts(block, mlp_dim, layer_scale_init_value):
    """Sets ``block.mlp``, ``block.drop_path`` and ``block.scales``.

    The block must have ``activation``, ``dropout``, ``drop_path_rate`` and
    ``seed``; ``layer_scale_init_value=None`` means no LayerScale. The MLP
    and the scales are left unbuilt: the caller knows their input shapes.
    """
    policy = block.dtype_policy
    block.mlp = MLP(
        mlp_dim,
        activation=block.activation,
        dropout=block.dropout,
        seed=_seeds.child_seed(block.seed, "mlp"),
        dtype=policy,
        name="mlp",
    )
    block.drop_path = DropPath(
        block.drop_path_rate,
        seed=_seeds.child_seed(block.seed, "drop_path"),
        dtype=policy,
        name="drop_path",
    )
    block.scales = []
    if layer_scale_init_value is not None:
        block.scales = [
            LayerScale(layer_scale_init_value, dtype=policy, name=name)
            for name in ("layer_scale1", "layer_scale2")
        ]


def add_residual(block, x, branch, index, training):
    """``x + DropPath(LayerScale_index(branch))``: index 0 is the token
    mixer's branch, 1 the MLP's."""
    if block.scales:
        branch = block.scales[index](branch)
    return x + block.drop_path(branch, training=training)
