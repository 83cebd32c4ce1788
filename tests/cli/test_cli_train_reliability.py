"""`forecasting train` under concurrency and signals, through real processes: a second run with the same
--run-id fails at once, SIGTERM stops a run cleanly and keeps it resumable, --resume finishes it to the
uninterrupted result, SIGKILL's leftovers go at the next start or with `forecasting runs clean`.

The trainings are tiny (ScoreVI-Koopa, a few steps). A wrapper pauses a training at a chosen ScoreVI step
(after the first posterior checkpoint) until the test lets it go or signals it, so no test depends on timing.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[2]
TINY = ["data.lookback=48", "data.horizon=24", "model.seg_len=24", "model.dynamic_dim=8", "model.hidden_dim=16",
        "model.hidden_layers=1", "model.num_blocks=1", "training.epochs=3", "training.max_batches_per_epoch=4",
        "training.patience=5", "inference.eval_samples=2", "inference.warm_start_epochs=1", "device=cpu"]
SETS = [a for item in TINY for a in ("--set", item)]
PAUSE_STEP = 5  # ScoreVI step 5: epoch 2, after epoch 1's checkpoint

# Runs the CLI; with $PAUSE_FILE set, ScoreVI step PAUSE_STEP creates that file and waits while it exists.
WRAPPER = f"""
import os, sys, time
from pathlib import Path
from forecasting.forecaster.methods import variational_task as vt
_step = vt.VariationalTask.train_step
def train_step(self, x, y, step):
    flag = os.environ.get("PAUSE_FILE")
    if flag and step == {PAUSE_STEP}:
        Path(flag).write_text(str(os.getpid()))
        while Path(flag).exists():
            time.sleep(0.02)
    return _step(self, x, y, step)
vt.VariationalTask.train_step = train_step
from forecasting.cli.entry import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    from forecasting.data import load_series

    d = tmp_path_factory.mktemp("train_reliability")
    f = load_series("vic_elec").tail(2000)
    pl.DataFrame({"Time": f.timestamps, "Demand": f.values[:, 0], "Temperature": f.values[:, 1]}).write_csv(d / "vic.csv")
    (d / "wrapper.py").write_text(WRAPPER)
    return d


def start(work: Path, out: Path, *args: str, pause: Path | None = None, command: str = "train") -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    if pause is not None:
        env["PAUSE_FILE"] = str(pause)
    data = ["--config", "configs/demo.yaml", "--data", str(work / "vic.csv"), *SETS, "--eval-samples", "10"] \
        if command == "train" else []
    return subprocess.Popen([sys.executable, str(work / "wrapper.py"), command, *data, "--out", str(out), "-q",
                             "--threads", "1", *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before {path.name}:\n{proc.stderr.read()[-3000:]}")
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if not line.startswith(("INFO ", "WARNING "))]


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def main_in_process(*argv: str) -> int:
    import torch

    from forecasting.cli.entry import main

    threads = torch.get_num_threads()
    try:
        return main(list(argv))
    finally:
        torch.set_num_threads(threads)


def test_a_second_run_with_the_same_id_fails_at_once_and_the_first_completes(work, tmp_path):
    out = tmp_path / "runs"
    first = start(work, out, "--run-id", "same", "--eval-windows", "10", pause=tmp_path / "paused")
    wait_for(tmp_path / "paused", first)  # the first run is training (its id claimed)
    t0 = time.time()
    second = start(work, out, "--run-id", "same", "--eval-windows", "20")  # a different run: must not replace the first
    code, stdout, err = finish(second)
    assert code == 2 and stdout == "" and time.time() - t0 < 60
    assert error_lines(err) == [error_lines(err)[0]] and "error: run same is still running (process" in err, err
    (tmp_path / "paused").unlink()  # let the first one go
    code, stdout, err = finish(first)
    assert code == 0, err
    assert stdout.strip().splitlines()[-1] == str(out / "same")
    assert json.loads((out / "same" / "metrics.json").read_text())["windows"] == 10  # the first run's own result
    assert (out / "same" / "model" / "manifest.json").is_file() and os.listdir(out) == ["same"]


def test_sigterm_keeps_the_run_resumable_and_resume_gives_the_uninterrupted_result(work, tmp_path):
    out = tmp_path / "runs"
    reference = start(work, out, "--run-id", "reference", "--eval-windows", "10")
    interrupted = start(work, out, "--run-id", "r", "--eval-windows", "10", pause=tmp_path / "paused")
    wait_for(tmp_path / "paused", interrupted)
    interrupted.send_signal(signal.SIGTERM)
    code, stdout, err = finish(interrupted)
    assert code == 143 and stdout == ""
    assert error_lines(err) == [f"interrupted by SIGTERM; run r kept for resuming ({out / '.r.partial'}): "
                                f"forecasting train --resume r --out {out}"], err
    assert finish(reference)[0] == 0
    assert hidden(out) == [".r.partial"] and os.listdir(out / "r") == [".incomplete"]
    assert (out / ".r.partial" / "train" / "posterior" / "checkpoint.pt").is_file()

    # a setting that changes the result is refused; the run is untouched
    assert main_in_process("train", "--resume", "r", "--out", str(out), "--set", "training.epochs=4", "-q") == 2
    assert main_in_process("train", "--resume", "r", "--out", str(out), "--eval-windows", "7", "-q") == 2
    assert main_in_process("runs", "clean", "--out", str(out)) == 0 and hidden(out) == [".r.partial"]

    # resume (the same process count of threads as the reference) -> the uninterrupted result, bit for bit
    assert main_in_process("train", "--resume", "r", "--out", str(out), "-q", "--threads", "1") == 0
    assert hidden(out) == [] and sorted(os.listdir(out)) == ["r", "reference"]
    for group in ("model", "posterior", "likelihood"):  # tensors (the file header's metadata order varies by process)
        resumed, uninterrupted = (load_file(out / run / "model" / f"{group}.safetensors") for run in ("r", "reference"))
        assert resumed.keys() == uninterrupted.keys()
        assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed), group
    assert (out / "r" / "metrics.json").read_bytes() == (out / "reference" / "metrics.json").read_bytes()
    assert "--run-id r --eval-windows 10" in json.loads((out / "r" / "run.json").read_text())["command"]  # the original


def test_sigkill_leftovers_go_at_the_next_start_or_with_runs_clean(work, tmp_path, capsys):
    out = tmp_path / "runs"
    demo = start(work, out / "demo", "--data", str(work / "vic.csv"), *SETS, "--eval-windows", "5",
                 pause=tmp_path / "paused-demo", command="demo")
    run = start(work, out, "--run-id", "k", pause=tmp_path / "paused-k")
    for proc, flag in ((demo, "paused-demo"), (run, "paused-k")):
        wait_for(tmp_path / flag, proc)
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    left = hidden(out)
    assert ".demo.lock" in left and any(n.startswith(".demo.tmp-") for n in left) and ".k.partial" in left, left

    # the next run in the folder removes the dead demo's staging folder and lock; the killed run stays resumable
    assert main_in_process("train", "--config", "configs/demo.yaml", "--data", str(work / "vic.csv"), *SETS,
                           "--out", str(out), "--run-id", "next", "--no-eval", "-q") == 0
    assert hidden(out) == [".k.partial"] and sorted(os.listdir(out)) == [".k.partial", "k", "next"]
    capsys.readouterr()
    assert main_in_process("runs", "list", "--out", str(out)) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith(f"{out / 'next'}\tfinished") and listed[1].startswith(f"{out / 'k'}\tinterrupted, resumable")
    assert main_in_process("runs", "clean", "--out", str(out), "--interrupted") == 0
    printed = capsys.readouterr()
    assert [line.split("\t")[0] for line in printed.out.splitlines()] == [str(out / "k"), str(out / ".k.partial")]
    assert printed.err.startswith(f"removed 1 leftover(s) in {out}/")
    assert sorted(os.listdir(out)) == ["next"]
