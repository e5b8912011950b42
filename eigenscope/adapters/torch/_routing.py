"""Torch functions rerouted, inside a block, to equivalent forms with cheaper derivatives.

A ``TorchFunctionMode`` sees every call of a torch function made inside it, whoever makes it
(the model's modules, its functional code). Each route maps a function to a rewrite that
returns the same result computed otherwise, or ``None`` where it does not apply; the function
then runs as it is, as it does for calls the rewrite does not accept (an unexpected signature).
The model is never modified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from torch.overrides import TorchFunctionMode

Routes = Mapping[Callable[..., Any], Callable[..., Any]]


class _Rerouted(TorchFunctionMode):
    def __init__(self, routes: Routes) -> None:
        super().__init__()
        self.routes = routes

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        rewrite = self.routes.get(func)
        if rewrite is not None:
            try:
                out = rewrite(*args, **kwargs)
            except TypeError:  # a signature the rewrite does not know: leave it to torch
                out = None
            if out is not None:
                return out
        return func(*args, **kwargs)


@contextmanager
def rerouted(routes: Routes) -> Iterator[None]:
    """Inside the block, calls of the functions in ``routes`` go to their rewrites where those
    apply (nothing is entered for empty routes)."""
    if not routes:
        yield
        return
    with _Rerouted(routes):
        yield
