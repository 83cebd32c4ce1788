"""Synthetic problems with known answers for ``forecasting bench inference``.

Each problem exposes ``target`` (``scores`` / ``log_joint`` as the engine expects), ``batch(gen)``
(a mini-batch, or None) and ``metrics(q) -> {kl, kl_forward, neg_elbo}`` against the exact answer:

* :class:`GaussianProblem` — N(m, Σ) with a chosen condition number (axis-aligned or rotated);
* :func:`regression_problem` — conjugate Bayesian linear regression, exact Gaussian posterior,
  noisy mini-batch scores with the N/B scaling;
* :class:`MixtureProblem` — a Gaussian mixture target (model mismatch), KLs by Monte Carlo.
"""
from __future__ import annotations

import math

import torch

from forecasting.bayes import AnalyticTarget, GaussianPrior, Target
from forecasting.bayes.families import DiagonalGaussian, FullGaussian, LowRankGaussian, VariationalFamily

LOG_2PI = math.log(2 * math.pi)


def _q_moments(q: VariationalFamily) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(mean, dense cov or None if diagonal, diagonal variances) in float64."""
    mean = q.mean().detach().double()
    if isinstance(q, DiagonalGaussian):
        return mean, None, q.variance().detach().double()
    if isinstance(q, FullGaussian):
        lower = q.L.detach().double()
        cov = lower @ lower.T  # formed in float64: a float32 product can lose definiteness
        return mean, cov, torch.diagonal(cov)
    if isinstance(q, LowRankGaussian):
        cov = q.to(dtype=torch.float64).cov().detach()
        return mean, cov, torch.diagonal(cov)
    raise TypeError(f"no closed-form moments for {type(q).__name__}")


class GaussianProblem:
    """Target N(mean, cov); exact KL in both directions for Gaussian families."""

    def __init__(self, name: str, mean: torch.Tensor, cov: torch.Tensor, target=None, log_evidence: float = 0.0):
        self.name = name
        self.dim = mean.shape[0]
        self.mean = mean.double()
        self.cov = 0.5 * (cov.double() + cov.double().T)
        self.prec = torch.linalg.inv(self.cov)
        self.prec = 0.5 * (self.prec + self.prec.T)
        self.logdet = torch.linalg.slogdet(self.cov)[1]
        self.log_evidence = log_evidence
        self.diagonal = bool(torch.count_nonzero(self.cov - torch.diag(torch.diagonal(self.cov))) == 0)
        if target is None:
            mean32, prec32 = self.mean.float(), self.prec.float()
            logdet = float(self.logdet)
            d = self.dim

            def log_prob(th):
                z = th - mean32
                return -0.5 * ((z @ prec32) * z).sum(-1) - 0.5 * logdet - 0.5 * d * LOG_2PI

            target = AnalyticTarget(log_prob, lambda th: -(th - mean32) @ prec32)
        self.target = target

    def batch(self, gen: torch.Generator):
        return None

    def mean_field_floor(self) -> float:
        """Smallest KL(q‖p) a diagonal Gaussian can reach: ½(Σ log Λ_ii − log det Λ)."""
        return float(0.5 * (torch.log(torch.diagonal(self.prec)).sum() + self.logdet))

    def metrics(self, q: VariationalFamily) -> dict[str, float]:
        mq, cq, vq = _q_moments(q)
        d = self.mean - mq
        p = self.dim
        if cq is None:
            tr_rev = (torch.diagonal(self.prec) * vq).sum()
            logdet_q = torch.log(vq).sum()
            tr_fwd = (torch.diagonal(self.cov) / vq).sum()
            maha_fwd = (d * d / vq).sum()
        else:
            tr_rev = (self.prec * cq).sum()
            chol = torch.linalg.cholesky(cq)
            logdet_q = 2 * torch.log(torch.diagonal(chol)).sum()
            tr_fwd = torch.cholesky_solve(self.cov, chol).diagonal().sum()
            maha_fwd = (d * torch.cholesky_solve(d.unsqueeze(-1), chol).squeeze(-1)).sum()
        kl = 0.5 * (tr_rev + d @ self.prec @ d - p + self.logdet - logdet_q)
        kl_fwd = 0.5 * (tr_fwd + maha_fwd - p + logdet_q - self.logdet)
        return {"kl": float(kl), "kl_forward": float(kl_fwd), "neg_elbo": float(kl) - self.log_evidence}


def gaussian_problem(dim: int, cond: float, rotated: bool, seed: int = 0) -> GaussianProblem:
    """Eigen-variances log-spaced over [1/cond, 1] (so cond(Σ) = cond); random mean ~ N(0, 1)."""
    gen = torch.Generator().manual_seed(seed + dim)
    variances = torch.logspace(0, -math.log10(cond), dim, dtype=torch.float64)
    variances = variances[torch.randperm(dim, generator=gen)]
    if rotated:
        qmat, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        cov = (qmat * variances) @ qmat.T
    else:
        cov = torch.diag(variances)
    mean = torch.randn(dim, generator=gen, dtype=torch.float64)
    kind = "dense" if rotated else "diag"
    return GaussianProblem(f"gauss-d{dim}-{kind}-cond{cond:g}", mean, cov)


class RegressionProblem(GaussianProblem):
    """Conjugate linear regression y = Xw + ε, ε ~ N(0, s²), w ~ N(0, α² I); mini-batches of B rows."""

    def __init__(self, n: int, dim: int, batch_size: int, noise: float = 1.0, prior: float = 1.0, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        mix = torch.randn(dim, dim, generator=gen, dtype=torch.float64) / math.sqrt(dim) + torch.eye(dim, dtype=torch.float64)
        x = torch.randn(n, dim, generator=gen, dtype=torch.float64) @ mix.T  # correlated features
        w = torch.randn(dim, generator=gen, dtype=torch.float64)
        y = x @ w + noise * torch.randn(n, generator=gen, dtype=torch.float64)
        prec = x.T @ x / noise**2 + torch.eye(dim, dtype=torch.float64) / prior**2
        cov = torch.linalg.inv(prec)
        mean = cov @ (x.T @ y) / noise**2
        resid = y - x @ mean
        log_ev = (-0.5 * n * math.log(2 * math.pi * noise**2) - 0.5 * float(resid @ resid) / noise**2
                  - 0.5 * dim * math.log(2 * math.pi * prior**2) - 0.5 * float(mean @ mean) / prior**2
                  + 0.5 * dim * math.log(2 * math.pi) - 0.5 * float(torch.linalg.slogdet(prec)[1]))
        self.x, self.y = x.float(), y.float()
        self.n, self.batch_size = n, batch_size

        def loglik(theta, batch):
            bx, by = batch
            return -0.5 * ((by - bx @ theta) / noise) ** 2 - 0.5 * math.log(2 * math.pi * noise**2)

        target = Target(loglik, GaussianPrior(prior), n_data=n)
        super().__init__(f"linreg-N{n}-d{dim}-B{batch_size}", mean, cov, target=target, log_evidence=log_ev)

    def batch(self, gen: torch.Generator):
        if self.batch_size >= self.n:
            return self.x, self.y
        idx = torch.randint(0, self.n, (self.batch_size,), generator=gen)
        return self.x[idx], self.y[idx]


class MixtureProblem:
    """Two-component Gaussian mixture target (equal weights), fitted with a Gaussian family: mismatch.

    The exact answer is p itself; KL(q‖p) and KL(p‖q) are Monte Carlo estimates with fixed
    evaluation samples (common random numbers across checkpoints and methods).
    """

    def __init__(self, dim: int, separation: float = 3.0, seed: int = 0, n_eval: int = 4000):
        gen = torch.Generator().manual_seed(seed + 100 + dim)
        direction = torch.randn(dim, generator=gen)
        direction = direction / direction.norm()
        self.name = f"mixture-d{dim}-sep{separation:g}"
        self.dim = dim
        self.locs = torch.stack([-0.5 * separation * direction, 0.5 * separation * direction])
        self.scales = torch.stack([torch.full((dim,), 1.0), torch.full((dim,), 0.5)])
        self.log_w = torch.log(torch.tensor([0.5, 0.5]))
        self.target = AnalyticTarget(self.log_prob, self.score)
        self.eval_gen_seed = seed + 7
        self.p_samples = self.sample(n_eval, torch.Generator().manual_seed(seed + 5))
        self.n_eval = n_eval

    def _comp(self, th):
        z = (th.unsqueeze(-2) - self.locs) / self.scales
        return -0.5 * (z * z).sum(-1) - torch.log(self.scales).sum(-1) - 0.5 * self.dim * LOG_2PI + self.log_w

    def log_prob(self, th):
        return torch.logsumexp(self._comp(th), -1)

    def score(self, th):
        r = torch.softmax(self._comp(th), -1)
        return (r.unsqueeze(-1) * (-(th.unsqueeze(-2) - self.locs) / self.scales**2)).sum(-2)

    def sample(self, n, gen):
        k = torch.multinomial(self.log_w.exp(), n, replacement=True, generator=gen)
        return self.locs[k] + self.scales[k] * torch.randn(n, self.dim, generator=gen)

    def batch(self, gen):
        return None

    @torch.no_grad()
    def metrics(self, q: VariationalFamily) -> dict[str, float]:
        xq = q.sample(self.n_eval, torch.Generator(device=q.device).manual_seed(self.eval_gen_seed))
        kl = (q.log_prob(xq) - self.log_prob(xq)).mean()
        kl_fwd = (self.log_prob(self.p_samples) - q.log_prob(self.p_samples)).mean()
        return {"kl": float(kl), "kl_forward": float(kl_fwd), "neg_elbo": float(kl)}
