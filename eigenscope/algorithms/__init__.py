"""Backend-neutral spectral algorithms: Lanczos, eigsh, trace, diagonal, spectral density.

Nothing here imports torch, JAX or CuPy: arrays are handled through the Array API namespace
of the operator and the helpers in :mod:`eigenscope.backends`. Where a framework compiles
every small eager operation (JAX), the public functions run their per-step arithmetic on the
host (see :mod:`._host`); results are the same, on the operator's framework and device.
"""

from . import _density, _diagonal, _eigsh, _lanczos, _trace
from ._density import SpectralDensity
from ._diagonal import DiagonalResult
from ._eigsh import EigshResult
from ._host import on_host
from ._lanczos import LanczosResult
from ._trace import TraceResult

eigsh = on_host(_eigsh.eigsh, inputs=("v0",), outputs=("eigenvectors",))
lanczos = on_host(
    _lanczos.lanczos,
    inputs=("v0",),
    outputs=("basis", "ritz_vectors"),
    # reorth="host" keeps the basis in host memory (a NumPy array) on every backend.
    host_outputs=lambda kwargs: ("basis",) if kwargs.get("reorth") == "host" else (),
)
spectral_density = on_host(_density.spectral_density, inputs=("probes",))
trace = on_host(_trace.trace, inputs=("probes",))
diagonal = on_host(_diagonal.diagonal, inputs=("probes",), outputs=("estimate", "std_error"))

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
