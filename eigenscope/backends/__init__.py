"""Backends: array namespaces, devices, dtypes, seeded probes and array updates.

The only layer (with the adapters) that names NumPy, torch, JAX or CuPy. Each framework
is one :class:`Framework` object, looked up once with :func:`framework_of`; the functions
here are shorthands that ask it.
"""

from ._frameworks import TRACED_MESSAGE, Framework, Seed, TracedCallError, framework_of
from ._namespace import (
    SUPPORTED_DTYPE_NAMES,
    Array,
    all_finite,
    backend_name,
    check_dtype,
    check_eager,
    default_device,
    device,
    dtype_name,
    finfo_eps,
    from_numpy,
    has_float64,
    namespace,
    namespace_of_dtype,
    prefers_static_shapes,
    resolve_namespace,
    same_device,
    to_numpy,
)
from ._random import DISTRIBUTIONS, RandomSource, random_source
from ._sparse import ScipyLike, scipy_like
from ._update import set_column, set_columns, set_index, subtract_product, subtract_scaled

__all__ = [
    "DISTRIBUTIONS",
    "SUPPORTED_DTYPE_NAMES",
    "TRACED_MESSAGE",
    "Array",
    "Framework",
    "RandomSource",
    "ScipyLike",
    "Seed",
    "TracedCallError",
    "all_finite",
    "backend_name",
    "check_dtype",
    "check_eager",
    "default_device",
    "device",
    "dtype_name",
    "finfo_eps",
    "framework_of",
    "from_numpy",
    "has_float64",
    "namespace",
    "namespace_of_dtype",
    "prefers_static_shapes",
    "random_source",
    "resolve_namespace",
    "same_device",
    "scipy_like",
    "set_column",
    "set_columns",
    "set_index",
    "subtract_product",
    "subtract_scaled",
    "to_numpy",
]
