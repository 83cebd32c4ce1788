"""Koopa: Koopman predictors for non-stationary time series, with a pure ``forward``.

Liu, Li, Wang, Long, "Koopa: Learning Non-stationary Time Series Dynamics with Koopman
Predictors", NeurIPS 2023 (arXiv 2305.18803). Our own implementation of the architecture
described in ``docs/koopa.md``:

1. instance normalisation over the lookback (detached statistics, eps 1e-5);
2. Fourier filter with a fixed, data-derived mask (a buffer) splitting the input into a
   time-invariant part ``x_inv`` (masked bins) and a time-variant part ``x_var`` (the rest);
3. time-invariant Koopman predictor (Sec. 3.3): channel-independent encoder ``L -> D``, one
   global linear operator ``K_inv`` per block, decoder ``D -> H``;
4. time-variant Koopman predictor (Sec. 3.4): segment embeddings, a *local* operator fitted per
   sample by least squares between consecutive embeddings (Eq. 6), rolled forward, plus a
   backcast of the lookback;
5. stacked residual blocks (Sec. 3.5); de-normalisation.

Differences from the public code (fixing the defects listed in docs/koopa.md):

* ``forward`` writes no state, so it runs under ``torch.func.functional_call`` and ``vmap``;
* the local operator is a ridge (Tikhonov) solution computed in float64 — it is finite for
  constant, all-zero, rank-deficient and tiny- or huge-scale embeddings; a non-finite result
  (only possible from non-finite embeddings) is replaced by the identity and *counted* by
  :meth:`Koopa.diagnostics`, never printed;
* ``seg_len`` is free; when ``L`` is not a multiple of ``S`` the input is front-padded by
  repeating its first row and the backcast drops exactly that padding, so it stays aligned
  with the input (the public code cuts the wrong end).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from forecasting.core.errors import ForecastingError
from forecasting.models.koopa.frequency_mask import n_mask_bins

_NORM_EPS = 1e-5


@dataclass(frozen=True)
class KoopaHyperparameters:
    """Koopa's hyper-parameters apart from the window: the one place where their defaults (the paper's) live.

    The forecaster's ``model`` config section is this class (lookback/horizon come from its
    ``data`` section) and the dashboard reads its defaults from here, so a default changed here
    changes everywhere.

    Attributes:
        seg_len: segment length ``S`` of the time-variant predictor; ``None`` means ``S = H`` as
            in the official scripts. Must be smaller than ``L`` (at least two segments are needed
            for a least-squares operator). Smaller ``S`` gives more segments and a better
            determined local operator.
        dynamic_dim: Koopman embedding size ``D``.
        hidden_dim: width of the encoder/decoder MLPs.
        hidden_layers: number of linear layers in each MLP (>= 1).
        num_blocks: number of stacked Koopa blocks.
        alpha: share of rFFT bins treated as time-invariant (mask size ``floor((L//2+1)*alpha)``).
        dropout: dropout after every hidden activation (kept as in the paper; MC dropout relies on it).
        multistep: ``True`` = matrix-power rollout (the paper's ``KPLayerApprox``), ``False`` =
            exact step-by-step rollout.
        ridge: Tikhonov weight of the local least-squares operator, *relative* to the mean
            squared norm of the embeddings (scale-free); tiny, so the solution is essentially the
            minimum-norm least-squares fit.
    """

    seg_len: int | None = None
    dynamic_dim: int = 128
    hidden_dim: int = 64
    hidden_layers: int = 2
    num_blocks: int = 3
    alpha: float = 0.2
    dropout: float = 0.05
    multistep: bool = False
    ridge: float = 1e-4

    def for_window(self, lookback: int, horizon: int) -> KoopaConfig:
        """The full (validated) :class:`KoopaConfig` of these hyper-parameters for a window ``L -> H``."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(KoopaHyperparameters)}
        return KoopaConfig(lookback=lookback, horizon=horizon, **values)


@dataclass(frozen=True)
class KoopaConfig(KoopaHyperparameters):
    """Koopa's hyper-parameters for one window size (defaults: :class:`KoopaHyperparameters`).

    Attributes:
        lookback: input length ``L`` (the benchmark uses ``2 * horizon``).
        horizon: forecast length ``H``.

    Both are keyword-only: they follow the defaulted fields they extend.
    """

    lookback: int = field(kw_only=True)
    horizon: int = field(kw_only=True)

    def __post_init__(self) -> None:
        problems = []
        if self.lookback < 2 or self.horizon < 1:
            problems.append(f"lookback must be >= 2 and horizon >= 1 (got {self.lookback}, {self.horizon})")
        s = self.segment_length
        if not 1 <= s < self.lookback:
            problems.append(f"seg_len must be in [1, lookback) so the lookback has >= 2 segments (got seg_len={s}, lookback={self.lookback})")
        for name in ("dynamic_dim", "hidden_dim", "hidden_layers", "num_blocks"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1 (got {getattr(self, name)})")
        if not 0.0 <= self.alpha <= 1.0:
            problems.append(f"alpha must be in [0, 1] (got {self.alpha})")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1) (got {self.dropout})")
        if self.ridge < 0:
            problems.append(f"ridge must be >= 0 (got {self.ridge})")
        if problems:
            raise ForecastingError("invalid Koopa config: " + "; ".join(problems))

    @property
    def segment_length(self) -> int:
        """Effective ``S`` (``seg_len`` or, when unset, ``horizon``)."""
        return self.horizon if self.seg_len is None else int(self.seg_len)

    @property
    def n_segments_in(self) -> int:
        """``F = ceil(L / S)`` input segments."""
        return math.ceil(self.lookback / self.segment_length)

    @property
    def n_segments_out(self) -> int:
        """``ceil(H / S)`` forecast segments."""
        return math.ceil(self.horizon / self.segment_length)

    @property
    def n_mask_bins(self) -> int:
        return n_mask_bins(self.lookback, self.alpha)


class FlatMLP(nn.Sequential):
    """An MLP over the last dimension that runs its layers on a 2-D ``[rows, features]`` view.

    Same parameters and outputs as the plain :class:`nn.Sequential`. Why: under ``vmap`` over weight
    samples (Bayesian prediction, ScoreVI scores), ``nn.Linear`` on a 3-D input ``[B, C, L]`` with a
    batched weight expands the weight over ``B`` — a copy of ``S × B`` weight matrices (157 MB per
    layer call for the ETTh1 H = 48 preset, 40 % of the prediction time). On the flattened
    ``[B·C, L]`` rows the same product is one batched matmul per weight sample, with no copy.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = super().forward(x.reshape(-1, x.shape[-1]))
        return y.reshape(*lead, y.shape[-1])


def mlp(f_in: int, f_out: int, hidden: int, layers: int, dropout: float, activation: type[nn.Module]) -> nn.Sequential:
    """``layers`` linear layers with activation + dropout between them (the paper's MLP)."""
    if layers == 1:
        return FlatMLP(nn.Linear(f_in, f_out))
    mods: list[nn.Module] = [nn.Linear(f_in, hidden), activation(), nn.Dropout(dropout)]
    for _ in range(layers - 2):
        mods += [nn.Linear(hidden, hidden), activation(), nn.Dropout(dropout)]
    mods.append(nn.Linear(hidden, f_out))
    return FlatMLP(*mods)


def ridge_factors(z: torch.Tensor, ridge: float = 1e-4, eps: float = 1e-12) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Local Koopman operator of Koopa Eq. (6) with a Tikhonov term, in factored form ``K = A @ B``.

    ``K = argmin ||X K - Y||^2 + lam ||K||^2`` with ``X = z[:-1], Y = z[1:]`` and
    ``lam = ridge * mean(diag(X X^T)) + eps``: relative to the embedding scale (detached: a
    regulariser, not a learnable path). The linear system is solved in float64 on the smaller of

    * the dual ``K = X^T (X X^T + lam I)^-1 Y`` (``n x n`` with ``n = F - 1`` when ``n <= D``):
      returned as ``A = X^T [.., D, n]``, ``B = (X X^T + lam I)^-1 Y [.., n, D]`` — with the
      official ``S = H, L = 2H`` (``n = 1``) the ``D x D`` operator is never formed;
    * the primal ``(X^T X + lam I) K = X^T Y`` (``D x D``): returned as ``A = None``, ``B = K``.

    Both systems are positive definite, so the result is finite for any finite ``z`` (constant,
    zero, rank-deficient, tiny- or huge-scale embeddings).

    Returns:
        ``(A, B, ok)``; ``ok [..]`` is False where the embeddings were non-finite or the solve failed
        — callers then use the identity operator.
    """
    x, y = z[..., :-1, :], z[..., 1:, :]
    n, d = x.shape[-2], x.shape[-1]
    finite_in = torch.isfinite(z).flatten(-2).all(-1)
    x64 = torch.nan_to_num(x.double(), nan=0.0, posinf=0.0, neginf=0.0)
    y64 = torch.nan_to_num(y.double(), nan=0.0, posinf=0.0, neginf=0.0)
    dual = n <= d
    gram = x64 @ x64.mT if dual else x64.mT @ x64
    rhs = y64 if dual else x64.mT @ y64
    m = gram.shape[-1]
    scale = torch.diagonal(gram, dim1=-2, dim2=-1).sum(-1).detach() / max(n, 1)
    lam = ridge * scale + eps
    eye = torch.eye(m, dtype=gram.dtype, device=gram.device)
    sol, info = torch.linalg.solve_ex(gram + lam[..., None, None] * eye, rhs)
    ok = finite_in & (info == 0) & torch.isfinite(sol).flatten(-2).all(-1)
    b = torch.nan_to_num(sol, nan=0.0, posinf=0.0, neginf=0.0).to(z.dtype)
    a = x64.mT.to(z.dtype) if dual else None
    return a, b, ok


def apply_operator(z: torch.Tensor, a: torch.Tensor | None, b: torch.Tensor, ok: torch.Tensor, power: int = 1) -> torch.Tensor:
    """``z @ K**power`` for ``K = A @ B`` from :func:`ridge_factors` (identity where ``ok`` is False).

    In factored form ``K^p = A (B A)^(p-1) B`` needs only ``n x n`` powers.
    """
    if a is None:
        out = z @ _matrix_power(b, power)
    else:
        out = z @ a
        if power > 1:
            out = out @ _matrix_power(b @ a, power - 1)
        out = out @ b
    return torch.where(ok[..., None, None], out, z)


def ridge_operator(z: torch.Tensor, ridge: float = 1e-4, eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    """The local operator as a dense matrix: ``(K [.., D, D], ok [..])`` (identity where not ``ok``).

    See :func:`ridge_factors`; the model itself uses the cheaper factored form.
    """
    a, b, ok = ridge_factors(z, ridge, eps)
    k = b if a is None else a @ b
    eye = torch.eye(k.shape[-1], dtype=k.dtype, device=k.device)
    return torch.where(ok[..., None, None], k, eye), ok


def _matrix_power(k: torch.Tensor, power: int) -> torch.Tensor:
    """``k ** power`` by repeated squaring (static exponent: vmap-safe, no data-dependent control flow)."""
    result: torch.Tensor | None = None
    base = k
    while power > 0:
        if power & 1:
            result = base if result is None else result @ base
        power >>= 1
        if power:
            base = base @ base
    if result is None:
        return torch.eye(k.shape[-1], dtype=k.dtype, device=k.device).expand_as(k)
    return result


class TimeVariantPredictor(nn.Module):
    """Koopa time-variant Koopman predictor for one block.

    Holds no parameters: the encoder (``S*C -> D``, tanh MLP) and decoder (``D -> S*C``) are shared
    by all blocks, so they are owned once by :class:`Koopa` and passed in at call time. (Registering
    one module under several names breaks ``torch.func.functional_call`` under ``vmap``: the
    tied parameters are not restored afterwards.)

    Args:
        config: the model config.
        n_channels: ``C``.
    """

    def __init__(self, config: KoopaConfig, n_channels: int):
        super().__init__()
        self.seg_len = config.segment_length
        self.n_in = config.n_segments_in
        self.n_out = config.n_segments_out
        self.lookback, self.horizon, self.n_channels = config.lookback, config.horizon, n_channels
        self.pad = self.seg_len * self.n_in - self.lookback
        self.multistep, self.ridge = config.multistep, config.ridge

    def forward(self, x: torch.Tensor, encoder: nn.Module, decoder: nn.Module,
                record: list | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, L, C]`` -> ``(backcast [B, L, C], forecast [B, H, C])``; ``record`` collects solve flags."""
        b, c, s = x.shape[0], self.n_channels, self.seg_len
        if self.pad:
            # Replicate the first row so the *last* segment ends at the last observation (the
            # forecast continues from it); the backcast drops the same rows below.
            x = torch.cat([x[:, :1].expand(b, self.pad, c), x], dim=1)
        segs = x.reshape(b, self.n_in, s * c)  # row-major: segment j = rows j*S .. j*S+S-1
        z = encoder(segs)  # [B, F, D]
        a, b_, ok = ridge_factors(z, self.ridge)
        if record is not None:
            record.append(ok)
        # One-step reconstruction of segments 1..F-1 from their predecessors (segment 0 is kept).
        z_rec = torch.cat([z[:, :1], apply_operator(z[:, :-1], a, b_, ok)], dim=1)
        if self.multistep:
            z_pred = self._rollout_multistep(z, a, b_, ok)
        else:
            steps, cur = [], z[:, -1:]
            for _ in range(self.n_out):
                cur = apply_operator(cur, a, b_, ok)
                steps.append(cur)
            z_pred = torch.cat(steps, dim=1)
        backcast = decoder(z_rec).reshape(b, self.n_in * s, c)[:, self.pad :]
        forecast = decoder(z_pred).reshape(b, self.n_out * s, c)[:, : self.horizon]
        return backcast, forecast

    def _rollout_multistep(self, z: torch.Tensor, a, b, ok) -> torch.Tensor:
        """Paper's approximate rollout: segment ``t + n`` from segment ``t`` by ``K^n``."""
        if self.n_out <= self.n_in:
            return apply_operator(z[:, -self.n_out :], a, b, ok, power=self.n_out)
        out, cur = [], z
        for _ in range(math.ceil(self.n_out / self.n_in)):
            cur = apply_operator(cur, a, b, ok, power=self.n_in)
            out.append(cur)
        return torch.cat(out, dim=1)[:, : self.n_out]


class TimeInvariantPredictor(nn.Module):
    """Koopa time-invariant Koopman predictor: ``decoder(K_inv encoder(x))`` per channel.

    ``K_inv`` is a bias-free ``D x D`` linear map initialised as a random orthogonal matrix
    (``U V^T`` of the SVD of a Gaussian matrix), as in the paper. The encoder (``L -> D``) and
    decoder (``D -> H``) are shared by all blocks and passed in at call time (see
    :class:`TimeVariantPredictor` for why they are not submodules here).
    """

    def __init__(self, dynamic_dim: int):
        super().__init__()
        self.K = nn.Linear(dynamic_dim, dynamic_dim, bias=False)
        with torch.no_grad():
            u, _, vh = torch.linalg.svd(torch.randn(dynamic_dim, dynamic_dim))
            self.K.weight.copy_(u @ vh)

    def forward(self, x: torch.Tensor, encoder: nn.Module, decoder: nn.Module) -> torch.Tensor:
        """``x [B, L, C]`` -> ``[B, H, C]`` (channel-independent)."""
        return decoder(self.K(encoder(x.transpose(1, 2)))).transpose(1, 2)


class Koopa(nn.Module):
    """The Koopa forecaster. ``forward(x [B, L, C]) -> [B, H, C]``, pure.

    Args:
        config: hyper-parameters.
        n_channels: number of channels ``C`` (the time-variant encoder sees ``S * C`` values).
        freq_mask: ``LongTensor`` of time-invariant rFFT bin indices from
            :func:`forecasting.models.koopa.frequency_mask.compute_frequency_mask` (computed on training
            rows). Stored as the buffer ``freq_mask`` so it is saved with the weights.
    """

    def __init__(self, config: KoopaConfig, n_channels: int, freq_mask: torch.Tensor):
        super().__init__()
        if n_channels < 1:
            raise ForecastingError(f"n_channels must be >= 1, got {n_channels}")
        mask = torch.as_tensor(freq_mask, dtype=torch.long).flatten()
        n_bins = config.lookback // 2 + 1
        if mask.numel() and (mask.min() < 0 or mask.max() >= n_bins):
            raise ForecastingError(
                f"frequency mask has bins outside [0, {n_bins}) for lookback {config.lookback}; "
                "recompute it with compute_frequency_mask(train_values, lookback, alpha)"
            )
        self.config, self.n_channels = config, n_channels
        self.register_buffer("freq_mask", mask)
        cfg, d, s = config, config.dynamic_dim, config.segment_length
        self.time_inv_encoder = mlp(cfg.lookback, d, cfg.hidden_dim, cfg.hidden_layers, cfg.dropout, nn.ReLU)
        self.time_inv_decoder = mlp(d, cfg.horizon, cfg.hidden_dim, cfg.hidden_layers, cfg.dropout, nn.ReLU)
        self.time_var_encoder = mlp(s * n_channels, d, cfg.hidden_dim, cfg.hidden_layers, cfg.dropout, nn.Tanh)
        self.time_var_decoder = mlp(d, s * n_channels, cfg.hidden_dim, cfg.hidden_layers, cfg.dropout, nn.Tanh)
        self.time_inv_kps = nn.ModuleList(
            TimeInvariantPredictor(d) for _ in range(cfg.num_blocks)
        )
        self.time_var_kps = nn.ModuleList(
            TimeVariantPredictor(cfg, n_channels) for _ in range(cfg.num_blocks)
        )

    def fourier_filter(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split ``x [B, L, C]`` into ``(x_var, x_inv)``: ``x_inv`` keeps only the masked bins."""
        spec = torch.fft.rfft(x, dim=1)
        keep = torch.ones(spec.shape[1], dtype=x.dtype, device=x.device).index_fill(0, self.freq_mask, 0.0)
        x_var = torch.fft.irfft(spec * keep[:, None], n=x.shape[1], dim=1)
        return x_var, x - x_var

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forecast ``[B, H, C]`` from the lookback ``x [B, L, C]``. Writes no state."""
        return self._forward(x, None)

    def _forward(self, x: torch.Tensor, record: list | None) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.config.lookback or x.shape[2] != self.n_channels:
            raise ValueError(f"expected x [B, {self.config.lookback}, {self.n_channels}], got {tuple(x.shape)}")
        # Instance normalisation (non-stationary transformer style), statistics detached.
        mean = x.mean(dim=1, keepdim=True).detach()
        x = x - mean
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + _NORM_EPS).detach()
        residual = x / std
        forecast = None
        for inv_kp, var_kp in zip(self.time_inv_kps, self.time_var_kps):
            x_var, x_inv = self.fourier_filter(residual)
            out_inv = inv_kp(x_inv, self.time_inv_encoder, self.time_inv_decoder)
            backcast, out_var = var_kp(x_var, self.time_var_encoder, self.time_var_decoder, record)
            residual = residual - backcast
            block = out_inv + out_var
            forecast = block if forecast is None else forecast + block
        return forecast * std + mean

    @torch.no_grad()
    def diagnostics(self, x: torch.Tensor) -> dict[str, float]:
        """Numerical health of the local least-squares step on a batch (outside ``forward``, so that stays pure).

        Returns:
            ``ls_solves`` (per-sample solves run), ``ls_fallbacks`` (solves replaced by the identity
            because the embeddings were non-finite) and ``forecast_finite`` (1.0 if every output is finite).
        """
        record: list[torch.Tensor] = []
        out = self._forward(x, record)
        flags = torch.cat([r.flatten() for r in record]) if record else torch.ones(0, dtype=torch.bool)
        return {
            "ls_solves": float(flags.numel()),
            "ls_fallbacks": float((~flags).sum().item()),
            "forecast_finite": float(torch.isfinite(out).all().item()),
        }

    def extra_repr(self) -> str:
        c = self.config
        return (f"L={c.lookback}, H={c.horizon}, S={c.segment_length}, D={c.dynamic_dim}, blocks={c.num_blocks}, "
                f"channels={self.n_channels}, mask_bins={self.freq_mask.numel()}")


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (shared encoders counted once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
