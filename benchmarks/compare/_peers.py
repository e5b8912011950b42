"""Each tool's way of doing each task, with its product function metered.

Every runner takes ``(setup, meter, **settings)`` and returns a small outcome dict
(eigenvalues, an estimate, a stem measure). It builds the tool's operator inside the
run, so construction is part of the time a user waits for. Products are counted where
each tool multiplies:

- eigenscope: ``CurvatureOperator._matmat`` (a block of b vectors counts b);
- PyHessian: ``hessian.dataloader_hv_product`` (one vector, all batches);
- curvlinops: the SciPy ``LinearOperator`` ARPACK calls (``to_scipy()``: NumPy float64 in and
  out, torch float32 products);
- hessian-eigenthings: ``HessianOperator.matvec``.

PyHessian 0.1's ``density()`` calls ``torch.eig``, deprecated in PyTorch 1.9 and removed since
(the name remains, as a stub that raises). :func:`torch_eig_shim` puts back exactly that call, built on
``torch.linalg.eigh`` (the tridiagonal matrix is symmetric, so the eigenvalues are real and
the old ``(n, 2)`` real/imaginary layout has a zero second column); nothing else of
PyHessian is changed.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

import eigenscope as es

from ._timing import Meter
from ._workloads import Setup, unfused_attention

TOOLS = ("eigenscope", "pyhessian", "curvlinops", "eigenthings")
LABELS = {
    "eigenscope": "eigenscope",
    "pyhessian": "PyHessian",
    "curvlinops": "curvlinops + ARPACK",
    "eigenthings": "hessian-eigenthings",
}


def _eig_shim(a: torch.Tensor, eigenvectors: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.eig`` as PyTorch < 1.9 had it, for a symmetric input: ``(values (n, 2), vectors)``."""
    w, v = torch.linalg.eigh(a)
    values = torch.stack([w, torch.zeros_like(w)], dim=1)
    return values, (v if eigenvectors else a.new_empty(0))


@contextlib.contextmanager
def torch_eig_shim() -> Iterator[None]:
    """``torch.eig`` available (built on ``torch.linalg.eigh``) while the block runs."""
    had = hasattr(torch, "eig")
    old = getattr(torch, "eig", None)
    torch.eig = _eig_shim
    try:
        yield
    finally:
        if had:
            torch.eig = old
        else:
            del torch.eig


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # PyHessian calls loss.backward(create_graph=True), which warns about a reference cycle;
    # hessian-eigenthings and curvlinops may warn about non-converged pairs. The harness
    # judges accuracy itself, so these warnings are noise here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ---- eigenscope ----------------------------------------------------------------------------
def eigenscope_operator(setup: Setup, meter: Meter, **overrides: Any) -> es.LinearOperator:
    H = setup.eigenscope_hessian(**overrides)
    H._matmat = meter.wrap(H._matmat, columns=lambda args, out: args[0].shape[1])
    return H


def eigenscope_eigsh(
    setup: Setup, meter: Meter, *, k: int, which: str, tol: float, seed: int, method: str = "auto", **kw: Any
) -> dict[str, Any]:
    H = eigenscope_operator(setup, meter)
    with _quiet():
        r = es.eigsh(H, k, which=which, tol=tol, method=method, seed=seed, return_eigenvectors=False, **kw)
    return {"eigenvalues": r.eigenvalues.tolist(), "converged": bool(r.converged.all())}


def eigenscope_trace(
    setup: Setup,
    meter: Meter,
    *,
    method: str,
    rtol: float,
    seed: int,
    block_size: int | None = None,
    max_matvecs: int | None = None,
) -> dict[str, Any]:
    H = eigenscope_operator(setup, meter)
    with _quiet():
        r = es.trace(H, method=method, rtol=rtol, seed=seed, block_size=block_size, max_matvecs=max_matvecs)
    return {"estimate": r.estimate, "std_error": r.std_error, "converged": r.converged}


def eigenscope_density(setup: Setup, meter: Meter, *, num_steps: int, num_probes: int, seed: int) -> dict[str, Any]:
    H = eigenscope_operator(setup, meter)
    d = es.spectral_density(H, num_steps=num_steps, num_probes=num_probes, seed=seed)
    return {"nodes": d.nodes.tolist(), "weights": d.weights.tolist()}


# ---- PyHessian -----------------------------------------------------------------------------
def pyhessian_object(setup: Setup, meter: Meter) -> Any:
    from pyhessian import hessian as PyHessian

    model, loss_fn, batches = setup.pyhessian_inputs()
    h = PyHessian(model, loss_fn, dataloader=batches, cuda=setup.device.type == "cuda")
    h.dataloader_hv_product = meter.wrap(h.dataloader_hv_product)
    return h


def pyhessian_eigenvalues(setup: Setup, meter: Meter, *, k: int, tol: float, max_iter: int, seed: int) -> dict:
    with _quiet(), unfused_attention():
        h = pyhessian_object(setup, meter)
        torch.manual_seed(seed)
        values, _ = h.eigenvalues(maxIter=max_iter, tol=tol, top_n=k)
    return {"eigenvalues": sorted((float(v) for v in values), reverse=True)}


def pyhessian_trace(setup: Setup, meter: Meter, *, max_iter: int, tol: float, seed: int) -> dict[str, Any]:
    """PyHessian's ``trace()``: Hutchinson with Rademacher probes, stopping when the running
    mean moves by less than ``tol`` relative (``maxIter`` at most). Returns the per-probe values."""
    with _quiet(), unfused_attention():
        h = pyhessian_object(setup, meter)
        torch.manual_seed(seed)
        samples = h.trace(maxIter=max_iter, tol=tol)
    return {"estimate": float(np.mean(samples)), "samples": [float(s) for s in samples]}


def pyhessian_density(setup: Setup, meter: Meter, *, num_steps: int, num_probes: int, seed: int) -> dict[str, Any]:
    with _quiet(), unfused_attention(), torch_eig_shim():
        h = pyhessian_object(setup, meter)
        torch.manual_seed(seed)
        nodes, weights = h.density(iter=num_steps, n_v=num_probes)
    return {"nodes": np.asarray(nodes, dtype=float).tolist(), "weights": np.asarray(weights, dtype=float).tolist()}


# ---- curvlinops + ARPACK -------------------------------------------------------------------
def curvlinops_scipy(setup: Setup, meter: Meter) -> Any:
    from curvlinops import HessianLinearOperator
    from scipy.sparse.linalg import LinearOperator

    model, loss, batches, kwargs = setup.curvlinops_inputs()
    params = [p for p in model.parameters() if p.requires_grad]
    op = HessianLinearOperator(model, loss, params, batches, **kwargs).to_scipy()
    return LinearOperator(
        op.shape,
        matvec=meter.wrap(op.matvec),
        matmat=meter.wrap(op.matmat, columns=lambda args, out: args[0].shape[1]),
        dtype=op.dtype,
    )


def curvlinops_eigsh(setup: Setup, meter: Meter, *, k: int, which: str, tol: float, seed: int) -> dict[str, Any]:
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    with _quiet(), unfused_attention():
        A = curvlinops_scipy(setup, meter)
        v0 = np.random.default_rng(seed).standard_normal(A.shape[0])
        try:
            values = eigsh(A, k=k, which=which, tol=tol, v0=v0, return_eigenvectors=False)
            converged = True
        except ArpackNoConvergence as exc:
            values, converged = exc.eigenvalues, False
    values = np.sort(np.asarray(values, dtype=float))
    return {"eigenvalues": (values[::-1] if which == "LA" else values).tolist(), "converged": converged}


# ---- hessian-eigenthings -------------------------------------------------------------------
def eigenthings_operator(setup: Setup, meter: Meter) -> Any:
    from hessian_eigenthings import HessianOperator

    model, batch_loss, batches = setup.eigenthings_inputs()
    op = HessianOperator(model, batches, batch_loss)
    op.matvec = meter.wrap(op.matvec)
    return op


def eigenthings_lanczos(
    setup: Setup, meter: Meter, *, k: int, which: str, max_iter: int, seed: int, tol: float = 1e-4
) -> dict[str, Any]:
    from hessian_eigenthings import lanczos

    with _quiet(), unfused_attention():
        op = eigenthings_operator(setup, meter)
        r = lanczos(op, k=k, max_iter=max_iter, tol=tol, which=which, seed=seed, reorthogonalize=True)
    values = np.sort(r.eigenvalues.detach().double().cpu().numpy())
    return {"eigenvalues": (values[::-1] if which == "LA" else values).tolist()}


def available(tool: str) -> str | None:
    """``None`` when the tool can be imported, else the reason it cannot."""
    module = {"eigenscope": "eigenscope", "pyhessian": "pyhessian", "curvlinops": "curvlinops"}.get(
        tool, "hessian_eigenthings"
    )
    try:
        __import__(module)
    except ImportError as exc:
        return f"not installed ({exc.name})"
    return None
