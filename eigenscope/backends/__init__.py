"""Backends: array namespaces, devices, dtypes, seeded probes and array updates.

The only layer (with the adapters) that names NumPy, torch, JAX or CuPy.
"""

from ._namespace import (
    SUPPORTED_DTYPE_NAMES,
    Array,
    backend_name,
    check_dtype,
    default_device,
    device,
    dtype_name,
    finfo_eps,
    from_numpy,
    has_float64,
    namespace,
    prefers_static_shapes,
    resolve_namespace,
    same_device,
    to_numpy,
)
from ._random import RandomSource, Seed, random_source
from ._update import set_column, set_columns, set_index

__all__ = [
    "SUPPORTED_DTYPE_NAMES",
    "Array",
    "RandomSource",
    "Seed",
    "backend_name",
    "check_dtype",
    "default_device",
    "device",
    "dtype_name",
    "finfo_eps",
    "from_numpy",
    "has_float64",
    "namespace",
    "prefers_static_shapes",
    "random_source",
    "resolve_namespace",
    "same_device",
    "set_column",
    "set_columns",
    "set_index",
    "to_numpy",
]
