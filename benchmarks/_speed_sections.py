"""Sections of ``docs/benchmarks.md`` for the speed work outside the peer comparison: Krylov
bookkeeping at n = 10⁶–10⁷ (``krylov_overhead.json``) and compiled torch products
(``compile.json``). Each renders from its JSON file alone."""

from __future__ import annotations

from typing import Any

KRYLOV_TEXT = """\
float32, k = 5, torch on 1 thread; time outside the operator's products per product ("step"),
medians of the runs (the CNN: a fixed budget of ~60 products, so its eigsh row has no
verification). The diagonal operator costs one pass over n numbers per product; the CNN is a
ResNet-18-shaped network (1.1·10⁷ parameters, `eigenscope.adapters.torch.hessian` on 4
synthetic 16×16 images). "before" is the code before the change below, "after" with it, run on
different days of the shared 2-core machine: compare the ratios to ARPACK within a run
(÷ ARPACK), not the seconds. `lanczos` keeps a 100-vector (10⁶) or 40-vector (10⁷) basis
against ARPACK's 20 and re-orthogonalize at every step (`reorth="full"`, their default);
`reorth="partial"` (new) keeps the same basis and runs the Gram–Schmidt passes only at the steps
where Simon's estimate of the lost orthogonality reaches `√ε` (or where one step could cross it
unseen).

The change: (1) the new `reorth="partial"`; (2) every product is the algorithm's own array — an operator that
declares `fresh_products` (the torch curvature operators) is divided by the scale in place, any
other copied once — and the three-term and Gram–Schmidt updates then run in place (`addmm_`,
`baddbmm_`, `addcmul_` on torch), without the n-length temporaries that cost more than their
arithmetic at 10⁷ (pages mapped on first touch); (3) a thick restart rotates the basis in place,
piece by piece, instead of through a `keep × n` temporary; (4) inside the product, the curvature
operators check finiteness with a min and a max instead of an n-length boolean array, and a
single vector's per-parameter results are joined without an extra copy. Results change at
rounding level; the tests pin exact scale invariance. Earlier changes (rows-stored basis, DGKS
second pass only where needed, one projection per verification step) are in the "before"
figures. Still above ARPACK's time
outside products per step: `eigsh` on the CNN (its pass over a 20-vector basis at 1.1·10⁷
reads 0.9 GB, more than 10 % of a product's time), `eigsh` and `spectral_density` on NumPy, and
`lanczos`, which re-orthogonalizes a longer basis at every step by design."""


def _f(x: Any, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}g}"


_TASK_NAMES = {"arpack": "ARPACK", "spectral_density_partial": 'spectral_density, reorth="partial"'}


def krylov_section(d: dict[str, Any]) -> str:
    """The Krylov bookkeeping section: outside-product seconds per step, before and after."""
    runs, meta = d["runs"], d.get("meta", {})
    before, after = runs.get("before", {}), runs.get("after", {})
    lines = [
        "## Krylov bookkeeping at n = 10⁶–10⁷ (`python -m benchmarks.bench_krylov_overhead`)",
        "",
        KRYLOV_TEXT + f" Result: `benchmarks/results/krylov_overhead.json` ({meta.get('date', '')}).",
        "",
        "| operator | task | products | s / product | outside, s / step: before | ÷ ARPACK | after | ÷ ARPACK |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case, tasks in after.items():
        old = before.get(case, {})
        arpack_old = old.get("arpack", {}).get("outside_per_step_s")
        arpack_new = tasks.get("arpack", {}).get("outside_per_step_s")
        for task in ("eigsh", "lanczos", "spectral_density", "spectral_density_partial", "arpack"):
            new = tasks.get(task)
            if new is None:
                continue
            prev = old.get(task, {})
            o_old, o_new = prev.get("outside_per_step_s"), new.get("outside_per_step_s")
            r_old = None if o_old is None or not arpack_old else o_old / arpack_old
            r_new = None if o_new is None or not arpack_new else o_new / arpack_new
            name = _TASK_NAMES.get(task, task)
            lines.append(
                f"| {case} | {name} | {new.get('products', '')} | {_f(new.get('product_s'))} | {_f(o_old)} | "
                f"{_f(r_old, 2)} | {_f(o_new)} | {_f(r_new, 2)} |"
            )
    return "\n".join(lines)


def compile_section(d: dict[str, Any]) -> str:
    """The compiled-products section: compile time cold and warm, product ratios, and what
    ``compile="auto"`` did in a density run."""
    lines = [
        "## Compiled torch products (`python -m benchmarks.bench_compile`)",
        "",
        f"`benchmarks/results/compile.json` ({d.get('date', '')}, load average at the start "
        f"{', '.join(f'{x:.1f}' for x in d.get('load_average', []))}): `est.hessian(..., compile=True)` in a fresh "
        "process with an empty torch compile cache (cold), then again in a second process (warm); products "
        "interleaved with the default eager operator (graph cache on); then `es.spectral_density(H, 100, 1)` at "
        'the defaults (`compile="auto"`) against `compile=False`, interleaved, with the warm cache. See '
        '[the PyTorch page](torch.md#options) for the rule `"auto"` follows.',
        "",
        "| workload | params | run | compile s | compiled | eager product s | compiled product s "
        "| compiled ÷ eager | relative difference |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    density = []
    for row in d["rows"]:
        if "error" in row:
            lines.append(f"| {row['workload']} | | {row['mode']} | failed: {' '.join(row['error'])} | | | | | |")
        elif row["mode"] in ("cold", "warm"):
            lines.append(
                f"| {row['workload']} | {row['num_params']:,} | {row['mode']} | {row['compile_s']:.1f} | "
                f"{row['compiled']} | {_f(row['eager_product_s'])} | {_f(row['compiled_product_s'])} | "
                f"{row['compiled_over_eager']:.2f} | {row['relative_difference']:.1e} |"
            )
        else:
            density.append(row)
    if density:
        lines += [
            "",
            "| workload | cache | auto compiled | auto compile s | density s: auto | compile=False | "
            "compile=False ÷ auto | why (auto) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in density:
            if "error" in row:
                continue
            cache = "cold" if "cold" in row["mode"] else "warm"
            lines.append(
                f"| {row['workload']} | {cache} | {', '.join(str(x) for x in row['auto_compiled'])} | "
                f"{', '.join(f'{x:.1f}' for x in row['auto_compile_s'])} | "
                f"{', '.join(f'{x:.1f}' for x in row['density_auto_s'])} | "
                f"{', '.join(f'{x:.1f}' for x in row['density_eager_s'])} | {row['eager_over_auto']:.2f} | "
                f"{row['auto_reason'][-1] or ''} |"
            )
    return "\n".join(lines)


def jax_overhead_section(d: dict[str, Any]) -> str:
    """The JAX adapter against hand-written JAX: product ratios and first calls."""
    settings = d.get("settings", {})
    machine = d.get("machine", {})
    load = ", ".join(f"{x:.1f}" for x in machine.get("load_average_at_start", []))
    targets = settings.get("targets", {"hvp_vs_hand": 1.2, "matmat8_vs_hand_hvp": 5.0})
    lines = [
        "## JAX adapter against hand-written JAX (`python -m benchmarks.bench_jax_overhead --cache`)",
        "",
        f"`benchmarks/results/jax_overhead.json` ({d.get('date', '')}, load average at the start {load}): "
        "one product `H @ v` of the operator against a hand-written `jax.jit(jvp(grad))` of the per-batch loss "
        "summed over the batches (target ≤ "
        f"{targets.get('hvp_vs_hand', 1.2)}×), and an 8-vector `matmat` in hand products (target ≤ "
        f"{targets.get('matmat8_vs_hand_hvp', 5.0)}); medians of interleaved rounds. Then the first call of each "
        "algorithm in a fresh process, after one product. See [the JAX page](jax.md#first-calls).",
        "",
        "| model | params | `H @ v` ÷ hand | `(n, 1)` column ÷ hand | 8-vector matmat in hand products | met |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in d.get("products", {}).items():
        r = row["ratios"]
        met = "yes" if all(row.get("met", {}).values()) else "no"
        lines.append(
            f"| {name} | {row['num_params']:,} | {r['hvp_vs_hand']:.2f} | {r['hvp_column_vs_hand']:.2f} | "
            f"{r['matmat8_vs_hand_hvp']:.2f} | {met} |"
        )
    lines += [
        "",
        "| first call | seconds | compilations | compiling / products / outside s | same call again, s |",
        "|---|---|---|---|---|",
    ]
    calls = dict(d.get("cold_start", {}))
    if "cold_start_cached_eigsh" in d:
        calls["eigsh, second process on the on-disk cache"] = d["cold_start_cached_eigsh"]
    for name, row in calls.items():
        first, second = row["first"], row.get("second", {})
        split = f"{first['compile_seconds']:.2f} / {first['product_seconds']:.2f} / {first['outside_seconds']:.2f}"
        lines.append(
            f"| {name} | {first['seconds']:.2f} | {first['compilations']} | {split} | {_f(second.get('seconds'))} |"
        )
    return "\n".join(lines)


def resnet18_section(d: dict[str, Any]) -> str:
    """``eigsh`` top-5 at the defaults against ARPACK at 1.1·10⁷ parameters: time, products, split."""
    lines = [
        "## Top-5 at 1.1·10⁷ parameters against ARPACK (`python -m benchmarks.bench_resnet18_eigsh`)",
        "",
        f"`benchmarks/results/resnet18_eigsh.json` ({d.get('date', '')}, load average at the start "
        f"{', '.join(f'{x:.1f}' for x in d.get('load_average_at_start', []))}): the Hessian of the "
        f"ResNet-18-shaped CNN above ({d.get('num_params', 0):,} parameters, float32, torch on 1 thread); "
        "`es.eigsh(H, 5)` at its defaults against SciPy's ARPACK (`tol=1e-3`) on the same products, "
        "interleaved rounds. eigenscope's products include the verification (a fresh Lanczos sequence "
        "on the complement of the pairs found, which ARPACK does not run; see [eigsh](algorithms/eigsh.md)).",
        "",
        "| round | eigenscope s | products (verification) | s / product | ARPACK s | products | s / product | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rounds = d.get("rounds") or [{"eigenscope": d["eigenscope"], "arpack": d["arpack"]}]
    for i, r in enumerate(rounds, 1):
        me, them = r["eigenscope"], r["arpack"]
        lines.append(
            f"| {i} | {me['seconds']:.1f} | {me['products']} ({me['verification_products']}) | "
            f"{me['seconds'] / me['products']:.3f} | {them['seconds']:.1f} | {them['products']} | "
            f"{them['seconds'] / them['products']:.3f} | {me['seconds'] / them['seconds']:.2f} |"
        )
    lo, hi = d.get("ratio_range", [d["eigenscope_over_arpack"]] * 2)
    lines += ["", f"Median ratio {d['eigenscope_over_arpack']:.2f} (range {lo:.2f}–{hi:.2f})."]
    return "\n".join(lines)
