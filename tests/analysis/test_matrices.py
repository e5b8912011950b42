"""The application's public surface: metrics re-exported, matrices from the registry, one name each."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from eigenscope import analysis as ea
from eigenscope import metrics as em
from eigenscope.adapters import KINDS

ANALYSIS = Path(ea.__file__).parent
CLI = ANALYSIS.parent / "cli.py"

# Every name eigenscope.analysis exported before the metrics moved to eigenscope.metrics.
EXPORTED_BEFORE = [
    "MATRICES",
    "CountingOperator",
    "CurvatureReport",
    "DensityGrid",
    "LossCurve",
    "LossSurface",
    "PrincipalAngles",
    "ProgressFactory",
    "SpectralEnergy",
    "Tracking",
    "analyze_curvature",
    "as_density",
    "common_grid",
    "curvature_operator",
    "density_from_eigenvalues",
    "density_kl",
    "density_wasserstein",
    "gradient_fraction",
    "gradient_fraction_profile",
    "load_checkpoint",
    "loss_along",
    "loss_surface",
    "negative_mass",
    "no_progress",
    "normalized_inner_product",
    "orthonormalize",
    "outlier_ratio",
    "plot_densities",
    "plot_density",
    "plot_loss_curves",
    "plot_loss_surface",
    "plot_principal_angles",
    "plot_stem",
    "plot_tracking",
    "principal_angles",
    "read_checkpoint",
    "save_figure",
    "spectral_energy",
    "tqdm_progress",
    "track",
]


def test_analysis_keeps_every_name_and_the_metrics_are_those_of_eigenscope_metrics():
    assert set(EXPORTED_BEFORE) <= set(ea.__all__)
    for name in set(em.__all__) & set(ea.__all__):
        assert getattr(ea, name) is getattr(em, name), name


def test_matrices_are_the_registry_and_gradcov_is_the_old_name():
    assert ea.MATRICES == tuple(KINDS) == ("hessian", "ggn", "gradient_covariance")
    assert dict(ea.OLD_MATRIX_NAMES) == {"gradcov": "gradient_covariance"}
    assert ea.matrix_name("gradcov") == "gradient_covariance"
    assert ea.matrix_name("hessian") == "hessian" and ea.matrix_name("fisher") == "fisher"
    s = ea.AnalyzeSettings(matrix="gradcov", compare="gradcov")
    assert (s.matrix, s.compare) == ("gradient_covariance", "gradient_covariance")
    s.validate()
    with pytest.raises(ea.JobError, match="--matrix must be one of hessian, ggn, gradient_covariance"):
        ea.AnalyzeSettings(matrix="fisher").validate()


def test_settings_derive_their_defaults():
    demo = ea.AnalyzeSettings()
    assert demo.compare_matrix() == "gradient_covariance" and demo.num_threads() == 1
    assert ea.AnalyzeSettings(matrix="gradient_covariance").compare_matrix() is None
    user = ea.AnalyzeSettings(model="m:f", data="d:f")
    assert user.compare_matrix() is None and ea.AnalyzeSettings(compare="ggn").compare_matrix() == "ggn"
    assert (demo.bottom_pairs(100), ea.AnalyzeSettings(matrix="ggn").bottom_pairs(100), demo.bottom_pairs(2)) == (
        3,
        0,
        1,
    )
    with pytest.raises(ea.JobError, match="--k 10 must be smaller"):
        demo.check_sizes(10, None)
    json = demo.to_json(k_bottom=3, num_classes=10)
    assert (json["compare"], json["k_bottom"], json["num_classes"], json["threads"]) == (
        "gradient_covariance",
        3,
        10,
        1,
    )


def _imports(path: Path) -> list[str]:
    """Absolute names of the modules ``path`` imports from (relative imports resolved in eigenscope)."""
    package = ["eigenscope", *path.parent.relative_to(ANALYSIS.parent).parts]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            out += [f"{module}.{a.name}" for a in node.names] if not node.module else [module]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return out


@pytest.mark.parametrize("path", [*sorted(ANALYSIS.glob("*.py")), CLI], ids=lambda p: p.name)
def test_no_private_module_of_another_package_is_imported(path):
    own = "eigenscope.analysis" if path.parent == ANALYSIS else "eigenscope"
    for module in _imports(path):
        if not module.startswith("eigenscope"):
            continue
        parts = module.split(".")
        private = [i for i, p in enumerate(parts) if p.startswith("_") and p != "__version__"]
        if not private:
            continue
        inside = ".".join(parts[: private[0]])
        assert inside == own, (path.name, module)
    assert "eigenscope.algorithms" not in {m.rsplit(".", 1)[0] for m in _imports(path)}, path.name
