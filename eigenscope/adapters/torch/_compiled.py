"""Compiled per-batch products (``compile=``): when to compile, checked against eager, reported.

A kernel's :meth:`~Kernel.functional` product — one pure ``torch.func`` function of the
parameters, a batch and one vector — is wrapped in ``torch.compile`` (whole graph, static
shapes) for the input shapes of batch 0; batches of other shapes (a shorter last batch) run
eagerly rather than pay a second compilation. Before its first use the compiled product is
checked against the eager one on batch 0; a failure to compile or a mismatch turns it off
with one warning naming the reason, and the operator goes on eagerly.

``compile="auto"`` compiles only when the run is announced long enough to pay the compile
time back (see :meth:`CompiledProduct.worth_compiling`). Compile times and the measured
speed of each compiled product are kept in a small index beside torch's on-disk compile
cache, so that a second run knows its compilation is warm and how much it saves.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import torch

from ... import linop
from ._kernel import Kernel, ProductFn, check_loss

CompileArg = bool | Literal["auto"]

# The "auto" rule (CompiledProduct.worth_compiling). Warm: the saving predicted from the
# measured compiled/eager ratio must reach WARM_MARGIN × the measured compile time. Cold: the
# planned eager time must reach COLD_RUN_S, so that even a 3-minute compilation that saves
# nothing costs at most 5 % of the run.
WARM_MARGIN = 1.5
# A ratio is measured once, on one batch: above this it is within the noise of "no faster".
MAX_RATIO = 0.8
WARM_FROM_COLD = 0.5  # warm compile time guessed from a cold one until a warm one is measured
COLD_RUN_S = 3600.0
_INDEX_NAME = "eigenscope_compiled_products.json"


def _cache_dir() -> str:
    try:
        from torch._inductor.runtime.cache_dir_utils import cache_dir

        return str(cache_dir())
    except Exception:  # a torch without that helper: its documented default
        user = os.environ.get("USER", "user")
        return os.environ.get("TORCHINDUCTOR_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"torchinductor_{user}"))


def _structure(obj: Any) -> Any:
    """Shapes and dtypes of a batch's tensors, in the batch's nesting."""
    if isinstance(obj, torch.Tensor):
        return ("T", tuple(obj.shape), str(obj.dtype), obj.device.type)
    if isinstance(obj, dict):
        return tuple((str(k), _structure(v)) for k, v in obj.items())
    if isinstance(obj, (tuple, list)):
        return tuple(_structure(v) for v in obj)
    return repr(obj)


class CompileIndex:
    """Compile times and speeds of compiled products, by signature, in a JSON file in torch's
    compile cache directory (cleared with it, so a record never outlives the cache it describes)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or os.path.join(_cache_dir(), _INDEX_NAME)

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path) as f:
                data = json.load(f)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def get(self, key: str) -> dict[str, Any] | None:
        """The record of ``key``, or ``None``."""
        record = self._read().get(key)
        return record if isinstance(record, dict) else None

    def update(self, key: str, **values: float) -> None:
        """Merge ``values`` into the record of ``key`` (best effort: an unwritable cache
        directory only costs the next run its knowledge)."""
        data = self._read()
        record = data.get(key) if isinstance(data.get(key), dict) else {}
        record.update(values)
        data[key] = record
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            os.replace(tmp, self.path)
        except OSError:
            pass


def compile_signature(kernel: Kernel, model: torch.nn.Module, loss: Any, spec: Any) -> tuple[Any, ...]:
    """What a compiled product depends on besides the batch shapes (part of the index's key):
    the kernel, the model's class and structure, the selected parameters, the loss, the mode."""
    return (
        type(kernel).__qualname__,
        f"{type(model).__module__}.{type(model).__qualname__}",
        hashlib.sha1(repr(model).encode()).hexdigest(),
        tuple((name, tuple(shape)) for name, shape in zip(spec.names, spec.shapes, strict=True)),
        str(spec.dtype),
        spec.device.type,
        getattr(loss, "__qualname__", type(loss).__qualname__),
        model.training,
    )


class CompiledProduct:
    """The compiled product of one operator, and the decision to use it.

    Attributes
    ----------
    how : bool | "auto"
        ``compile=`` as given.
    active : bool
        Whether products now run compiled.
    compile_seconds : float
        Wall time spent compiling (and checking) so far.
    reason : str | None
        Why the products run eagerly, when they do (``None`` while undecided).
    """

    def __init__(self, kernel: Kernel, fmodel: Any, *, how: CompileArg, signature: tuple[Any, ...]) -> None:
        self.how = how
        self._fmodel = fmodel
        self._fn: ProductFn | None = kernel.functional() if how else None
        self.active = False
        self.failed = False
        self.compile_seconds = 0.0
        self.reason: str | None = None if self._fn is not None else "compile=False" if not how else "no compiled form"
        self._compiled: Callable[..., Any] | None = None
        self._shape: Any = None
        self._signature = signature
        self._key: str | None = None
        self._index = CompileIndex()
        # Eager products timed, and the fastest per vector after the first (which also builds
        # the graph cache of batches 1, 2, ...).
        self._eager_count = 0
        self._eager_s: float | None = None
        self._ratio_saved = False
        self._just_compiled = False
        # Vectors multiplied so far within each announced run (an inner run, such as the
        # deflation's eigsh inside a density, must not reset the outer run's count).
        self._done: weakref.WeakKeyDictionary[linop.Plan, int] = weakref.WeakKeyDictionary()
        self._judged: weakref.WeakSet[linop.Plan] = weakref.WeakSet()
        self._record: dict[str, Any] = {}  # this product's index record, as read for _record_plan
        self._record_plan: linop.Plan | None = None

    # ---- the decision --------------------------------------------------------------
    def key(self, inputs: Any, targets: Any) -> str:
        """The signature of this product on batch 0's shapes (the index's key)."""
        if self._key is None:
            parts = (*self._signature, _structure(inputs), _structure(targets), torch.__version__)
            self._key = hashlib.sha1(repr(parts).encode()).hexdigest()
        return self._key

    def wanted(self, vectors: int, first_batch: Callable[[], tuple[Any, Any]]) -> bool:
        """Whether this product of ``vectors`` vectors should run compiled (compiling first if
        needed is the caller's next step)."""
        plan = linop.current_plan()
        done = 0 if plan is None else self._done.get(plan, 0)
        if plan is not None:
            self._done[plan] = done + vectors
        if self._fn is None or self.failed:
            return False
        if self.active or self.how is True:
            return True
        worth, why = self.worth_compiling(plan, done, first_batch)
        if worth or plan is None or plan not in self._judged:
            # The reason of a run's first judgement: later ones only see fewer products left.
            self.reason = None if worth else why
            if plan is not None and why.startswith(("predicted", "cold")):
                self._judged.add(plan)
        return worth

    def worth_compiling(
        self, plan: linop.Plan | None, done: int, first_batch: Callable[[], tuple[Any, Any]]
    ) -> tuple[bool, str]:
        """The ``"auto"`` rule: compile when the products still planned for this run are
        predicted to save more than the compilation costs, with a margin.

        - Without an announced product count (:func:`eigenscope.linop.planned_products`;
          the algorithms announce theirs) or before one eager product was timed: eager.
        - Warm (an earlier run compiled this product: torch's on-disk cache holds it and the
          index its compile time and its compiled/eager ratio ``r``, both measured then):
          compile when ``r`` ≤ 0.8 (a single batch's ratio above that is within the noise of
          "no faster") and remaining products × eager seconds per product × (1 − r) is ≥ 1.5 ×
          that compile time. On this CPU ``r`` measured 0.87–0.90 on one batch and 0.97–1.17 over
          full products against the cached eager ones (``bench_compile``), so "auto" stays
          eager there.
        - Cold (no record): compile only when the remaining products would take an hour
          eagerly: a cold compilation (1–6 minutes on a 2-core CPU) that saved nothing would
          then cost at most 5 % of the run; a short run is never gambled.
        """
        if plan is None:
            return False, "no product count announced"
        if self._eager_s is None:
            # The first product also builds the cached graphs of batches 1, 2, ...: too slow to judge by.
            return False, "eager products not timed yet"
        eager_s = self._eager_s
        remaining = max(plan.count - done, 0)
        if self._record_plan is not plan:
            # Read once per announced run, not at every product (it is a file).
            self._record = self._index.get(self.key(*first_batch())) or {}
            self._record_plan = plan
        record = self._record
        warm, cold, ratio = record.get("warm_s"), record.get("cold_s"), record.get("ratio")
        if isinstance(warm, (int, float)) or isinstance(cold, (int, float)):
            if not isinstance(ratio, (int, float)):
                return False, "compiled/eager ratio not measured: no saving predicted"
            r = min(float(ratio), 1.0)
            if r > MAX_RATIO:
                return False, f"compiled/eager {r:.2f} measured by an earlier run: no clear saving (> {MAX_RATIO})"
            saving = remaining * eager_s * (1 - r)
            cost = float(warm) if isinstance(warm, (int, float)) else WARM_FROM_COLD * float(cold)
            if saving >= WARM_MARGIN * cost:
                return True, ""
            return False, (
                f"predicted saving {saving:.1f} s (compiled/eager {r:.2f}) < {WARM_MARGIN} × warm compile {cost:.1f} s"
            )
        planned = remaining * eager_s
        if planned >= COLD_RUN_S:
            return True, ""
        return False, f"cold compile cache; planned eager time {planned:.0f} s < {COLD_RUN_S:.0f} s"

    def timed(self, seconds: float, vectors: int, compiled: bool) -> None:
        """Record one product's wall time (``vectors`` vectors)."""
        per = seconds / max(vectors, 1)
        if not compiled:
            self._eager_count += 1
            if self._eager_count > 1:
                self._eager_s = per if self._eager_s is None else min(self._eager_s, per)
        elif self._just_compiled:
            self._just_compiled = False  # that product's time includes the compilation
        elif not self._ratio_saved and self._eager_s is not None and self._key is not None:
            # Once per operator: what the next run's "auto" predicts its saving from.
            self._index.update(self._key, ratio=min(per / self._eager_s, 1.0))
            self._ratio_saved = True

    # ---- running it ------------------------------------------------------------------
    def matches(self, inputs: Any, targets: Any) -> bool:
        """Whether a batch has the shapes the product was compiled for."""
        return self._shape is None or _structure((inputs, targets)) == self._shape

    def apply(
        self,
        params: list[torch.Tensor],
        inputs: Any,
        targets: Any,
        vs: list[torch.Tensor],
        index: int,
        eager: Callable[[list[torch.Tensor]], list[torch.Tensor]],
    ) -> list[torch.Tensor] | None:
        """``M_b`` times the block ``vs`` (one ``(b, *shape)`` tensor per parameter), compiled;
        compiles and checks first if needed (``eager(vs)`` gives the eager product to check
        against). ``None`` when compiling failed: the caller then runs eagerly."""
        theta = [p.detach() for p in params]
        if self._compiled is not None:
            return self._run(theta, inputs, targets, vs, index)
        run = partial(self._run, theta, inputs, targets, vs, index)
        return self._start(self.key(inputs, targets), _structure((inputs, targets)), run, partial(eager, vs), theta[0])

    def _run(self, theta: list[torch.Tensor], inputs: Any, targets: Any, vs: list[torch.Tensor], index: int) -> Any:
        assert self._compiled is not None
        columns = []
        with self._fmodel.calling():
            for j in range(vs[0].shape[0]):
                hv, loss = self._compiled(theta, inputs, targets, [v[j] for v in vs])
                if j == 0:
                    check_loss(loss, index)
                columns.append(hv)
        return [torch.stack(parts) for parts in zip(*columns, strict=True)]

    def _start(
        self, key: str, shape: Any, run: Callable[[], Any], eager: Callable[[], Any], like: torch.Tensor
    ) -> list[torch.Tensor] | None:
        """Compile, run the first compiled product (``run()``), check it against ``eager()``,
        time both for the index; ``None`` (with one warning) on a failure or a mismatch."""
        warm = self._index.get(key) is not None
        start = time.perf_counter()
        try:
            self._compiled = torch.compile(self._fn, fullgraph=True, dynamic=False)
            self._shape = shape
            with warnings.catch_warnings():
                # torch's own compiler stack scripts helpers with its deprecated torch.jit.
                warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=Warning)
                result = run()
        except FloatingPointError:
            self._compiled = None  # not checked yet: never run it unchecked
            raise
        except Exception as exc:  # anything torch.compile cannot capture or lower
            return self._fail(f"torch.compile failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
        finally:
            self.compile_seconds += time.perf_counter() - start
        start = time.perf_counter()
        reference = eager()
        eager_seconds = time.perf_counter() - start
        error = max(_relative_error(r, c) for r, c in zip(reference, result, strict=True))
        eps = torch.finfo(like.dtype).eps if like.is_floating_point() else 2.0**-52
        tol = 10 * math.sqrt(eps)
        if not error <= tol:  # NaN fails too
            return self._fail(f"the compiled product differs from the eager one by {error:.1e} (tolerance {tol:.1e})")
        # One more compiled batch product, timed against the eager one just run: the
        # compiled/eager ratio the next run's "auto" predicts its saving from.
        start = time.perf_counter()
        run()
        ratio = (time.perf_counter() - start) / max(eager_seconds, 1e-9)
        timing = {"warm_s": self.compile_seconds} if warm else {"cold_s": self.compile_seconds}
        self._index.update(key, ratio=min(ratio, 1.0), **timing)
        self.active = True
        self.reason = None
        self._just_compiled = True
        return reference  # the eager product: exact, and already paid for

    def _fail(self, reason: str) -> None:
        self.failed, self.active, self.reason = True, False, reason
        self._compiled = None
        warnings.warn(f"compiled curvature products turned off, products run eagerly: {reason}", stacklevel=6)
        return None


def _relative_error(reference: torch.Tensor, other: torch.Tensor) -> float:
    """``‖a − b‖ / max(‖a‖, ‖b‖)`` (0 for two zero tensors)."""
    scale = max(float(reference.norm()), float(other.norm()))
    return 0.0 if scale == 0 else float((reference - other).norm()) / scale


class CompileReport:
    """The operator's view of its :class:`CompiledProduct` (held as ``_compiled``)."""

    _compiled: CompiledProduct

    @property
    def compile(self) -> bool | str:
        """``compile=`` as given: ``True``, ``False`` or ``"auto"``."""
        return self._compiled.how

    @property
    def compiled(self) -> bool:
        """Whether products now run through the compiled per-batch product."""
        return self._compiled.active

    @property
    def compile_seconds(self) -> float:
        """Seconds spent compiling the product (and checking it against the eager one)."""
        return self._compiled.compile_seconds

    @property
    def compile_reason(self) -> str | None:
        """Why products run eagerly, when they do and the operator decided (else ``None``)."""
        return None if self._compiled.active else self._compiled.reason
