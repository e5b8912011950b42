"""Warnings eigenscope emits."""

from __future__ import annotations


class EigenscopeWarning(UserWarning):
    """Something was adjusted or is doubtful, and the result says so too."""


class ConvergenceWarning(EigenscopeWarning):
    """An iterative method spent its budget before reaching its tolerance."""
