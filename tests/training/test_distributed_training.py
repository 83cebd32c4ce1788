"""Data-parallel training under torchrun (CPU, gloo): equivalence, sync, rank-0-only writes, dead ranks."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from forecasting.core import distributed as d
from forecasting.bayes.distributed import DistributedTarget
from forecasting.core.errors import ForecastingError
from forecasting.training import TrainConfig
from forecasting.training.parallel import shard_order

WORKER = Path(__file__).resolve().parent / "distributed_worker.py"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")}
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- in-process: sampler semantics and single-process pass-through ----------------------------
def test_shard_order_is_distributed_sampler_and_unions_to_the_doubled_batch():
    n, world = 10, 3
    sampler = [list(torch.utils.data.DistributedSampler(range(n), world, r, shuffle=False)) for r in range(world)]
    assert [shard_order(torch.arange(n), r, world).tolist() for r in range(world)] == sampler
    order, batch = torch.randperm(16, generator=torch.Generator().manual_seed(0)), 4
    shards = [shard_order(order, r, 2) for r in range(2)]
    for i in range(2):  # step i of 2 ranks with batch B == step i of 1 process with batch 2B
        union = torch.cat([s[i * batch : (i + 1) * batch] for s in shards])
        assert sorted(union.tolist()) == sorted(order[i * 2 * batch : (i + 1) * 2 * batch].tolist())


def test_single_process_is_untouched(monkeypatch):
    for k in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(k, raising=False)
    assert d.init_distributed() is False and not d.is_distributed() and d.is_main_process()

    class T:
        def scores(self, thetas, batch):
            return thetas.sum(1), 2 * thetas

    th = torch.randn(3, 4)
    v, g = DistributedTarget(T()).scores(th, None)
    assert torch.equal(g, 2 * th) and torch.equal(d.all_reduce(th), th)
    assert d.main_then_broadcast(lambda: 5) == 5


def test_incomplete_environment_and_bad_options_are_clear(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(d.DistributedError, match="MASTER_ADDR"):
        d.init_distributed()
    with pytest.raises(ForecastingError, match="dist_samples"):
        TrainConfig(dist_samples="half")
    with pytest.raises(ForecastingError, match="precision"):
        TrainConfig(precision="fp8")
    with pytest.raises(ForecastingError, match="samples mode"):
        DistributedTarget(object(), "some")


# -- two processes ------------------------------------------------------------------------------
def test_two_ranks_equal_one_process_with_doubled_batch(shared_data_dir, tmp_path):
    """torchrun --nproc_per_node 2 with batch B == 1 process with batch 2B and the same samples."""
    import distributed_worker as w

    from forecasting.forecaster.api import Forecaster

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # the reference, in this process (not distributed)
        ref = Forecaster.fit(w.tiny_frame(shared_data_dir), w.config(2 * w.BATCH))
    finally:
        torch.set_num_threads(threads)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
           str(WORKER), "fit", str(tmp_path), str(shared_data_dir)]
    proc = subprocess.run(cmd, env=_clean_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert (r0["world"], r1["rank"]) == (2, 1)
    # Same update on every rank: bit-identical posteriors, and the loop's own sync check says 0.
    assert r0["div_shared"] == 0.0 and r1["div_split"] == 0.0
    for key in ("shared", "split"):
        for name, value in r0[key].items():
            assert torch.equal(value, r1[key][name]), (key, name)
            assert torch.isfinite(value).all()
    # Averaged scores of two batches of B == the score of their union (batch 2B): same posterior.
    expected = {k: v.detach() for k, v in ref.runtime.family.state_dict().items()}
    for name, value in r0["shared"].items():
        torch.testing.assert_close(value, expected[name], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(r0["noise"]["log_scale"], ref.likelihood.state_dict()["log_scale"], rtol=1e-4, atol=1e-5)
    # Split samples: a different (noisier) estimator, but still in sync.
    assert any(not torch.allclose(r0["split"][k], expected[k]) for k in expected)
    # Only rank 0 wrote: one metrics line per epoch, one artifact.
    lines = (tmp_path / "run" / "posterior" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["steps"] == 4
    assert (tmp_path / "model").is_dir()


def _launch_pair(mode: str, out: Path, data: Path, timeout_s: float) -> tuple[subprocess.Popen, subprocess.Popen]:
    port = str(_free_port())
    procs = []
    for r in range(2):
        env = _clean_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, WORLD_SIZE="2", RANK=str(r), LOCAL_RANK=str(r),
                         TEST_DIST_TIMEOUT=str(timeout_s))
        procs.append(subprocess.Popen([sys.executable, str(WORKER), mode, str(out), str(data)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return procs[0], procs[1]


def _finish(p: subprocess.Popen, timeout: float) -> str:
    try:
        out, _ = p.communicate(timeout=timeout)
        return out
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()


def test_dead_rank_ends_the_run_with_an_error(shared_data_dir, tmp_path):
    """Rank 1 dies mid-training (abrupt exit): rank 0 stops with a DistributedError, not a hang."""
    timeout_s = 60.0
    t0 = time.perf_counter()
    p0, p1 = _launch_pair("die", tmp_path, shared_data_dir, timeout_s)
    try:
        log0 = _finish(p0, 180)
    finally:
        _finish(p1, 30)
    assert p1.returncode == 17
    assert p0.returncode == 3, log0[-3000:]
    err = json.loads((tmp_path / "error0.json").read_text())
    assert "rank 0/2" in err["message"] and "another rank died" in err["message"]
    assert err["seconds"] < timeout_s, "a dead peer must be detected well before the timeout"
    assert time.perf_counter() - t0 < 170


@pytest.mark.slow
def test_stalled_rank_fails_after_the_timeout(shared_data_dir, tmp_path):
    """Rank 1 hangs (alive but silent): rank 0 fails once the collective timeout (5 s) passes."""
    p0, p1 = _launch_pair("stall", tmp_path, shared_data_dir, 5.0)
    try:
        log0 = _finish(p0, 180)
    finally:
        p1.kill()
        _finish(p1, 30)
    assert p0.returncode == 3, log0[-3000:]
    err = json.loads((tmp_path / "error0.json").read_text())
    assert "within the 5s timeout" in err["message"]
