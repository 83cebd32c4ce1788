"""Claims, locks and leftovers (forecasting.core.claims) and stop signals (forecasting.core.signals): a name is
built by one process at a time, a finished build never replaces another, what dead processes leave is found."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forecasting.core import claims, signals
from forecasting.core.atomic import staged_dir
from forecasting.core.errors import ForecastingError


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The PID of a process that has ended (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_second_builder_of_the_same_name_fails_at_once(tmp_path):
    final = tmp_path / "run"
    with staged_dir(final) as stage:
        assert stage == tmp_path / ".run.partial" and os.listdir(final) == [".incomplete"]
        with pytest.raises(ForecastingError, match="being built by another process"):
            with staged_dir(final):
                pass
        (stage / "x").write_text("first")
    assert (final / "x").read_text() == "first" and _hidden(tmp_path) == [] and os.listdir(final) == ["x"]


def test_commit_never_replaces_what_is_already_there(tmp_path):
    final = tmp_path / "run"
    claims.claim_dir(final)
    stage = claims.partial_path(final)
    stage.mkdir()
    (stage / "mine").write_text("new")
    (final / "theirs").write_text("kept")  # something else got in (a bug, a person): never swapped out
    with pytest.raises(ForecastingError, match="left untouched"):
        claims.commit_claim(stage, final)
    assert (final / "theirs").read_text() == "kept" and (stage / "mine").read_text() == "new"
    assert claims.read_claim(final)["state"] == "running"  # the claim is back where it was


def test_owner_liveness(dead_pid):
    assert claims.owner_alive(claims.owner_record())
    assert not claims.owner_alive({"pid": dead_pid, "host": claims.owner_record()["host"], "started": None})
    me = claims.owner_record()
    if me["started"] is not None:  # Linux: a live PID whose process started later is someone else
        assert not claims.owner_alive({**me, "started": me["started"] - 3600})
    assert claims.owner_alive({"pid": dead_pid, "host": "another-machine", "started": None})  # cannot judge: kept


def test_leftovers_of_dead_processes_are_found_and_removed(tmp_path, dead_pid):
    tag = claims.host_tag()
    mine = tmp_path / f".model.tmp-{tag}.{os.getpid()}-0123abcd"
    dead = tmp_path / f".model.tmp-{tag}.{dead_pid}-0123abcd"
    swap = tmp_path / f".model.old-{tag}.{dead_pid}-89abcdef"
    foreign = tmp_path / f".model.tmp-ffffff.{dead_pid}-0123abcd"  # another host: not judged
    legacy = tmp_path / ".old-run.tmp-0badf00d"  # an earlier version: no owner, older than this process
    for d in (mine, dead, swap, foreign, legacy):
        (d / "model").mkdir(parents=True)
    os.utime(legacy, (0, 0))
    (tmp_path / ".demo.lock").write_text(json.dumps({"pid": dead_pid, "host": claims.owner_record()["host"]}))
    # claimed builds: one alive, one dead that cannot be resumed, one dead that can
    claims.claim_dir(tmp_path / "alive")
    (tmp_path / ".alive.partial").mkdir()
    for name, resumable in (("gone", False), ("resumable", True)):
        claims.claim_dir(tmp_path / name)
        claims.update_claim(tmp_path / name, owner={"pid": dead_pid, "host": claims.owner_record()["host"]},
                            resumable=resumable)
        (tmp_path / f".{name}.partial" / "train").mkdir(parents=True)
    (tmp_path / ".orphan.partial").mkdir()  # no build claims it
    (tmp_path / "finished").mkdir()

    found = {item.path.name: item.kind for item in claims.find_leftovers(tmp_path)}
    assert found == {dead.name: "staging", swap.name: "swap", legacy.name: "staging", ".demo.lock": "lock",
                     "gone": "claim", ".orphan.partial": "staging"}
    removed = claims.remove_leftovers(tmp_path)
    assert {item.path.name for item in removed} == set(found)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [mine.name, foreign.name, "alive", ".alive.partial", "resumable", ".resumable.partial", "finished"])
    assert [i.path.name for i in claims.remove_leftovers(tmp_path, interrupted=True)] == ["resumable"]
    assert not (tmp_path / ".resumable.partial").exists() and not (tmp_path / "resumable").exists()


def test_taking_over_an_interrupted_claim_is_exclusive(tmp_path):
    final = tmp_path / "run"
    claims.claim_dir(final, command="first")
    with pytest.raises(claims.ClaimError, match="still being built"):
        claims.take_claim(final)  # its owner (this process) runs and did not mark it interrupted
    claims.update_claim(final, state=claims.INTERRUPTED)
    old = claims.take_claim(final)
    assert old["command"] == "first" and old["state"] == claims.INTERRUPTED
    marker = claims.read_claim(final)
    assert marker["state"] == claims.RUNNING and marker["command"] == "first" and os.listdir(final) == [".incomplete"]


def test_a_replacing_build_is_locked_and_the_lock_of_a_dead_process_is_taken_over(tmp_path, dead_pid):
    final = tmp_path / "model"
    with staged_dir(final, replace=True):
        assert (tmp_path / ".model.lock").is_file()
        with pytest.raises(ForecastingError, match="being written by another process"):
            with staged_dir(final, replace=True):
                pass
    assert _hidden(tmp_path) == []
    (tmp_path / ".model.lock").write_text(json.dumps({"pid": dead_pid, "host": claims.owner_record()["host"]}))
    with staged_dir(final, replace=True) as stage:
        (stage / "w").write_text("new")
    assert (final / "w").read_text() == "new" and _hidden(tmp_path) == []


def test_sigterm_raises_like_ctrl_c_and_deferred_holds_it_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(signals.Interrupted) as info:
        with signals.stop_signals_raise():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here
    assert isinstance(info.value, KeyboardInterrupt) and info.value.exit_code == 143 and info.value.signal_name == "SIGTERM"
    steps = []
    with pytest.raises(signals.Interrupted):
        with signals.stop_signals_raise():
            with signals.deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                steps.append("finished together")
    assert steps == ["finished together"]
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored
