"""The pooled statistics of the closed-form solver are formed in the pool's dtype, not the samples'.

fp32 parameters far from the pool's reference point (|θ − ref| ≫ σ, between two re-centrings)
make x² and x·ĝ large; formed in fp32 they carry a relative error ~6e-8, which the whitening
(E x² − 2 d E x + d², divided by σ_t²) turns into a garbage variance.
"""
from __future__ import annotations

import pytest
import torch

from forecasting.bayes import closed_form as cf

pytestmark = pytest.mark.usefixtures("one_torch_thread")

S, P, OFFSET, SIGMA = 4, 256, 1000.0, 1e-3


def _samples():
    gen = torch.Generator().manual_seed(0)
    loc_t = OFFSET + torch.randn(P, generator=gen, dtype=torch.float64).float()
    scale_t = torch.full((P,), SIGMA)
    thetas = loc_t + scale_t * torch.randn(S, P, generator=gen)
    grads = -(thetas.double() - OFFSET) / 0.1 + 3e3 * torch.randn(S, P, generator=gen, dtype=torch.float64)
    return loc_t, scale_t, thetas, grads.float()  # fp32 samples and scores, as a network's


def _reference(thetas, grads, ref):
    x, g = thetas.double() - ref, grads.double()
    return {"pool_x": x.sum(0), "pool_xx": (x * x).sum(0), "pool_g": g.sum(0), "pool_xg": (x * g).sum(0),
            "pool_gg": (g * g).sum(0)}


def test_pool_add_forms_the_sums_in_fp64():
    _, _, thetas, grads = _samples()
    pool = cf.new_pool(P, torch.device("cpu"), torch.float64)  # reference point 0: |θ − ref| ≈ 1000
    cf.pool_add(pool, thetas, grads, decay=0.0)
    for key, want in _reference(thetas, grads, 0.0).items():
        assert torch.allclose(pool[key], want, rtol=1e-13, atol=0), key


def test_whitened_variance_survives_a_large_offset():
    loc_t, scale_t, thetas, grads = _samples()
    pool = cf.new_pool(P, torch.device("cpu"), torch.float64)
    cf.pool_add(pool, thetas, grads, decay=0.0)
    e, a, _, _ = cf.whitened_stats(pool, loc_t, scale_t)
    eps = (thetas.double() - loc_t.double()) / scale_t.double()
    want = eps.var(0, unbiased=False)
    assert torch.allclose(a - e * e, want, rtol=1e-3, atol=1e-3)


def test_kl_prox_update_pools_in_fp64():
    """The sliced update accumulates the same way (it shares the accumulation with ``pool_add``)."""
    loc_t, scale_t, thetas, grads = _samples()
    pool = cf.new_pool(P, torch.device("cpu"), torch.float64)
    loc, log_scale = loc_t.clone(), scale_t.log()
    cf.kl_prox_update(pool, loc, log_scale, loc_t, scale_t.log(), thetas, grads, decay=0.0, lam=1.0, kappa=0.0,
                      identity=False)
    for key, want in _reference(thetas, grads, 0.0).items():
        assert torch.allclose(pool[key], want, rtol=1e-13, atol=0), key
