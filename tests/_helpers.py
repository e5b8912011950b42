"""Small helpers shared by the tests."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np

import eigenscope as es
import eigenscope.backends as eb


def asarray(a, xp, dtype=None):
    """A float64 (or ``dtype``) copy of NumPy ``a`` on backend ``xp``'s default device."""
    dtype = xp.float64 if dtype is None else dtype
    return eb.from_numpy(np.asarray(a), xp=xp, dtype=dtype, device=eb.default_device(xp))


def host(x) -> np.ndarray:
    """NumPy float64 copy of any backend array."""
    return eb.to_numpy(x).astype(np.float64)


def rtol_for(dtype) -> float:
    """Relative tolerance for a few dense products of size ≤ 64 in ``dtype``."""
    return 1e-5 if eb.dtype_name(dtype) == "float32" else 1e-12


def dense(a, xp, dtype, symmetric=True):
    """A dense operator of backend ``xp`` from NumPy ``a``."""
    return es.DenseOperator(asarray(a, xp, dtype), symmetric=symmetric)


class Counting:
    """A matrix known only through user functions that count the columns they multiply."""

    def __init__(self, a):
        self.a = a
        self.columns = 0
        self.vector_calls = 0

    def matvec(self, x):
        self.vector_calls += 1
        self.columns += 1
        return self.a @ x

    def matmat(self, x):
        self.columns += x.shape[1]
        return self.a @ x

    def operator(self, xp, dtype):
        return es.LinearOperator.from_matvec(
            self.matvec,
            shape=tuple(self.a.shape),
            dtype=dtype,
            xp=xp,
            device=eb.device(self.a),
            matmat=self.matmat,
            symmetric=True,
        )


def max_examples(xp, default: int = 15, compiled: int = 4) -> int:
    """Hypothesis examples for a backend: JAX compiles every new shape, so it gets fewer."""
    return compiled if eb.backend_name(xp) == "jax" else default


def expected_eigenvalues(lam: np.ndarray, k: int, which: str) -> np.ndarray:
    """The k eigenvalues ``eigsh`` must return for spectrum ``lam``, in its output order
    (``"BE"``: ascending)."""
    s = np.sort(lam)
    if which == "LA":
        return s[::-1][:k]
    if which == "SA":
        return s[:k]
    if which == "LM":
        return lam[np.argsort(-np.abs(lam), kind="stable")][:k]
    return np.sort(np.concatenate([s[: k // 2], s[::-1][: (k + 1) // 2]]))


class HtmlText(HTMLParser):
    """The visible text and the ``src``/``href`` attributes of an HTML document."""

    def __init__(self, document: str) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.sources: list[str] = []
        self.tags: list[str] = []
        self.feed(document)
        self.close()
        self.text = " ".join(" ".join(self.parts).split())

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.sources.extend(value or "" for key, value in attrs if key in ("src", "href"))

    def assert_self_contained(self) -> None:
        """Every image is embedded; nothing is fetched from the network."""
        assert self.sources, "no figure in the report"
        assert all(s.startswith("data:image/png;base64,") for s in self.sources), self.sources


def rewrites_taken(monkeypatch, owner, name: str) -> list[bool]:
    """Wrap ``owner.name`` (a function returning a result or ``None`` where it declines) so that
    each call appends whether it returned a result; returns that list."""
    calls: list[bool] = []
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(owner, name, counted)
    return calls
