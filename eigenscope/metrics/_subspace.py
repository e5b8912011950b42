"""Subspace metrics: gradient in the top eigenspace, principal angles, gradient alignment.

Vectors of length n (gradients, eigenvectors, parameter vectors) stay on their backend
(NumPy, torch, JAX, CuPy) and are handled through their Array API namespace; only k×k
matrices and scalars move to the host, where the results are returned as NumPy/floats.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.linalg

from .. import backends
from ..backends import Array


def _as_block(x: Array, xp: Any, name: str) -> Array:
    if x.ndim == 1:
        return xp.reshape(x, (x.shape[0], 1))
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (n,) or (n, k), got {tuple(x.shape)}")
    return x


def _as_vector(x: Array, name: str) -> Array:
    if x.ndim == 2 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got {tuple(x.shape)}")
    return x


def orthonormalize(vectors: Array) -> Array:
    """An orthonormal basis ``Q`` (n × k) of the span of ``vectors`` (n × k), by QR.

    Columns are processed in order (``span Q[:, :j] = span V[:, :j]`` for every j), so an
    ordered eigenbasis stays ordered. Eigenvectors from :func:`eigenscope.eigsh` are already
    orthonormal to working precision; this guards against vectors from elsewhere.

    Parameters
    ----------
    vectors : array, shape (n, k) or (n,)
        Linearly independent columns, any supported backend.

    Returns
    -------
    array, shape (n, k)
        Same backend, dtype and device.
    """
    xp = backends.namespace(vectors)
    v = _as_block(vectors, xp, "vectors")
    if v.shape[1] > v.shape[0]:
        raise ValueError(f"cannot orthonormalize {v.shape[1]} vectors of length {v.shape[0]}")
    q, _ = xp.linalg.qr(v)
    return q


def _sq_norm(xp: Any, x: Array) -> float:
    return float(backends.to_numpy(xp.sum(x * x)))


def _coefficients(g: Array, vectors: Array, assume_orthonormal: bool) -> tuple[np.ndarray, float]:
    """``(Qᵀg on the host (k,), ‖g‖²)``."""
    xp = backends.namespace(g, vectors)
    g = _as_vector(g, "g")
    v = _as_block(vectors, xp, "vectors")
    if v.shape[0] != g.shape[0]:
        raise ValueError(f"g has length {g.shape[0]} but the vectors have length {v.shape[0]}")
    q = v if assume_orthonormal else orthonormalize(v)
    coef = backends.to_numpy(xp.matmul(xp.permute_dims(q, (1, 0)), g)).astype(np.float64)
    return coef, _sq_norm(xp, g)


def gradient_fraction(g: Array, vectors: Array, *, assume_orthonormal: bool = False) -> float:
    """Fraction of the gradient's squared norm in a subspace, ``‖P g‖² / ‖g‖²``.

    ``P = QQᵀ`` is the orthogonal projector onto the span of ``vectors`` (typically the
    top-k Hessian eigenvectors; seed notes 000: gradient descent happens mostly in a tiny
    top subspace). ``Q`` is an orthonormal basis of that span (QR first, unless
    ``assume_orthonormal``), so ``‖Pg‖² = ‖Qᵀg‖²``.

    Parameters
    ----------
    g : array, shape (n,)
        The gradient (or any vector).
    vectors : array, shape (n, k)
        A basis of the subspace, same backend as ``g``.
    assume_orthonormal
        Skip the QR when the columns are known to be orthonormal.

    Returns
    -------
    float
        In ``[0, 1]``; ``nan`` when ``g = 0``.
    """
    coef, gg = _coefficients(g, vectors, assume_orthonormal)
    if gg == 0:
        return float("nan")
    return float(min(np.sum(coef**2) / gg, 1.0))


def gradient_fraction_profile(g: Array, vectors: Array, *, assume_orthonormal: bool = False) -> np.ndarray:
    """``‖P_j g‖² / ‖g‖²`` for the leading ``j = 1, …, k`` vectors (cumulative).

    ``P_j`` projects onto the span of ``vectors[:, :j]``; with eigenvectors sorted by
    eigenvalue this shows how the gradient fraction grows with the size of the top
    subspace. The last entry equals :func:`gradient_fraction`.

    Returns
    -------
    numpy.ndarray, shape (k,)
        Non-decreasing, in ``[0, 1]`` (``nan`` when ``g = 0``).
    """
    coef, gg = _coefficients(g, vectors, assume_orthonormal)
    if gg == 0:
        return np.full(coef.shape, np.nan)
    return np.minimum(np.cumsum(coef**2) / gg, 1.0)


class PrincipalAngles(NamedTuple):
    """Principal angles between two subspaces.

    For orthonormal bases ``Q₁`` (n × k₁) and ``Q₂`` (n × k₂), the cosines of the
    ``min(k₁, k₂)`` principal angles are the singular values of ``Q₁ᵀQ₂``:
    ``cos γᵢ = max uᵀv`` over unit ``u ∈ span Q₁``, ``v ∈ span Q₂`` orthogonal to the
    previous pairs (seed notes 004 compare the top eigenspaces of the Hessian and of the
    gradient second moment this way).

    Attributes
    ----------
    cosines : numpy.ndarray, shape (min(k₁, k₂),)
        Descending, in ``[0, 1]``: 1 for a shared direction, 0 for orthogonal ones.
    angles : numpy.ndarray, shape (min(k₁, k₂),)
        ``γᵢ`` in radians, ascending (small angles from the sines, which keeps them
        accurate where ``arccos`` is not).
    """

    cosines: np.ndarray
    angles: np.ndarray

    @property
    def degrees(self) -> np.ndarray:
        """The angles in degrees."""
        return np.degrees(self.angles)

    @property
    def overlap(self) -> float:
        """``mean cos² γᵢ = ‖Q₁ᵀQ₂‖_F² / min(k₁, k₂)``: 1 when one subspace contains the
        other, about ``max(k₁, k₂)/n`` for random subspaces."""
        return float(np.mean(self.cosines**2))


def principal_angles(a: Array, b: Array) -> PrincipalAngles:
    """Principal angles between ``span a`` and ``span b``.

    Both bases are orthonormalized (QR). The cosines are the singular values of
    ``Q_aᵀQ_b``; angles whose cosine² is at least 1/2 are taken from the sines, the
    singular values of ``Q_b − Q_a(Q_aᵀQ_b)`` (Björck & Golub 1973; as
    ``scipy.linalg.subspace_angles``). Arrays of length n stay on their backend; only
    k×k matrices reach the host.

    Parameters
    ----------
    a : array, shape (n, k₁)
    b : array, shape (n, k₂)
        Bases of the two subspaces (same backend and length).

    Returns
    -------
    PrincipalAngles
    """
    xp = backends.namespace(a, b)
    qa = orthonormalize(a)
    qb = orthonormalize(b)
    if qa.shape[0] != qb.shape[0]:
        raise ValueError(f"the bases have lengths {qa.shape[0]} and {qb.shape[0]}")
    if qa.shape[1] < qb.shape[1]:  # the angles are symmetric; project the smaller basis
        qa, qb = qb, qa
    m = xp.matmul(xp.permute_dims(qa, (1, 0)), qb)  # (k_a, k_b), k_a >= k_b
    cosines = np.clip(scipy.linalg.svdvals(backends.to_numpy(m).astype(np.float64)), 0.0, 1.0)
    residual = qb - xp.matmul(qa, m)
    _, r = xp.linalg.qr(residual)  # (k_b, k_b): the sines are its singular values
    sines = np.clip(np.sort(scipy.linalg.svdvals(backends.to_numpy(r).astype(np.float64))), 0.0, 1.0)
    from_cos = np.arccos(cosines)  # ascending
    from_sin = np.arcsin(sines)  # ascending
    angles = np.where(cosines**2 >= 0.5, from_sin, from_cos)
    return PrincipalAngles(cosines=cosines, angles=np.sort(angles))


def normalized_inner_product(g: Array, theta: Array, theta_star: Array) -> float:
    """Cosine between the gradient and the direction away from the optimum.

    ``⟨g, θ − θ*⟩ / (‖g‖ ‖θ − θ*‖)`` (seed notes 000): 1 when the gradient points exactly
    away from ``θ*`` (so that ``−g`` points straight at it), 0 when it is orthogonal to
    the way there. ``θ*`` is usually the final parameters of a training run and ``θ`` an
    earlier checkpoint.

    Parameters
    ----------
    g, theta, theta_star : array, shape (n,)
        Gradient at ``θ``, the parameters and the reference parameters (one backend).

    Returns
    -------
    float
        In ``[−1, 1]``; ``nan`` when ``g = 0`` or ``θ = θ*``.
    """
    xp = backends.namespace(g, theta, theta_star)
    g = _as_vector(g, "g")
    d = _as_vector(theta, "theta") - _as_vector(theta_star, "theta_star")
    if g.shape != d.shape:
        raise ValueError(f"g has shape {tuple(g.shape)} but theta - theta_star has shape {tuple(d.shape)}")
    gd = float(backends.to_numpy(xp.sum(g * d)))
    den = np.sqrt(_sq_norm(xp, g) * _sq_norm(xp, d))
    if den == 0:
        return float("nan")
    return float(np.clip(gd / den, -1.0, 1.0))
