"""What makes two user functions "equal" for the compile cache, and the arrays they carry.

The functions given to a constructor (``loss_fn``, ``model_fn``, ...) are split like a pytree:
their array leaves (the state a :func:`~eigenscope.adapters.jax.nnx_model` holds fixed, a
``jax.tree_util.Partial``'s arguments) become arguments of the compiled per-batch function,
and everything else forms the cache key. A plain Python function is keyed on its code,
its globals, and the values it closes over when those can be compared safely (functions,
keyed the same way, numbers, strings, hashable objects compared by value): a new
``lambda`` with the same code and closure each training step then reuses the compiled
code. A function closing over an array, an unhashable value or an object compared by
identity (possibly mutable) is keyed by identity (its closed-over values are baked into the
compiled program, so only the same object is known to be equal).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

_CONSTANTS = (int, float, complex, str, bytes, bool, type(None), type(Ellipsis))
_MAX_DEPTH = 8
_ARRAY = object()  # marks where an array leaf goes back in


class Identity:
    """A key equal only to a key of the same object (and keeping that object alive)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other.obj is self.obj


@dataclass(frozen=True)
class FunctionKey:
    """The key of one user function: ``key`` for the cache, ``code`` (or ``None``) to
    recognise the same source compiled again, ``unsafe`` naming why it was keyed by identity."""

    key: Any
    code: types.CodeType | None
    unsafe: str | None


def _value_key(value: Any, depth: int) -> tuple[Any, str | None]:
    """``(key, reason)`` of a closed-over value; ``reason`` is set when it cannot be compared
    by value (then ``key`` is its identity)."""
    if isinstance(value, (jax.Array, np.ndarray)):
        return Identity(value), "an array"
    if isinstance(value, _CONSTANTS):
        return (type(value), value), None
    if isinstance(value, (types.FunctionType, functools.partial, types.MethodType)):
        fk = _function_key(value, depth + 1)
        return fk.key, fk.unsafe
    if isinstance(value, (types.ModuleType, type, types.BuiltinFunctionType)):
        return Identity(value), None
    if isinstance(value, tuple):
        parts = [_value_key(v, depth + 1) for v in value]
        reason = next((r for _, r in parts if r), None)
        return ("tuple", *(k for k, _ in parts)), reason
    try:
        hash(value)
    except TypeError:
        return Identity(value), f"a {type(value).__name__} (unhashable)"
    if type(value).__eq__ is object.__eq__:
        # Compared by identity: possibly mutable (a model object whose attributes change), so
        # a new function closing over it may compute something else than the compiled one.
        return Identity(value), f"a {type(value).__name__} (compared by identity)"
    return ("value", type(value), value), None


def _function_key(fn: Any, depth: int = 0) -> FunctionKey:
    if depth > _MAX_DEPTH:
        return FunctionKey(Identity(fn), None, "nested too deeply")
    if isinstance(fn, functools.partial):
        inner = _function_key(fn.func, depth + 1)
        args = [_value_key(a, depth + 1) for a in fn.args]
        kwargs = [(k, *_value_key(v, depth + 1)) for k, v in sorted(fn.keywords.items())]
        reason = inner.unsafe or next((r for _, r in args if r), None) or next((r for _, _, r in kwargs if r), None)
        key = ("partial", inner.key, tuple(k for k, _ in args), tuple((n, k) for n, k, _ in kwargs))
        return FunctionKey(Identity(fn) if reason else key, inner.code, reason)
    if isinstance(fn, types.MethodType):
        # A bound method of the same object is the same function (as before: methods compare
        # by their object's identity); only its code is keyed further.
        inner = _function_key(fn.__func__, depth + 1)
        self_key, reason = Identity(fn.__self__), inner.unsafe
        return FunctionKey(Identity(fn) if reason else ("method", inner.key, self_key), inner.code, reason)
    if not isinstance(fn, types.FunctionType):
        key, reason = _value_key(fn, depth)
        return FunctionKey(key, None, reason)
    parts: list[tuple[str, tuple[Any, str | None]]] = []
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell (a name assigned after the function was made)
            return FunctionKey(Identity(fn), fn.__code__, f"the closed-over name {name!r} is not yet bound")
        parts.append((name, _value_key(content, depth + 1)))
    defaults = [_value_key(v, depth + 1) for v in fn.__defaults__ or ()]
    kwdefaults = [(k, *_value_key(v, depth + 1)) for k, v in sorted((fn.__kwdefaults__ or {}).items())]
    reason = next((f"it closes over {name!r}, {r}" for name, (_, r) in parts if r), None)
    reason = reason or next((f"a default argument is {r}" for _, r in defaults if r), None)
    reason = reason or next((f"a default argument is {r}" for _, _, r in kwdefaults if r), None)
    if reason:
        return FunctionKey(Identity(fn), fn.__code__, reason)
    key = (
        "function",
        fn.__code__,
        Identity(fn.__globals__),
        tuple(k for _, (k, _) in parts),
        tuple(k for k, _ in defaults),
        tuple((n, k) for n, k, _ in kwdefaults),
    )
    return FunctionKey(key, fn.__code__, None)


@dataclass(frozen=True)
class Split:
    """User functions split into a cache key and the arrays they carry.

    ``key`` is hashable; ``arrays`` the array leaves (in ``tree_leaves`` order);
    :meth:`rebuild` puts arrays (tracers, inside ``jax.jit``) back in place of them.
    ``functions`` lists the :class:`FunctionKey` of every non-array leaf that has code.
    """

    key: Any
    arrays: tuple[Any, ...]
    treedef: Any
    static: tuple[Any, ...]
    functions: tuple[FunctionKey, ...]

    def rebuild(self, arrays: Any) -> Any:
        """The functions with ``arrays`` in place of their array leaves."""
        it = iter(arrays)
        leaves = [next(it) if leaf is _ARRAY else leaf for leaf in self.static]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)


def split(fns: tuple[Any, ...]) -> Split:
    """Split the user's functions (a pytree whose leaves are functions, arrays and
    constants) into a cache key and their array leaves."""
    leaves, treedef = jax.tree_util.tree_flatten(fns, is_leaf=lambda x: x is None)
    arrays, static, keys, functions = [], [], [], []
    for leaf in leaves:
        if isinstance(leaf, (jax.Array, np.ndarray)):
            arrays.append(leaf)
            static.append(_ARRAY)
            keys.append(("array", tuple(leaf.shape), str(leaf.dtype)))
            continue
        fk = _function_key(leaf)
        static.append(leaf)
        keys.append(fk.key)
        if fk.code is not None:
            functions.append(fk)
    return Split((treedef, tuple(keys)), tuple(arrays), treedef, tuple(static), tuple(functions))


def describe(fn: Callable[..., Any] | types.CodeType) -> str:
    """``name (file:line)`` of a function or code object, for messages."""
    code = fn if isinstance(fn, types.CodeType) else getattr(fn, "__code__", None)
    if code is None:
        return repr(fn)
    return f"{code.co_name} ({code.co_filename}:{code.co_firstlineno})"
