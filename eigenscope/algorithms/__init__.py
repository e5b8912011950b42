"""Backend-neutral spectral algorithms: Lanczos, eigsh, trace, diagonal, spectral density.

Nothing here imports torch, JAX or CuPy: arrays are handled through the Array
API namespace of the operator and the helpers in :mod:`eigenscope.backends`.
"""

from ._density import SpectralDensity, spectral_density
from ._eigsh import EigshResult, eigsh
from ._lanczos import LanczosResult, lanczos

__all__ = [
    "EigshResult",
    "LanczosResult",
    "SpectralDensity",
    "eigsh",
    "lanczos",
    "spectral_density",
]
