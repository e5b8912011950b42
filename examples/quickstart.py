"""eigenscope in a minute: a dense matrix, then the Hessian of a small PyTorch model.

Run with ``python examples/quickstart.py`` (the second part needs torch).
"""

import numpy as np

import eigenscope as es
from eigenscope import analysis as ea


def dense_matrix() -> None:
    """Top-5 eigenvalues, trace and density of a 300×300 matrix with a known spectrum."""
    rng = np.random.default_rng(0)
    n = 300
    eigenvalues = np.concatenate([[50.0, 40.0, 30.0, 20.0, 10.0], rng.standard_normal(n - 5)])  # 5 outliers + bulk
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * eigenvalues) @ q.T

    top = es.eigsh(a, 5, which="LA", seed=0)
    print("top-5 eigenvalues:", np.round(top.eigenvalues, 6), f"({top.num_matvecs} matvecs)")
    tr = es.trace(a, 90, method="hutch++", seed=0)
    print(f"trace: {tr.estimate:.2f} ± {tr.std_error:.2f} (exact {eigenvalues.sum():.2f})")
    density = es.spectral_density(a, 60, 4, seed=0)
    energy = ea.spectral_energy(density)
    print(
        f"negative mass {ea.negative_mass(density):.3f} (exact {np.mean(eigenvalues < 0):.3f}), "
        f"L1 energy +{energy.l1_positive:.3f} / -{energy.l1_negative:.3f}"
    )


def torch_model() -> None:
    """The Hessian of a small classifier: extremal eigenvalues, trace, outliers, gradient."""
    import torch

    from eigenscope.adapters import torch as est

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    data = [(torch.randn(32, 10), torch.randint(0, 3, (32,))) for _ in range(4)]  # (inputs, targets) batches
    H = est.hessian(model, torch.nn.functional.cross_entropy, data)  # an es.LinearOperator, n = 227

    report = ea.analyze_curvature(
        H, k=3, k_bottom=1, num_steps=40, num_probes=2, trace_matvecs=30, gradient=H.gradient(), seed=0
    )
    print("Hessian top-3:", np.round(report.top.eigenvalues, 4), " bottom:", np.round(report.bottom.eigenvalues, 4))
    print(
        f"trace {report.trace.estimate:.3f}, outlier ratio λ1/λ3 {report.outlier_ratio:.2f}, "
        f"gradient fraction in top-3 {report.gradient_fraction[-1]:.3f}"
    )


if __name__ == "__main__":
    dense_matrix()
    try:
        import torch  # noqa: F401
    except ImportError:
        raise SystemExit("the second part needs torch: pip install 'eigenscope[torch]' torch==2.13.0") from None
    torch_model()
