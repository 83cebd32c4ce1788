"""``forecasting runs``: list the runs in a runs folder and clean up after dead processes.

``forecasting runs list`` shows finished runs (newest first) and unfinished ones (running, or
interrupted and resumable with ``forecasting train --resume``). ``forecasting runs clean`` removes
what killed or crashed processes left (hidden staging folders, stale locks, unfinished runs that
cannot be resumed) and, with ``--interrupted``, resumable runs too; running runs are never touched.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from forecasting.forecaster.runs import clean_runs, list_runs, unfinished_runs

EPILOG = """examples:
  forecasting runs list
  forecasting runs clean --out runs/ --dry-run
  forecasting runs clean --interrupted      # also drop interrupted runs instead of resuming them"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list runs; clean up after interrupted or killed runs",
                       description="List the runs in a runs folder, or remove what interrupted or killed runs left.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    ls = actions.add_parser("list", help="finished and unfinished runs", description="Finished runs (newest first), "
                            "then unfinished ones: running, or interrupted (resumable with forecasting train --resume).")
    _out(ls)
    ls.set_defaults(func=run_list)
    clean = actions.add_parser("clean", help="remove what dead processes left (prints each removed path)",
                               description="Remove hidden staging folders and locks of processes that are gone, and "
                                           "unfinished runs that cannot be resumed; running runs are never touched. "
                                           "Each removed path is printed.")
    _out(clean)
    clean.add_argument("--interrupted", action="store_true",
                       help="also remove interrupted runs that could be resumed (their checkpoints)")
    clean.add_argument("--dry-run", action="store_true", help="only print what would be removed")
    clean.set_defaults(func=run_clean)


def _out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs", help="the runs folder (default: %(default)s/)")


def run_list(args: argparse.Namespace) -> int:
    for r in list_runs(args.out):
        summary = r.meta.get("training_summary") or {}
        print(f"{r.path}\tfinished\t{r.meta.get('created') or '-'}\t{summary.get('method', '-')}\t{r.meta.get('dataset') or '-'}")
    for u in unfinished_runs(args.out):
        state = "running" if u.state == "running" else ("interrupted, resumable" if u.resumable else "interrupted")
        print(f"{u.path}\t{state}\t{u.marker.get('created') or '-'}\tpid {u.pid}\t{u.marker.get('command') or '-'}")
    return 0


def run_clean(args: argparse.Namespace) -> int:
    removed = clean_runs(args.out, interrupted=args.interrupted, dry_run=args.dry_run)
    for item in removed:
        print(f"{item.path}\t{item.detail}")
        if item.staging is not None:
            print(f"{item.staging}\tits staging folder")
    gone = {item.path for item in removed}
    kept = [u for u in unfinished_runs(args.out) if u.resumable and u.path not in gone]
    verb = "would remove" if args.dry_run else "removed"
    line = f"{verb} {len(removed)} leftover(s) in {Path(args.out)}/"
    if kept:
        line += (f"; kept {len(kept)} interrupted run(s) that can be resumed ({', '.join(u.name for u in kept)}: "
                 "forecasting train --resume ID; --interrupted removes them)")
    print(line, file=sys.stderr)
    return 0
