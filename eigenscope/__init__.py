"""eigenscope: spectra of huge implicit matrices on NumPy, PyTorch, JAX and CuPy.

Importing eigenscope imports neither torch nor JAX; the adapters
(``eigenscope.adapters.torch``, ``eigenscope.adapters.jax``) are imported explicitly.
"""

from ._warnings import ConvergenceWarning, EigenscopeWarning
from .algorithms import (
    DiagonalResult,
    EigshResult,
    LanczosResult,
    SpectralDensity,
    TraceResult,
    diagonal,
    eigsh,
    lanczos,
    spectral_density,
    trace,
)
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
    "ConvergenceWarning",
    "DenseOperator",
    "DiagonalOperator",
    "DiagonalResult",
    "EigenscopeWarning",
    "EigshResult",
    "IdentityOperator",
    "LanczosResult",
    "LinearOperator",
    "LowRankOperator",
    "SpectralDensity",
    "TraceResult",
    "__version__",
    "add",
    "aslinearoperator",
    "block_diag",
    "compose",
    "deflate",
    "diagonal",
    "eigsh",
    "lanczos",
    "scale",
    "shift",
    "spectral_density",
    "trace",
    "transpose",
]
