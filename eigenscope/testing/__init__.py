"""Public test helpers: hypothesis strategies for operators with known spectra, and
conformance checks for any operator.

Importing this module needs ``hypothesis`` (the ``test`` extra); importing
eigenscope itself does not.
"""

from ._conformance import OperatorCheckError, check_operator
from ._strategies import (
    ADVERSARIAL_KINDS,
    adversarial_matrices,
    adversarial_spectra,
    operators_with_spectrum,
    orthogonal_matrix,
    spectra,
    symmetric_with_spectrum,
)
from ._tolerance import tolerance

__all__ = [
    "ADVERSARIAL_KINDS",
    "OperatorCheckError",
    "adversarial_matrices",
    "adversarial_spectra",
    "check_operator",
    "operators_with_spectrum",
    "orthogonal_matrix",
    "spectra",
    "symmetric_with_spectrum",
    "tolerance",
]
