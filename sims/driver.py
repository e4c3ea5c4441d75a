"""What every proxy simulation shares: options, publishing Blueprint meshes, running actions, timing.

A proxy provides a :class:`Proxy` (initial state, one stable update, fields); :func:`main`
parses the common options, runs the time loop under MPI, publishes each rank's
block with its ghost layers every ``--publish-every`` steps, executes the
actions, records simulation vs in situ seconds per published cycle, runs the
final actions (a Cinema database by default) and prints the run summary.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .decomposition import CartDecomposition

ACTIONS_DIR = Path(__file__).resolve().parent / "actions"


@dataclass
class Proxy:
    """A simulation, as the driver sees it.

    ``init(dec, args) -> state`` (arrays with ghosts, ghosts filled, plus ``"time"``);
    ``update(dec, state, args, dt)`` advances by one update of ``dt`` and leaves the ghosts filled;
    ``fields(dec, state) -> {name: array with ghosts}``; ``max_dt(args)`` is the largest stable
    update (ValueError for parameters that cannot run). One ``--steps`` step covers
    ``--step-time`` of simulated time in as many equal updates as stability needs.
    """

    name: str
    description: str
    init: Callable[[CartDecomposition, argparse.Namespace], dict]
    update: Callable[[CartDecomposition, dict, argparse.Namespace, float], None]
    fields: Callable[[CartDecomposition, dict], dict[str, np.ndarray]]
    max_dt: Callable[[argparse.Namespace], float]
    default_grid: int = 64
    default_steps: int = 40
    default_step_time: float = 1.0
    periodic: tuple[bool, bool, bool] = (True, True, True)
    add_options: Callable[[argparse.ArgumentParser], None] | None = None
    spacing: float = 1.0
    min_ghosts: int = 1  # the widest stencil's reach


class SetupError(Exception):
    """The run cannot start (grid too small for the ranks, no Ascent, ...): reported in one line, exit 2."""


def parser(proxy: Proxy) -> argparse.ArgumentParser:
    """The options every proxy takes, plus the proxy's own (``proxy.add_options``)."""
    p = argparse.ArgumentParser(
        prog=f"python -m sims.{proxy.name}", description=proxy.description,
        epilog=f"example: mpiexec -n 4 python -m sims.{proxy.name} --grid 64 --steps 40 --output {proxy.name}_run")
    p.add_argument("--grid", type=int, nargs="+", default=[proxy.default_grid], metavar="N",
                   help=f"global grid: N (cube) or NZ NY NX samples (default {proxy.default_grid})")
    p.add_argument("--steps", type=int, default=proxy.default_steps, help="time steps (default %(default)s)")
    p.add_argument("--step-time", type=float, default=proxy.default_step_time, metavar="T",
                   help="simulated time per step, covered in equal stable updates (default %(default)s)")
    p.add_argument("--publish-every", type=int, default=1, help="publish + execute every N steps (default 1)")
    p.add_argument("--actions", default=str(ACTIONS_DIR / f"{proxy.name}.yaml"),
                   help="actions file run at every publish, or 'none' (default: the proxy's shipped file)")
    p.add_argument("--final-actions", default=str(ACTIONS_DIR / f"{proxy.name}_final.yaml"),
                   help="actions file run once after the last step, or 'none' (default: a Cinema database)")
    p.add_argument("--output", default=f"{proxy.name}_run", help="run folder: cache, images, timings (default "
                                                                 "%(default)s)")
    p.add_argument("--runtime", default="auto", choices=["auto", "ascent", "embedded"],
                   help="Ascent when importable (auto), Ascent only, or the embedded runtime")
    p.add_argument("--ghosts", type=int, default=proxy.min_ghosts,
                   help="ghost layers around each block, exchanged and published (default %(default)s)")
    p.add_argument("--association", default="vertex", choices=["vertex", "element"],
                   help="publish the fields on vertices or on cells (default vertex)")
    p.add_argument("--fit-budget", type=float, default=None, metavar="SECONDS",
                   help="seconds of fitting per cycle and rank at most (the filters' session budget, for af.compress)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the initial state (default 0)")
    p.add_argument("--on-error", default="continue", choices=["continue", "stop"],
                   help="when an execute reports an error: go on and count it (default), or stop the run there "
                        "(exit 1)")
    p.add_argument("--quiet", action="store_true", help="no per-cycle progress line")
    if proxy.add_options:
        proxy.add_options(p)
    return p


def parse(proxy: Proxy, argv: list[str] | None = None) -> argparse.Namespace:
    """Options, checked: a bad value or a missing actions file ends the run before it starts (exit 2).

    Adds ``args.dt`` (the update) and ``args.updates`` (updates per step), from ``--step-time``
    and the proxy's stability limit.
    """
    p = parser(proxy)
    args = p.parse_args(argv)
    if len(args.grid) == 1:
        args.grid = args.grid * 3
    if len(args.grid) != 3 or min(args.grid) < 2:
        p.error(f"--grid takes N or NZ NY NX (each >= 2), got {args.grid}")
    args.grid = tuple(args.grid)
    for name in ("steps", "publish_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.ghosts < proxy.min_ghosts:
        p.error(f"--ghosts must be at least {proxy.min_ghosts} (the stencil's reach)")
    if not args.step_time > 0:
        p.error("--step-time must be > 0")
    try:
        limit = float(proxy.max_dt(args))
    except ValueError as e:
        p.error(str(e))
    # the fewest equal updates that stay within the limit (round-off must not add one)
    args.updates = max(1, math.ceil(args.step_time / limit - 1e-9)) if limit < math.inf else 1
    args.dt = args.step_time / args.updates
    for name in ("actions", "final_actions"):
        value = getattr(args, name)
        if value.lower() == "none":
            setattr(args, name, None)
        elif not Path(value).is_file():
            p.error(f"--{name.replace('_', '-')}: actions file {value!r} does not exist")
        else:
            setattr(args, name, str(Path(value).resolve()))
    return args


def blueprint(dec: CartDecomposition, fields: dict[str, np.ndarray], cycle: int, t: float, association: str,
              spacing: float) -> dict:
    """This rank's Blueprint domain: the block with its ghost layers (``ascent_ghosts``) and state."""
    from insitu.blueprint import uniform_domain

    g = dec.ghosts
    # world position of the first (ghost) sample: vertex data sits on vertices, cell data's first cell
    # starts at its lower vertex
    origin = tuple(float((dec.start[2 - a] - g) * spacing) for a in range(3))
    names = list(fields)
    first = names[0]
    return uniform_domain(np.asarray(fields[first], dtype=np.float32), field=first, association=association,
                          origin=origin, spacing=(spacing,) * 3, ghost=dec.ghost_mask(), cycle=cycle, time=t,
                          domain_id=dec.rank,
                          extra_fields={n: np.asarray(fields[n], dtype=np.float32) for n in names[1:]})


@dataclass
class RunResult:
    """What :func:`run` returns on every rank: the final state, its fields, per-cycle timings."""

    proxy: Proxy
    dec: CartDecomposition
    state: dict
    timings: list[dict] = field(default_factory=list)
    triggers: list[dict] = field(default_factory=list)
    stopped_at: int | None = None  # the cycle --on-error stop ended the run at
    filter_cycles: int = 0  # executes in which an af.* filter ran
    signal: int = 0  # the signal (SIGTERM, SIGINT) that ended the run early, 0 if none

    def fields(self) -> dict[str, np.ndarray]:
        """This rank's final fields, ghost layers included."""
        return self.proxy.fields(self.dec, self.state)

    def gather(self, root: int = 0) -> dict[str, np.ndarray] | None:
        """The final global fields on ``root`` (collective; None on the other ranks)."""
        out = {k: self.dec.gather(self.dec.owned(v), root) for k, v in self.fields().items()}
        return out if self.dec.comm.Get_rank() == root else None


#: the error line of an execute in which no af.* filter ran (exit_status counts them)
IDLE_EXECUTE = "execute: ran no af.* filter this cycle"
#: the signal asked to stop the run (set by the handler, read at the next step by every rank)
_STOP_SIGNAL = [0]


def _request_stop(signum: int, _frame: Any) -> None:
    _STOP_SIGNAL[0] = signum


def execute_errors(rt: Any) -> list[str]:
    """The errors the runtime reported for its last execute on this rank (one line each)."""
    info = rt.info() if hasattr(rt, "info") else {}
    status = info.get("status", {}) if isinstance(info, dict) else {}
    errors = [str(e).splitlines()[0] for e in status.get("errors", []) or []]
    if not errors and "fail" in str(status.get("message", "")).lower():  # real Ascent gives a message only
        errors = [f"execute: {status.get('message')}"]
    return errors


def advance(proxy: Proxy, dec: CartDecomposition, state: dict, args: argparse.Namespace) -> None:
    """One step: ``args.updates`` updates of ``args.dt``."""
    for _ in range(args.updates):
        proxy.update(dec, state, args, args.dt)
        state["time"] += args.dt


def run(proxy: Proxy, args: argparse.Namespace, comm: Any = None) -> RunResult:
    """The time loop (collective); publishes and executes actions when ``args.actions`` is set.

    Raises :class:`SetupError` (on every rank alike) when the run cannot start.
    """
    from mpi4py import MPI

    comm = comm or MPI.COMM_WORLD
    try:
        dec = CartDecomposition(comm, args.grid, proxy.periodic, args.ghosts)
    except ValueError as e:
        raise SetupError(str(e)) from None
    rt = None
    if args.actions or args.final_actions:
        from insitu.runtime import connect

        try:
            rt = connect(comm, prefer=args.runtime)
        except (RuntimeError, ValueError) as e:
            raise SetupError(f"--runtime {args.runtime}: {e}") from None
    state = proxy.init(dec, args)
    result = RunResult(proxy, dec, state)
    sim_s = 0.0
    for step in range(1, args.steps + 1):
        # a SIGTERM/SIGINT on any rank ends the run for all at the same step (one collective per step)
        stop = comm.allreduce(_STOP_SIGNAL[0], op=MPI.MAX)
        if stop:
            result.signal = stop
            break
        t0 = time.perf_counter()
        advance(proxy, dec, state, args)
        sim_s += time.perf_counter() - t0
        if step % args.publish_every and step != args.steps:
            continue
        record = {"cycle": step, "time": float(state["time"]), "sim_s": sim_s, "insitu_s": 0.0, "fit_s": None}
        if rt is not None and args.actions:
            from insitu.filters.session import current

            session = current()
            t0, fit0, calls0 = time.perf_counter(), session.fit_seconds, session.calls
            rt.publish([blueprint(dec, result.fields(), step, state["time"], args.association, proxy.spacing)])
            rt.execute(args.actions)
            record["insitu_s"] = time.perf_counter() - t0
            record["errors"] = execute_errors(rt) + session.take_problems()
            ran_filters = session.calls > calls0
            if not ran_filters and result.filter_cycles:  # Ascent's state after a failed execute, for one
                record["errors"].append(f"{IDLE_EXECUTE} although earlier cycles did (real Ascent does nothing "
                                        "after an execute with the same actions failed: fix the filter that failed "
                                        "first)")
            result.filter_cycles += int(ran_filters)
            # what af.compress spent fitting in this execute (triggers included), whatever the extracts are named
            record["fit_s"] = session.fit_seconds - fit0 or None
        result.timings.append(record)
        if comm.Get_rank() == 0 and not args.quiet:
            print(f"[{proxy.name}] cycle {step}/{args.steps}  sim {sim_s:.3f} s  in situ {record['insitu_s']:.3f} s",
                  flush=True)
        sim_s = 0.0
        if args.on_error == "stop" and comm.allreduce(bool(record.get("errors")), op=MPI.LOR):
            result.stopped_at = step  # every rank alike: the collective loop ends together
            break
    if rt is not None:
        if args.final_actions and not result.signal and result.stopped_at is None:
            rt.publish([blueprint(dec, result.fields(), args.steps, state["time"], args.association,
                                  proxy.spacing)])
            rt.execute(args.final_actions)
        info = rt.info() if hasattr(rt, "info") else {}
        result.triggers = list(info.get("triggers", [])) if isinstance(info, dict) else []
        rt.close()
    return result


def main(proxy: Proxy, argv: list[str] | None = None) -> int:
    """``python -m sims.<proxy>``: run in ``--output``, then print the run summary on rank 0."""
    from mpi4py import MPI

    args = parse(proxy, argv)
    comm = MPI.COMM_WORLD
    if args.fit_budget is not None:
        from insitu.filters.session import current

        current().cycle_budget_s = float(args.fit_budget)
    out = Path(args.output).resolve()
    if comm.Get_rank() == 0:
        out.mkdir(parents=True, exist_ok=True)
    comm.Barrier()
    os.chdir(out)  # the actions' relative paths (cache, images) land in the run folder
    # what a batch system sends at its time limit (and Ctrl-C): finish the step, flush, write the summary
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _request_stop)
    t0 = time.perf_counter()
    # INSITU_PROFILE=PREFIX: each rank's time loop under cProfile, written to PREFIX.<rank> (where in situ time goes)
    profile_prefix = os.environ.get("INSITU_PROFILE")
    profiler = None
    if profile_prefix:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        res = run(proxy, args, comm)
    except SetupError as e:  # the same on every rank: one message, no traceback
        if comm.Get_rank() == 0:
            print(f"python -m sims.{proxy.name}: error: {e}", file=sys.stderr, flush=True)
        return 2
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(f"{profile_prefix}.{comm.Get_rank()}")
    from insitu.filters.compress import close_all

    close_all()  # every rank's cached entries on disk before the summary reads them
    # per cycle, the slowest rank's figures: that is what the run waits for
    timings = comm.gather(res.timings, root=0)
    comm.Barrier()
    if comm.Get_rank() != 0:
        return 128 + res.signal if res.signal else 0
    merged = []
    for i, rec in enumerate(timings[0]):
        recs = [t[i] for t in timings]
        fits = [r["fit_s"] for r in recs if r["fit_s"] is not None]
        merged.append({**rec, "sim_s": max(r["sim_s"] for r in recs), "insitu_s": max(r["insitu_s"] for r in recs),
                       "fit_s": max(fits) if fits else None,
                       "errors": [f"{line} (rank {k})" for k, r in enumerate(recs) for line in r.get("errors") or []]})
    try:
        (out / "timings.json").write_text(json.dumps(merged, indent=1))
    except OSError as exc:  # disk full: the summary below is printed all the same
        print(f"python -m sims.{proxy.name}: could not write timings.json: {exc.strerror or exc}", file=sys.stderr)
    print(f"[{proxy.name}] {args.steps} steps ({args.updates} updates of dt={args.dt:.4g} each) of a "
          f"{'x'.join(map(str, args.grid))} grid on {comm.Get_size()} ranks {tuple(res.dec.dims)} "
          f"in {time.perf_counter() - t0:.1f} s")
    status = 0
    if args.actions:
        from insitu.filters.report import summarize

        doc, lines = summarize(out, merged, res.triggers, ranks=comm.Get_size())
        print("\n".join(lines))
        if (out / "run.cache").is_dir():
            fields = sorted(res.fields())
            print(f"look back: insitu replay {out / 'run.cache'} --field {fields[-1]} --cycles last:10 "
                  f"--camera azimuth=30,elevation=25 -o {out / 'replay'}   (also under mpiexec -n N)")
        status = exit_status(proxy, args, doc, merged, res.stopped_at)
    if res.signal:
        name = signal.Signals(res.signal).name
        print(f"python -m sims.{proxy.name}: stopped by {name} after cycle {merged[-1]['cycle'] if merged else 0}: caches flushed, summary "
              "written", file=sys.stderr)
        status = 128 + res.signal
    sys.stdout.flush()
    return status


def exit_status(proxy: Proxy, args: argparse.Namespace, doc: dict, timings: Sequence[dict],
                stopped_at: int | None) -> int:
    """1, with one line on stderr per reason, when the run stopped on an error or compressed nothing."""
    me = f"python -m sims.{proxy.name}"
    status = 0
    if stopped_at is not None:
        first = next(line for t in timings for line in t.get("errors") or [])
        print(f"{me}: error: stopped at cycle {stopped_at} (--on-error stop): {first}", file=sys.stderr)
        status = 1
    idle = [t["cycle"] for t in timings if any(e.startswith(IDLE_EXECUTE) for e in t.get("errors") or [])]
    if idle:
        print(f"{me}: error: {len(idle)} execute(s) ran no filter (cycles {idle[:5]}{' ...' if len(idle) > 5 else ''}): "
              "nothing was compressed there; see the first error in the summary", file=sys.stderr)
        status = 1
    if not doc.get("fields"):
        errors = sum(len(t.get("errors") or []) for t in timings)
        why = f"{errors} error(s) reported, see the summary above" if errors else \
            f"no af.compress ran: check the actions file {args.actions}"
        print(f"{me}: error: the run compressed nothing ({len(timings)} cycles published): {why}", file=sys.stderr)
        status = 1
    return status
