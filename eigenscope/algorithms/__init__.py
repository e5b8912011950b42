"""Backend-neutral spectral algorithms: Lanczos, eigsh, trace, diagonal, spectral density.

Nothing here imports torch, JAX or CuPy: arrays are handled through the Array
API namespace of the operator and the helpers in :mod:`eigenscope.backends`.
"""

from ._density import SpectralDensity, spectral_density
from ._diagonal import DiagonalResult, diagonal
from ._eigsh import EigshResult, eigsh
from ._lanczos import LanczosResult, lanczos
from ._trace import TraceResult, trace

__all__ = [
    "DiagonalResult",
    "EigshResult",
    "LanczosResult",
    "SpectralDensity",
    "TraceResult",
    "diagonal",
    "eigsh",
    "lanczos",
    "spectral_density",
    "trace",
]
