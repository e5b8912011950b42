"""Linear operators: the protocol, concrete operators and the lazy algebra."""

from ._algebra import (
    BlockDiagonalOperator,
    DeflatedOperator,
    ProductOperator,
    ScaledOperator,
    ShiftedOperator,
    SumOperator,
    TransposeOperator,
    add,
    block_diag,
    compose,
    deflate,
    scale,
    shift,
    transpose,
)
from ._base import LinearOperator, SupportsMatmat
from ._budget import Plan, current_plan, planned_products
from ._checks import check_operand, check_shape
from ._operators import (
    CallableOperator,
    DenseOperator,
    DiagonalOperator,
    IdentityOperator,
    LowRankOperator,
    ScipyOperator,
    aslinearoperator,
)

__all__ = [
    "BlockDiagonalOperator",
    "CallableOperator",
    "DeflatedOperator",
    "DenseOperator",
    "DiagonalOperator",
    "IdentityOperator",
    "LinearOperator",
    "LowRankOperator",
    "Plan",
    "ProductOperator",
    "ScaledOperator",
    "ScipyOperator",
    "ShiftedOperator",
    "SumOperator",
    "SupportsMatmat",
    "TransposeOperator",
    "add",
    "aslinearoperator",
    "block_diag",
    "check_operand",
    "check_shape",
    "compose",
    "current_plan",
    "deflate",
    "planned_products",
    "scale",
    "shift",
    "transpose",
]
