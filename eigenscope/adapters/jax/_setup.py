"""What every JAX constructor does before its kernel: options, parameters, data, checks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._compile import compiled
from ._data import Batches
from ._operator import CurvatureOperator
from ._options import JaxOptions
from ._params import FlatParams, flatten_params
from ._sharding import resolve_mesh
from ._state import check_concrete, check_trainable


def check_callable(fn: Any, name: str, signature: str) -> None:
    """``TypeError`` unless ``fn`` is callable, naming the argument and its signature."""
    if not callable(fn):
        raise TypeError(f"{name} must be a callable {signature}, got {type(fn).__name__}")


def check_scalar(out: Any, what: str) -> None:
    """``out`` (from ``jax.eval_shape``) must be one floating-point scalar."""
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise ValueError(
            f"{what} must return one scalar array (the mean loss of the batch), got a {type(out).__name__}"
        )
    if out.shape != ():
        raise ValueError(
            f"{what} must return a scalar (the mean loss of the batch), got shape {out.shape}; reduce it with jnp.mean"
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"{what} must return a floating-point loss, got dtype {out.dtype}")


class Setup:
    """Parameters and data, validated once, and the operator built from them."""

    def __init__(self, params: Any, data: Iterable[Any], options: JaxOptions, who: str) -> None:
        check_concrete(params, who)
        check_trainable(params, options.allow_state)
        self.options = options
        self.sharding = resolve_mesh(options.mesh, options.data_axis)
        self.flat: FlatParams = flatten_params(params)
        if self.sharding is not None:
            # Replicated parameters: every device holds θ and the operator's vectors.
            self.flat = dataclasses.replace(self.flat, theta=jax.device_put(self.flat.theta, self.sharding.replicated))
        self.batches = Batches(
            data, device=self.flat.device, dtype=self.flat.dtype, sharding=self.sharding, fmt=options.batch_format
        )
        # Measured on CPU (benchmarks/bench_jax_adapters.py): unrolled beats vmap there.
        self.vectorize = options.resolve_vectorize(all(d.platform != "cpu" for d in self.flat.theta.devices()))
        self.loop_safe = False  # set by first_shape

    def first_shape(self, fn: Callable[..., Any]) -> Any:
        """The shape/dtype ``fn(θ, inputs, targets)`` returns on batch 0 (traced, not run).

        The same trace tells whether the model may run inside a loop of the compiled pass
        over the data (:attr:`loop_safe`).
        """
        inputs, targets = self.batches.first()
        jaxpr, shape = jax.make_jaxpr(fn, return_shape=True)(self.flat.theta, inputs, targets)
        on_cpu = any(d.platform == "cpu" for d in self.flat.theta.devices())
        self.loop_safe = not (on_cpu and _uses(jaxpr.jaxpr, _SLOW_IN_LOOPS_ON_CPU))
        return shape

    def operator(self, kind: str, fns: tuple[Any, ...], details: dict[str, Any] | None = None) -> CurvatureOperator:
        """The operator of ``kind`` (a name of :data:`eigenscope.adapters.KINDS`) for ``fns``."""
        options = self.options
        shared, arrays = compiled(kind, options.per, fns, self.flat.structure, self.vectorize, options.compiler_options)
        place = self.flat.device if self.sharding is None else self.sharding.replicated
        return CurvatureOperator(
            kind=kind,
            compiled=shared,
            fn_arrays=tuple(jax.device_put(a, place) for a in arrays),
            flat=self.flat,
            batches=self.batches,
            options=options,
            vectorize=self.vectorize,
            sharding=self.sharding,
            details=details,
            fuse=self.loop_safe,
        )


# XLA's CPU convolutions ran 20-30x slower inside a loop body (a lax.scan over the batches)
# than in straight-line code, and compiled minutes instead of seconds.
_SLOW_IN_LOOPS_ON_CPU = frozenset({"conv_general_dilated"})


def _uses(jaxpr: Any, names: frozenset[str]) -> bool:
    """Whether ``jaxpr`` or any jaxpr nested in it (jit, custom_vjp, cond, ...) applies a primitive in ``names``."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in names:
            return True
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns") and _uses(inner, names):
                    return True
    return False


def check_per_sample(op: CurvatureOperator, source: str, setup: Setup) -> None:
    """On batch 0: per-sample losses of shape ``(n_0,)`` whose mean is the batch loss."""
    inputs, targets = setup.batches.first()
    check = op._compiled.per_sample_and_mean
    n = setup.batches.batch_sizes[0]
    arrays = op._fn_arrays
    shape = jax.eval_shape(check, setup.flat.theta, arrays, inputs, targets)[0]
    if not isinstance(shape, jax.ShapeDtypeStruct) or shape.shape != (n,):
        got = shape.shape if isinstance(shape, jax.ShapeDtypeStruct) else type(shape).__name__
        raise ValueError(f"per-sample losses ({source}) have shape {got}, expected ({n},) on batch 0")
    values, value = jax.device_get(check(setup.flat.theta, arrays, inputs, targets))
    mean, value = float(np.mean(values)), float(value)
    if not np.isfinite(value):
        raise FloatingPointError(f"the loss of batch 0 is {value}")
    tol = 1e3 * float(jnp.finfo(setup.flat.dtype).eps) * max(1.0, abs(value))
    if not abs(mean - value) <= tol:  # also catches NaN
        raise ValueError(
            f"the mean of the per-sample losses ({source}) is {mean!r} but loss_fn gives {value!r} on batch 0; "
            "the loss is not a mean over independent samples (normalised by the whole batch, or coupling the "
            "samples): pass per_sample_loss=(params, inputs, targets) -> (batch_size,) whose mean is loss_fn"
        )
