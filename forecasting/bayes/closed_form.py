"""ScoreVI's closed-form solver for the diagonal Gaussian family (docs/scorevi.md, "The algorithm as implemented").

With W = Cov(q_t) and coordinates whitened by q_t (ε = (θ − μ_t)/σ_t, y = σ_t ⊙ ĝ), the
score-matching term is, per coordinate, the least-squares line y ≈ −τ ε + c with
τ = σ_t²/σ² and c = σ_t (μ − μ_t)/σ². With the proximal term D = KL(q_t ‖ q) the per-coordinate
objective is

    f(τ, c) = E_s (y_s + τ ε_s − c)² + (λ/2)(τ + c²/τ − 1 − ln τ),

jointly convex for τ > 0 (least squares + a perspective + a barrier), so τ stays positive by
construction. For fixed τ the best c is 2τ(ȳ + τ ε̄)/(2τ + λ); what remains is one monotone
scalar equation F'(τ) = 0 per coordinate, solved for all coordinates at once by a safeguarded
Newton iteration (in τ above 1, in 1/τ below; bracketed in ln τ with a bisection fallback). Then μ ← μ_t + σ_t c/τ,
σ ← σ_t/√τ.

The statistics (E ε, E ε², E y, E εy) are linear in ĝ, so they can be pooled across iterations
(decayed running sums of θ, θ², ĝ, θĝ in raw θ space, centred at a reference point and kept
in float64 against cancellation when |μ| ≫ σ). Pooling is what makes S = 1 work. The step
computed from them is not linear in ĝ (the root τ, the damping from Σĝ², c/τ and 1/√τ), so
under mini-batch noise it is biased, unlike the adam solver's gradient.

Speed. One update is a few hundred elementwise operations per coordinate and the coordinates are
independent, so :func:`kl_prox_update` runs pooling, whitening and the root solve slice by slice:
on CPU in slices of 2^15 coordinates, whose temporaries stay in cache (whole-vector passes are
memory-bound: ≈2.6× slower at P = 2 M), on CUDA in slices of 2^24, which bounds the temporaries
at ViT-L scale (P = 306 M). With ``compiled=True`` the whole update is one ``torch.compile``-fused
kernel over all coordinates (fixed Newton steps, no compaction): a single pass over memory,
which is what a GPU wants.
"""
from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

_U_MAX = 30.0  # |ln τ| bound: σ may change by at most e^15 per iteration
_SUMS = ("pool_x", "pool_xx", "pool_g", "pool_xg", "pool_gg")
_CPU_SLICE = 1 << 15
_CUDA_SLICE = 1 << 24


def slice_length(device: torch.device) -> int:
    """Coordinates per slice of the eager update (cache-sized on CPU, memory-bounding on CUDA)."""
    return _CUDA_SLICE if torch.device(device).type == "cuda" else _CPU_SLICE


def new_pool(dim: int, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Empty pooled statistics: total weight, sums of x, x², g, x·g, g² (x = θ − ref), and ref."""
    z = lambda: torch.zeros(dim, device=device, dtype=dtype)  # noqa: E731
    return {"pool_w": torch.zeros((), device=device, dtype=dtype), "pool_x": z(), "pool_xx": z(),
            "pool_g": z(), "pool_xg": z(), "pool_gg": z(), "pool_ref": z()}


@torch.no_grad()
def recentre(pool: dict[str, torch.Tensor], new_ref: torch.Tensor) -> None:
    """Move the pooled sums to a new reference point (exact algebra, no information lost)."""
    d = new_ref.to(pool["pool_ref"].dtype) - pool["pool_ref"]
    w = pool["pool_w"]
    pool["pool_xx"] += -2 * d * pool["pool_x"] + w * d * d
    pool["pool_xg"] -= d * pool["pool_g"]
    pool["pool_x"] -= w * d
    pool["pool_ref"] += d


def _accumulate(px, pxx, pg, pxg, pgg, ref, thetas, grads, decay: float) -> None:
    """Decay the pooled sums by ρ and add the samples' sums, in place (whole vectors or slices)."""
    dt = px.dtype
    # The per-iteration sums are formed in the pool's dtype too: between two re-centrings θ drifts
    # from ref, and x², x·ĝ formed in fp32 carry a relative error ~6e-8 that the whitening
    # (E x² − 2d E x + d², over σ_t²) amplifies by (|x|/σ_t)². One sample at a time, so the fp64
    # temporaries stay one (slice-)vector long, not S of them.
    for total in (px, pxx, pg, pxg, pgg):
        total.mul_(decay)
    for s in range(thetas.shape[0]):
        x = thetas[s].to(dt) - ref
        g = grads[s].to(dt)
        px.add_(x)
        pxx.addcmul_(x, x)
        pg.add_(g)
        pxg.addcmul_(x, g)
        pgg.addcmul_(g, g)


@torch.no_grad()
def pool_add(pool: dict[str, torch.Tensor], thetas: torch.Tensor, grads: torch.Tensor, decay: float) -> None:
    """Decay the pooled sums by ρ and add this iteration's samples (ρ = 0: only the new samples)."""
    pool["pool_w"].mul_(decay).add_(thetas.shape[0])
    _accumulate(*(pool[k] for k in _SUMS), pool["pool_ref"], thetas, grads, decay)


def _whiten(w, px, pxx, pg, pxg, ref, loc_t, scale_t):
    """Pooled raw sums → q_t's whitened statistics (E ε, E ε², E εy, E y) in the pool's dtype."""
    dt = px.dtype
    inv_w = 1 / w
    mx = px * inv_w
    mg = pg * inv_w
    d = loc_t.to(dt) - ref
    s = scale_t.to(dt)
    inv_s = 1 / s
    e = (mx - d) * inv_s
    a = (pxx * inv_w - d * (2 * mx - d)) * (inv_s * inv_s)
    b = pxg * inv_w - d * mg
    g = s * mg
    return e, a, b, g


@torch.no_grad()
def whitened_stats(pool: dict[str, torch.Tensor], loc_t: torch.Tensor, scale_t: torch.Tensor):
    """Map pooled raw statistics into q_t's whitened terms: (E ε, E ε², E εy, E y)."""
    return _whiten(pool["pool_w"], pool["pool_x"], pool["pool_xx"], pool["pool_g"], pool["pool_xg"],
                   pool["pool_ref"], loc_t, scale_t)


def _noise_variance(w, pgg, s, e, a, b, g):
    var_y = s * s * (pgg / w) - g * g
    var_e = (a - e * e).clamp_min(1e-30)
    cov = b - e * g
    resid = (var_y - cov * cov / var_e).clamp_min(0)
    return resid * w / (w - 2).clamp_min(1e-3)


@torch.no_grad()
def residual_variance(pool: dict[str, torch.Tensor], scale_t: torch.Tensor, e, a, b, g) -> torch.Tensor:
    """Per-coordinate residual variance of the least-squares line y ≈ −τε + c (whitened units), dof-corrected.

    It measures how noisy the regression is — mini-batch noise plus, for a mean-field family, the
    other coordinates' contributions to each score — and sets the adaptive proximal weight.
    """
    return _noise_variance(pool["pool_w"], pool["pool_gg"], scale_t.to(e.dtype), e, a, b, g)


def _fprime(tau, e, a, b, g, lam):
    """F'(τ) and F''(τ) of the profiled objective F(τ) = min_c f(τ, c) (F is convex in τ).

    With r = 1/(2τ + λ) and q = (ȳ + τ ε̄) r (so c* = 2τq):
    F' = 2(b + aτ) + (λ/2)(1 − 1/τ) − 2λq² − 4τ ε̄ q,
    F'' = 2a + λ/(2τ²) + r (8λq (q − ε̄) − 4τ ε̄²).
    """
    inv_tau = 1 / tau
    r = 1 / (2 * tau + lam)
    q = (g + tau * e) * r
    lq = lam * q
    te = tau * e
    f1 = 2 * (b + a * tau) + 0.5 * lam * (1 - inv_tau) - 2 * lq * q - 4 * te * q
    f2 = 2 * a + 0.5 * lam * inv_tau * inv_tau + r * (8 * lq * (q - e) - 4 * te * e)
    return f1, f2


def _newton_step(u, lo, hi, e, a, b, g, lam):
    """One safeguarded Newton step for F'(τ) = 0 in u = ln τ; returns (u, lo, hi)."""
    tau = torch.exp(u)
    f1, f2 = _fprime(tau, e, a, b, g, lam)
    # Selections are arithmetic blends with 0/1 masks: torch.where is ~10x slower than an
    # elementwise multiply on CPU, and this runs over every parameter.
    pos = (f1 > 0).to(e.dtype)
    hi = hi + pos * (u - hi)
    lo = u + pos * (lo - u)
    # F' is ~linear in τ for large τ and ~linear in 1/τ for small τ (the −λ/(2τ) barrier):
    # take the Newton step in τ above 1 and in 1/τ below 1, and bisect in ln τ if it leaves the bracket.
    ratio = torch.nan_to_num(f1 / f2, nan=0.0, posinf=1e30, neginf=-1e30)
    big = (tau >= 1).to(e.dtype)
    cand_small = torch.nan_to_num(tau / (1 + ratio / tau), nan=-1.0, posinf=1e30, neginf=-1.0)
    cand = cand_small + big * ((tau - ratio) - cand_small)
    newton = torch.log(cand.clamp_min(1e-30))
    # A small tolerance: at the root the bracket collapses onto u and round-off may put the
    # (converged) Newton point a hair outside it — that must not trigger a bisection.
    slack = 1e-5 * (1 + u.abs())
    bad = ((cand <= 0) | (newton < lo - slack) | (newton > hi + slack)).to(e.dtype)
    inside = torch.minimum(torch.maximum(newton, lo), hi)
    return inside + bad * (0.5 * (lo + hi) - inside), lo, hi


def _newton_compacting(e, a, b, g, lam, steps: int, tol: float):
    """Eager root solve: from the second step on, only the coordinates still moving keep iterating.

    Returns (u, Newton steps taken, coordinates not converged). Near convergence τ ≈ 1 and two or
    three steps suffice for most coordinates, so the cost is ~3 passes, not ``steps``.
    """
    u = torch.zeros_like(e)  # τ = 1 is q_t itself: the natural start
    lo = torch.full_like(e, -_U_MAX)
    hi = torch.full_like(e, _U_MAX)
    idx = None  # indices of the coordinates still iterating (None = all)
    ee, aa, bb, gg, ll, uu = e, a, b, g, lam, u
    n_active = e.numel()
    step = 0
    for step in range(steps):
        new_u, lo, hi = _newton_step(uu, lo, hi, ee, aa, bb, gg, ll)
        moved = (new_u - uu).abs() > tol
        uu = new_u
        if step < 1:
            continue
        n_active = int(moved.sum())
        if n_active == 0:
            break
        if n_active < 0.5 * uu.numel():
            # Write back the finished coordinates and keep iterating only the slow ones.
            if idx is None:
                u = uu
            else:
                u[idx] = uu
            keep = moved.nonzero().squeeze(1)
            idx = keep if idx is None else idx[keep]
            ee, aa, bb, gg, ll, uu, lo, hi = (t[keep] for t in (ee, aa, bb, gg, ll, uu, lo, hi))
    if idx is None:
        u = uu
    else:
        u[idx] = uu
    return u, step + 1, n_active


def _newton_fixed(e, a, b, g, lam, steps: int, tol: float):
    """Root solve without data-dependent control flow (for ``torch.compile``): all ``steps`` steps.

    Returns (u, coordinates that still moved by more than ``tol`` in the last step, as a tensor).
    """
    u = torch.zeros_like(e)
    lo = torch.full_like(e, -_U_MAX)
    hi = torch.full_like(e, _U_MAX)
    moved = torch.zeros_like(e, dtype=torch.bool)
    for _ in range(steps):
        new_u, lo, hi = _newton_step(u, lo, hi, e, a, b, g, lam)
        moved = (new_u - u).abs() > tol
        u = new_u
    return u, moved.sum()


def _least_squares(e, a, b, g):
    """λ = 0: the plain least-squares line τ = −Cov(ε, y)/Var(ε), c = ȳ + τ ε̄ (τ may be ≤ 0)."""
    var = (a - e * e).clamp_min(1e-30)
    tau = -(b - g * e) / var
    return tau, g + tau * e, torch.log(tau.clamp_min(1e-30))


def _tolerance(tol: float, dtype: torch.dtype) -> float:
    return max(tol, 50 * torch.finfo(dtype).eps)


@torch.no_grad()
def solve_kl_prox(e, a, b, g, lam, steps: int = 12, tol: float = 1e-4, info: dict | None = None,
                  compiled: bool = False):
    """Minimise f(τ, c) per coordinate; returns (τ, c, u = ln τ).

    Args:
        e, a, b, g: whitened statistics E ε, E ε², E εy, E y (tensors ``[P]``).
        lam: λ (float or tensor ``[P]``, ≥ 0). λ = 0 is the plain least-squares line
            τ = −Cov(ε, y)/Var(ε), c = ȳ + τ ε̄ (linear in ĝ; τ may then be ≤ 0, where no σ > 0
            solves the step: ScoreVIConfig refuses λ = κ = 0 for the closed-form solver).
        steps: at most this many safeguarded Newton iterations.
        tol: a coordinate is done once its ln τ moves by less than this.
        info: optional dict that receives ``newton_steps`` and ``newton_active`` (diagnostics).
        compiled: run the solve as one ``torch.compile``-fused kernel (all ``steps`` steps).
    """
    if not torch.is_tensor(lam) and lam == 0:
        return _least_squares(e, a, b, g)
    lam = torch.as_tensor(lam, dtype=e.dtype, device=e.device).expand_as(e)
    tol = _tolerance(tol, e.dtype)
    if compiled:
        u, n_active = _compiled("newton", _newton_fixed)(e, a, b, g, lam, steps, tol)
        n_steps, n_active = steps, int(n_active)
    else:
        u = torch.empty_like(e)
        n_steps, n_active = 0, 0
        n = slice_length(e.device)
        for lo in range(0, e.numel(), n):
            sl = slice(lo, lo + n)
            u[sl], k, m = _newton_compacting(e[sl], a[sl], b[sl], g[sl], lam[sl], steps, tol)
            n_steps, n_active = max(n_steps, k), n_active + m
    if info is not None:
        info["newton_steps"] = n_steps
        info["newton_active"] = n_active
    tau = torch.exp(u)
    c = 2 * tau * (g + tau * e) / (2 * tau + lam)
    return tau, c, u


def _slice_update(w, px, pxx, pg, pxg, pgg, ref, thetas, grads, loc_t, log_scale_t, lam, *, decay: float,
                  kappa: float, identity: bool, steps: int, tol: float, fixed: bool):
    """Pool this slice's samples (in place), whiten, solve; returns (μ, log σ, ln τ, steps, unconverged)."""
    _accumulate(px, pxx, pg, pxg, pgg, ref, thetas, grads, decay)
    scale_t = log_scale_t.exp()
    e, a, b, g = _whiten(w, px, pxx, pg, pxg, ref, loc_t, scale_t)
    dt = e.dtype
    s = scale_t.to(dt)
    # Unwhitened squared error (identity W) = whitened / σ_t², i.e. a per-coordinate λ_i = λ σ_t,i².
    lam_c = lam.to(dt) * s * s if identity else lam.to(dt)
    if kappa > 0:  # adaptive damping: κ · residual variance / pooled weight
        lam_c = lam_c + kappa * _noise_variance(w, pgg, s, e, a, b, g) / w
    # The statistics needed fp64 (cancellation); the per-coordinate root solve does not, and in
    # the family's dtype it moves half the memory.
    fd = loc_t.dtype
    e, a, b, g = e.to(fd), a.to(fd), b.to(fd), g.to(fd)
    lam_c = lam_c.to(fd).expand_as(e)
    if fixed:
        u, n_active = _newton_fixed(e, a, b, g, lam_c, steps, tol)
        n_steps = steps
    else:
        u, n_steps, n_active = _newton_compacting(e, a, b, g, lam_c, steps, tol)
    # μ = μ_t + σ_t c/τ with c/τ = 2(ȳ + τ ε̄)/(2τ + λ); σ = σ_t/√τ.
    tau = torch.exp(u)
    loc = loc_t + scale_t * (2 * (g + tau * e) / (2 * tau + lam_c))
    return loc, log_scale_t - 0.5 * u, u, n_steps, n_active


@torch.no_grad()
def kl_prox_update(pool: dict[str, torch.Tensor], loc: torch.Tensor, log_scale: torch.Tensor,
                   loc_t: torch.Tensor, log_scale_t: torch.Tensor, thetas: torch.Tensor, grads: torch.Tensor, *,
                   decay: float, lam: float, kappa: float, identity: bool, steps: int = 12, tol: float = 1e-4,
                   compiled: bool = False) -> dict[str, float]:
    """One closed-form ScoreVI update of a diagonal family, written into ``loc`` / ``log_scale``.

    Pools ``thetas``/``grads`` ``[S, P]`` (decay ρ = ``decay``), maps the pool into q_t's whitened
    statistics, adds the adaptive damping κ · residual variance / pooled weight to λ (``identity``:
    per-coordinate λ σ_t² for the unwhitened score-matching norm) and solves the KL-proximal step.
    The caller checks that the pooled weight after this update exceeds 2 (else :func:`pool_add`).
    Returns diagnostics: mean and max |ln τ|, Newton steps, unconverged coordinates.
    """
    w = pool["pool_w"]
    w.mul_(decay).add_(thetas.shape[0])
    lam_t = torch.as_tensor(lam, dtype=w.dtype, device=w.device)
    tol = _tolerance(tol, loc_t.dtype)
    options = dict(decay=decay, kappa=kappa, identity=identity, steps=steps, tol=tol)
    sums = [pool[k] for k in _SUMS]
    fused = _compiled("update", _slice_update) if compiled else None
    if fused is not None:
        try:
            new_loc, new_log_scale, u, n_steps, n_active = fused(
                w, *sums, pool["pool_ref"], thetas, grads, loc_t, log_scale_t, lam_t, fixed=True, **options)
        except Exception as exc:  # noqa: BLE001 - a compiler failure (no C++/Triton toolchain) must not stop training
            # Compilation fails before the kernel runs, so the pool is untouched: fall back to eager.
            _disable_compile("update", exc)
            fused = None
    if fused is not None:
        loc.copy_(new_loc)
        log_scale.copy_(new_log_scale)
        u_sum, u_max, n_active = u.sum(dtype=torch.float64), u.abs().max(), int(n_active)
    else:
        u_sum = torch.zeros((), dtype=torch.float64, device=loc.device)
        u_max = torch.zeros((), dtype=loc.dtype, device=loc.device)
        n_steps = n_active = 0
        n = slice_length(loc.device)
        for lo in range(0, loc.numel(), n):
            sl = slice(lo, lo + n)
            new_loc, new_log_scale, u, k, m = _slice_update(
                w, *(t[sl] for t in sums), pool["pool_ref"][sl], thetas[:, sl], grads[:, sl], loc_t[sl],
                log_scale_t[sl], lam_t, fixed=False, **options)
            loc[sl] = new_loc
            log_scale[sl] = new_log_scale
            u_sum += u.sum(dtype=torch.float64)
            u_max = torch.maximum(u_max, u.abs().max())
            n_steps, n_active = max(n_steps, k), n_active + m
    return {"mean_log_tau": float(u_sum) / loc.numel(), "max_abs_log_tau": float(u_max),
            "newton_steps": float(n_steps), "newton_unconverged": float(n_active)}


_COMPILED: dict = {}


def _compiled(name: str, fn):
    """``torch.compile``d ``fn`` (once per process; recompiled per input shape); None once it failed."""
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(fn, dynamic=False)
    return _COMPILED[name]


def _disable_compile(name: str, exc: Exception) -> None:
    log.warning("torch.compile of the ScoreVI closed-form %s failed (%s: %s); using the eager solver",
                name, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    _COMPILED[name] = None


def residual(e, a, b, g, lam, tau) -> torch.Tensor:
    """|F'(τ)| — for tests and diagnostics."""
    return _fprime(tau, e, a, b, g, torch.as_tensor(lam, dtype=e.dtype, device=e.device))[0].abs()
