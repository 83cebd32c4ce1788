"""The fused, sliced closed-form ScoreVI update equals the step-by-step reference computation."""
import pytest
import torch

from forecasting.bayes import closed_form as cf


def _problem(P: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    loc_t = torch.randn(P, generator=gen)
    log_scale_t = torch.log(0.01 + 0.1 * torch.rand(P, generator=gen))
    pool = cf.new_pool(P, torch.device("cpu"), torch.float64)
    cf.recentre(pool, loc_t)
    # a few earlier iterations already pooled, from a Gaussian target with its own mean/scale
    true_loc = loc_t + 0.05 * torch.randn(P, generator=gen)
    true_scale = 0.05 * (0.2 + torch.rand(P, generator=gen))

    def draw():
        th = loc_t + log_scale_t.exp() * torch.randn(3, P, generator=gen)
        noise = 0.3 * torch.randn(3, P, generator=gen) / true_scale
        return th, -(th - true_loc) / true_scale**2 + noise

    for _ in range(4):
        cf.pool_add(pool, *draw(), decay=0.9)
    return pool, loc_t, log_scale_t, *draw()


def _reference(pool, loc_t, log_scale_t, thetas, grads, lam, kappa, identity):
    cf.pool_add(pool, thetas, grads, 0.9)
    scale_t = log_scale_t.exp()
    e, a, b, g = cf.whitened_stats(pool, loc_t, scale_t)
    lam_c = lam * scale_t.double() ** 2 if identity else torch.full_like(e, lam)
    lam_c = lam_c + kappa * cf.residual_variance(pool, scale_t, e, a, b, g) / pool["pool_w"]
    tau, c, u = cf.solve_kl_prox(e.float(), a.float(), b.float(), g.float(), lam_c.float(), steps=30, tol=1e-6)
    return loc_t + scale_t * c / tau, log_scale_t - 0.5 * u


def _fused(pool, loc_t, log_scale_t, thetas, grads, lam, kappa, identity, compiled=False):
    loc, log_scale = loc_t.clone(), log_scale_t.clone()
    info = cf.kl_prox_update(pool, loc, log_scale, loc_t, log_scale_t, thetas, grads, decay=0.9, lam=lam,
                             kappa=kappa, identity=identity, steps=30, tol=1e-6, compiled=compiled)
    return loc, log_scale, info


@pytest.mark.parametrize("lam,kappa,identity", [(0.1, 1.0, False), (100.0, 0.0, False), (5.0, 1.0, True)])
def test_sliced_update_matches_reference(monkeypatch, lam, kappa, identity):
    pool, loc_t, log_scale_t, thetas, grads = _problem(1000, seed=1)
    ref_pool = {k: v.clone() for k, v in pool.items()}
    ref_loc, ref_log_scale = _reference(ref_pool, loc_t, log_scale_t, thetas, grads, lam, kappa, identity)
    monkeypatch.setattr(cf, "_CPU_SLICE", 96)  # many slices, a ragged last one
    loc, log_scale, info = _fused(pool, loc_t, log_scale_t, thetas, grads, lam, kappa, identity)
    for key in ref_pool:  # the pool was updated in place, slice by slice, exactly as pool_add does
        assert torch.allclose(pool[key], ref_pool[key], rtol=1e-12, atol=1e-12), key
    assert torch.allclose(loc, ref_loc, rtol=1e-5, atol=1e-6)
    assert torch.allclose(log_scale, ref_log_scale, atol=1e-4)
    assert (log_scale != log_scale_t).float().mean() > 0.9  # it did move
    assert info["newton_unconverged"] == 0
    assert info["max_abs_log_tau"] == pytest.approx(float((2 * (log_scale_t - log_scale)).abs().max()), rel=1e-4)


@pytest.mark.slow
def test_compiled_update_matches_eager():
    """``compile_solver`` (one torch.compile-fused kernel) computes the same update as the eager slices."""
    pool, loc_t, log_scale_t, thetas, grads = _problem(500, seed=2)
    eager_pool = {k: v.clone() for k, v in pool.items()}
    loc_e, log_scale_e, _ = _fused(eager_pool, loc_t, log_scale_t, thetas, grads, 0.1, 1.0, False)
    loc_c, log_scale_c, info = _fused(pool, loc_t, log_scale_t, thetas, grads, 0.1, 1.0, False, compiled=True)
    assert torch.allclose(loc_c, loc_e, rtol=1e-5, atol=1e-6)
    assert torch.allclose(log_scale_c, log_scale_e, atol=1e-4)
    for key in pool:
        assert torch.allclose(pool[key], eager_pool[key], rtol=1e-12, atol=1e-12), key


def test_compile_solver_auto_rule():
    """``auto`` fuses the update only on CUDA and only for large networks; true/false are obeyed."""
    from forecasting.bayes.config import ScoreVIConfig
    from forecasting.bayes.scorevi import COMPILE_MIN_DIM, ScoreVI

    auto = ScoreVI(ScoreVIConfig())
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not auto._compile_solver(cpu, 10 * COMPILE_MIN_DIM)
    assert not auto._compile_solver(cuda, COMPILE_MIN_DIM - 1)
    assert auto._compile_solver(cuda, COMPILE_MIN_DIM)
    assert ScoreVI(ScoreVIConfig(compile_solver=True))._compile_solver(cpu, 10)
    assert not ScoreVI(ScoreVIConfig(compile_solver=False))._compile_solver(cuda, 10 * COMPILE_MIN_DIM)
