"""Verdicts computed from numbers: a claim is reproduced, not reproduced, or inconclusive.

A :class:`Measured` quantity holds one value per replicate (a training seed, a probe
draw). A :class:`Criterion` compares it with a threshold; its interval is the mean ± 2
standard errors over the replicates (one replicate: the value itself). A criterion is
*reproduced* when the whole interval lies on the claimed side of the threshold, *not
reproduced* when the whole interval lies on the other side, and *inconclusive at this
scale* when the interval straddles it. A :class:`Claim` holds one or more criteria: it is
reproduced when all are, not reproduced when any is not, and inconclusive otherwise. The
rule's text is generated from the same numbers, so the report never states a verdict by
hand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive at this scale"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)


@dataclass(frozen=True)
class Measured:
    """A quantity measured once per replicate.

    Parameters
    ----------
    name
        What was measured, as the report names it (``"mean cos of the top-10 principal angles"``).
    values
        One value per replicate (NaN values are dropped: a replicate that could not measure).
    """

    name: str
    values: tuple[float, ...]

    def __init__(self, name: str, values: float | Iterable[float]) -> None:
        vals = (values,) if isinstance(values, (int, float, np.floating, np.integer)) else tuple(values)
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "values", tuple(float(v) for v in vals if math.isfinite(float(v))))

    @property
    def count(self) -> int:
        """Number of (finite) replicates."""
        return len(self.values)

    @property
    def mean(self) -> float:
        """Mean over replicates (NaN when there is none)."""
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over replicates (0 for one replicate)."""
        return float(np.std(self.values, ddof=1)) if self.count > 1 else 0.0

    @property
    def stderr(self) -> float:
        """Standard error of the mean: std / √count."""
        return self.std / math.sqrt(self.count) if self.count > 1 else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        """mean ± 2 standard errors (the value itself for one replicate)."""
        return (self.mean - 2.0 * self.stderr, self.mean + 2.0 * self.stderr)

    def describe(self, digits: int = 3) -> str:
        """``"0.912 ± 0.013 (3 seeds)"``: mean ± standard error and the number of replicates."""
        if not self.values:
            return "not measured"
        if self.count == 1:
            return f"{self.mean:.{digits}g} (1 replicate)"
        return f"{self.mean:.{digits}g} ± {self.stderr:.2g} (mean ± s.e., {self.count} replicates)"

    def to_json(self) -> dict[str, Any]:
        """The quantity in ``results.json``."""
        return {
            "name": self.name,
            "values": list(self.values),
            "mean": _finite(self.mean),
            "stderr": _finite(self.stderr),
            "interval": [_finite(v) for v in self.interval],
        }


@dataclass(frozen=True)
class Criterion:
    """``quantity op threshold``, decided on the quantity's interval (see the module docstring)."""

    quantity: Measured
    op: Literal[">", "<"]
    threshold: float

    def __post_init__(self) -> None:
        if self.op not in (">", "<"):
            raise ValueError(f"op must be '>' or '<', got {self.op!r}")

    @property
    def verdict(self) -> str:
        """reproduced / not reproduced / inconclusive at this scale."""
        if self.quantity.count == 0:
            return INCONCLUSIVE
        lo, hi = self.quantity.interval
        above, below = lo > self.threshold, hi <= self.threshold
        if self.op == "<":
            above, below = hi < self.threshold, lo >= self.threshold
        if above:
            return REPRODUCED
        if below:
            return NOT_REPRODUCED
        return INCONCLUSIVE

    @property
    def rule(self) -> str:
        """The criterion in words."""
        return f"{self.quantity.name} {self.op} {self.threshold:g}"

    def to_json(self) -> dict[str, Any]:
        """The criterion in ``results.json``."""
        return {
            "rule": self.rule,
            "op": self.op,
            "threshold": self.threshold,
            "quantity": self.quantity.to_json(),
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class Claim:
    """A seed's claim and the criteria that decide it.

    Parameters
    ----------
    key
        A short identifier (``"top_subspaces_aligned"``).
    statement
        The seed's claim in one sentence.
    criteria
        What must hold for the claim to count as reproduced (all of them).
    context
        Further measured quantities shown beside the criteria (not part of the verdict).
    """

    key: str
    statement: str
    criteria: tuple[Criterion, ...]
    context: tuple[Measured, ...] = field(default=())

    def __init__(
        self, key: str, statement: str, criteria: Sequence[Criterion], context: Sequence[Measured] = ()
    ) -> None:
        if not criteria:
            raise ValueError("a claim needs at least one criterion")
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "statement", statement)
        object.__setattr__(self, "criteria", tuple(criteria))
        object.__setattr__(self, "context", tuple(context))

    @property
    def verdict(self) -> str:
        """Reproduced if every criterion is, not reproduced if any is not, else inconclusive."""
        verdicts = [c.verdict for c in self.criteria]
        if all(v == REPRODUCED for v in verdicts):
            return REPRODUCED
        if any(v == NOT_REPRODUCED for v in verdicts):
            return NOT_REPRODUCED
        return INCONCLUSIVE

    @property
    def rule(self) -> str:
        """The decision rule in words, generated from the criteria."""
        parts = " and ".join(c.rule for c in self.criteria)
        return (
            f"reproduced if {parts}, with the whole interval mean ± 2 s.e. over the replicates on the claimed side "
            "of each threshold; not reproduced if the whole interval of any criterion is on the other side; "
            "inconclusive at this scale otherwise"
        )

    def to_json(self) -> dict[str, Any]:
        """The claim in ``results.json``."""
        return {
            "key": self.key,
            "statement": self.statement,
            "verdict": self.verdict,
            "rule": self.rule,
            "criteria": [c.to_json() for c in self.criteria],
            "context": [m.to_json() for m in self.context],
        }


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
