"""eigenscope: spectra of huge implicit matrices on NumPy, PyTorch, JAX and CuPy.

Importing eigenscope imports neither torch nor JAX; the adapters
(``eigenscope.adapters.torch``, ``eigenscope.adapters.jax``) are imported explicitly.
"""

from .linop import (
    BlockDiagonalOperator,
    DenseOperator,
    DiagonalOperator,
    IdentityOperator,
    LinearOperator,
    LowRankOperator,
    add,
    aslinearoperator,
    block_diag,
    compose,
    deflate,
    scale,
    shift,
    transpose,
)

__version__ = "0.1.0"

__all__ = [
    "BlockDiagonalOperator",
    "DenseOperator",
    "DiagonalOperator",
    "IdentityOperator",
    "LinearOperator",
    "LowRankOperator",
    "__version__",
    "add",
    "aslinearoperator",
    "block_diag",
    "compose",
    "deflate",
    "scale",
    "shift",
    "transpose",
]
