"""Solve one pickled PuLP problem in a clean interpreter, and the parent's side of it.

``python -m rtgen_opt.formulations.milp.worker`` reads (problem, engine, limit, threads,
warm[, deadline]) from stdin and writes the pickled answer — ``("ok", (status, objective, bound,
values))`` or ``("error", one line)`` — to stdout. ``solve_in_worker`` runs it.

A separate interpreter, not a forked or spawned child, because OR-Tools bundles its own
HiGHS build and the two cannot be loaded in one process; and because the parent can then
kill it at a hard time limit (HiGHS has ignored its own limit in some versions).

Process hygiene (nothing may outlive a solve, whatever ends it):

* the worker runs in a process group of its own, and CBC (its child) in the same group;
  the parent kills the whole group after every solve — on success too, since a CBC that
  PuLP lost track of would otherwise run on — and on timeout, error and Ctrl-C;
* every temporary file (PuLP's ``.mps/.mst/.sol``, CBC's log) goes to a private temporary
  folder (``TMPDIR``) that the parent removes in every case;
* if the parent dies without cleaning up (SIGKILL), the worker notices at once — it holds
  the read end of a pipe whose only write end the parent keeps (``PARENT_FD_ENV``): end of
  file means the parent is gone, however it ended and however early — and kills its group
  (CBC included) and removes the folder itself; where no pipe was passed, it watches its
  parent's pid (given in ``PARENT_PID_ENV``, not read after its own slow start);
* the parent's wait for an answer ends at the hard limit, at the command's deadline and at
  Ctrl-C (``supervise``), killing the group: the time limit bounds the whole command;
* the engine's own limit counts from when the parent started the worker (``deadline``),
  so that unpickling and writing the model do not come on top of it;
* the garbage collector is off while the parent pickles the model and in the worker
  (``no_gc``): a model is a million small objects without cycles, and each collection
  would walk them all (it took half the unpickling time);
* it never imports from the working folder: ``python -m`` would put the current folder
  first on ``sys.path`` (a ``pulp.py`` there would run); ``-P`` leaves it out, and the
  folder holding the ``rtgen_opt`` package the parent imported is passed in ``PYTHONPATH``
  so that the worker runs the same code (``worker_command``);
* a crash (a signal, or an exit without an answer) is retried once — CBC segfaults
  intermittently, and rerunning the same model is sound — then reported as one line naming
  the engine and the signal (``SolverCrash``). There is no silent fallback to CP-SAT:
  ``--solver milp`` asks for an independent second opinion, which CP-SAT cannot give.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import math
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import ClassVar

import pulp

OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN = "OPTIMAL", "FEASIBLE", "INFEASIBLE", "UNKNOWN"
WORKER_MODULE = "rtgen_opt.formulations.milp.worker"
PRIVATE_TMP_ENV = "RTGEN_OPT_WORKER_TMP"  # the private folder, so the worker may remove it
PARENT_FD_ENV = "RTGEN_OPT_WORKER_PARENT_FD"  # read end of the parent's lifeline pipe
PARENT_PID_ENV = "RTGEN_OPT_WORKER_PARENT_PID"
WAIT_TICK_S = 0.25  # how often the parent looks at the deadline and Ctrl-C while it waits
ENGINE_NAMES = {"cbc": "CBC", "highs": "HiGHS"}


@contextlib.contextmanager
def no_gc():
    """The cyclic garbage collector off inside (as it was after): building or pickling a
    PuLP model makes a million objects without cycles, and the collections this triggers
    walk them all again and again. Reference counting still frees them."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# ---------------------------------------------------------------------------- worker side


def solve(prob: pulp.LpProblem, engine: str, limit: float, threads: int, warm: bool):
    """(status, objective, dual bound, {variable: value})."""
    log = Path(tempfile.mkstemp(suffix=".log")[1])
    try:
        # every objective is integer-valued: an absolute gap below 1 proves optimality,
        # while the engines' default relative gaps (1e-4) would accept 6001 for 6000
        exact = {"gapRel": 0.0, "gapAbs": 0.99}
        if engine == "highs":
            solver = pulp.HiGHS(msg=False, timeLimit=limit, threads=threads, warmStart=warm,
                                **exact)
        else:
            solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=limit, threads=threads,
                                       warmStart=warm, logPath=str(log), **exact)
        prob.solve(solver)
        status = {pulp.LpSolutionOptimal: OPTIMAL, pulp.LpSolutionIntegerFeasible: FEASIBLE,
                  pulp.LpSolutionInfeasible: INFEASIBLE}.get(prob.sol_status, UNKNOWN)
        if prob.status == pulp.LpStatusInfeasible:
            status = INFEASIBLE
        if status not in (OPTIMAL, FEASIBLE):
            return status, None, 0, {}
        value = pulp.value(prob.objective) or 0.0
        bound = value if status == OPTIMAL else dual_bound(prob, engine, log)
        return (status, value, math.ceil(bound - 1e-6),
                {v.name: v.varValue for v in prob.variables()})
    finally:
        log.unlink(missing_ok=True)


def dual_bound(prob: pulp.LpProblem, engine: str, log: Path) -> float:
    """The MIP dual bound: HiGHS reports it; CBC prints it in its log when it stops early."""
    if engine == "highs":
        return max(0.0, float(prob.solverModel.getInfo().mip_dual_bound))
    text = log.read_text(errors="replace") if log.exists() else ""
    match = re.search(r"Lower bound:\s*(-?[\d.eE+]+)", text)
    return max(0.0, float(match.group(1))) if match else 0.0


class _RecordingPopen(subprocess.Popen):
    """subprocess.Popen that remembers its processes and how they ended: PuLP raises a
    bare "Error while trying to execute" when CBC dies, without the signal."""

    started: ClassVar[list[subprocess.Popen]] = []
    ended: ClassVar[list[int]] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _RecordingPopen.started.append(self)

    def wait(self, timeout=None):
        code = super().wait(timeout)
        _RecordingPopen.ended.append(code)
        return code


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _watch_parent(parent: int, lifeline: int | None) -> None:
    """Orphaned (the parent died without cleaning up): clean up and end the whole group.
    The lifeline pipe reads end of file the moment the parent's last copy of its write end
    closes — when the parent exits, however; without one, poll the parent's pid."""
    if lifeline is not None:
        try:
            while os.read(lifeline, 64):
                pass
        except OSError:
            pass
    else:
        while os.getppid() == parent:
            time.sleep(0.5)
    _clean_up(orphaned=True)


def _parent() -> tuple[int, int | None]:
    """The parent's pid (as the parent said: ``os.getppid()`` read now could already be
    init's, if the parent died while this interpreter started) and the lifeline's fd."""
    try:
        parent = int(os.environ.get(PARENT_PID_ENV, ""))
    except ValueError:
        parent = os.getppid()
    try:
        lifeline = int(os.environ.get(PARENT_FD_ENV, ""))
        os.set_inheritable(lifeline, False)  # CBC must not hold it
    except (ValueError, OSError):
        lifeline = None
    return parent, lifeline


def _clean_up(orphaned: bool) -> None:
    """Stop CBC where it is (a killed CBC would wake the main thread, which could exit
    before the folder is gone), remove the private folder, and when orphaned kill the
    whole group, this process included."""
    try:
        for child in _RecordingPopen.started:
            if child.poll() is None:
                child.send_signal(signal.SIGSTOP if orphaned else signal.SIGKILL)
        private = os.environ.get(PRIVATE_TMP_ENV)
        if private and os.path.isdir(private):
            shutil.rmtree(private, ignore_errors=True)
    finally:
        if orphaned:
            os.killpg(0, signal.SIGKILL)


def main() -> None:
    parent, lifeline = _parent()
    if os.getppid() != parent:  # the parent is already gone
        _clean_up(orphaned=True)
    threading.Thread(target=_watch_parent, args=(parent, lifeline), daemon=True).start()
    subprocess.Popen = _RecordingPopen  # type: ignore[misc]  # this process only
    # the answer goes to the real stdout; whatever an engine prints there (highspy prints
    # its banner from C) goes to stderr, or it would corrupt the pickle
    answer_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    gc.disable()  # one model, then exit: collections would only walk its objects (no_gc)
    try:
        prob, engine, limit, threads, warm, *deadline = pickle.load(sys.stdin.buffer)
        if deadline and deadline[0] is not None:  # the limit counts from the worker's start
            limit = max(0.1, min(limit, deadline[0] - time.time()))
        try:
            answer = ("ok", solve(prob, engine, limit, threads, warm))
        except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
            crashed = [c for c in _RecordingPopen.ended if c < 0]
            reason = (f"killed by {_signal_name(crashed[-1])}" if crashed
                      else f"{type(exc).__name__}: {exc}")
            answer = ("error", " ".join(reason.split())[:300])
        answer_out.write(pickle.dumps(answer))
        answer_out.flush()
    finally:  # on every exit (a truncated payload, a closed pipe): nothing stays behind
        _clean_up(orphaned=os.getppid() != parent)


# ---------------------------------------------------------------------------- parent side


class WorkerCrash(Exception):
    """One attempt ended without an answer (``str``: how, on one line)."""


_live: dict[subprocess.Popen, int] = {}  # running workers -> their lifeline's write end


def solve_in_worker(prob: pulp.LpProblem, engine: str, limit: float, threads: int,
                    warm: bool, slack: float):
    """Solve in a worker, killed ``slack`` seconds after ``limit``: (status, objective,
    dual bound, values), status ``UNKNOWN`` on timeout. A crash is retried once, then
    raised as ``SolverCrash`` with one line naming the engine and the signal."""
    from rtgen_opt.errors import SolverCrash

    name = ENGINE_NAMES.get(engine, engine)
    reasons = []
    for _ in range(2):
        # the engine's limit counts from here: the worker's start-up is part of it
        with no_gc():
            payload = pickle.dumps((prob, engine, limit, threads, warm, time.time() + limit))
        try:
            return _run_once(payload, limit + slack)
        except WorkerCrash as crash:
            reasons.append(str(crash))
    raise SolverCrash(f"the MILP engine {name} crashed twice ({reasons[0]}; then "
                      f"{reasons[1]}); try --mip-solver {'cbc' if engine == 'highs' else 'highs'}"
                      " or --solver cpsat")


def worker_command(env: dict[str, str]) -> list[str]:
    """The worker's command line, and its ``PYTHONPATH`` set in ``env``: ``-P`` keeps the
    working folder off ``sys.path``; the package's own folder goes first instead."""
    import rtgen_opt

    root = str(Path(rtgen_opt.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["PYTHONSAFEPATH"] = "1"
    return [sys.executable, "-P", "-m", WORKER_MODULE]


def _run_once(payload: bytes, timeout: float):
    private = tempfile.mkdtemp(prefix="rtgen-opt-milp-")
    # the lifeline: the worker holds the read end, only this process the write end (not
    # inheritable: no other child keeps it open), so the worker reads end of file as soon
    # as this process is gone, however it ended
    lifeline_read, lifeline_write = os.pipe()
    env = dict(os.environ, TMPDIR=private, TMP=private, TEMP=private,
               **{PRIVATE_TMP_ENV: private, PARENT_FD_ENV: str(lifeline_read),
                  PARENT_PID_ENV: str(os.getpid())})
    try:
        proc = subprocess.Popen(worker_command(env), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                pass_fds=(lifeline_read,),
                                start_new_session=True)  # its own process group, CBC's too
    except BaseException:
        os.close(lifeline_write)
        raise
    finally:
        os.close(lifeline_read)
    _live[proc] = lifeline_write
    try:
        out, err = _communicate(proc, payload, timeout)
    except subprocess.TimeoutExpired:
        return UNKNOWN, None, 0, {}
    finally:
        _kill_group(proc)
        shutil.rmtree(private, ignore_errors=True)
    if proc.returncode < 0:
        raise WorkerCrash(f"the worker was killed by {_signal_name(proc.returncode)}")
    try:
        kind, answer = pickle.loads(out)
    except Exception:  # noqa: BLE001 - no answer at all: say how it ended
        last = (err.decode(errors="replace").strip().splitlines() or [""])[-1]
        raise WorkerCrash(f"the worker exited with code {proc.returncode} without an "
                          f"answer{': ' + last[:200] if last else ''}") from None
    if kind != "ok":
        raise WorkerCrash(answer)
    return answer


def _communicate(proc: subprocess.Popen, payload: bytes, timeout: float):
    """``proc.communicate`` that gives up (TimeoutExpired) at ``timeout``, at the deadline
    of the command supervised in this process, or when it is interrupted (Ctrl-C)."""
    from rtgen_opt.supervise import current_budget

    end = time.monotonic() + timeout
    data: bytes | None = payload
    while True:
        budget = current_budget()
        if budget is not None and budget.expired:  # the deadline, or Ctrl-C
            raise subprocess.TimeoutExpired(proc.args, timeout)
        wait = min(WAIT_TICK_S, end - time.monotonic())
        if wait <= 0:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        try:
            return proc.communicate(data, timeout=wait)
        except subprocess.TimeoutExpired:
            data = None  # sent already (in part): communicate goes on with the rest


def kill_live_workers() -> None:
    """Kill every worker's group now (SIGTERM's handler calls this before unwinding)."""
    for proc in list(_live):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the worker's whole process group (CBC included) and reap the worker."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    lifeline = _live.pop(proc, None)
    if lifeline is not None:
        os.close(lifeline)


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_live):
        _kill_group(proc)


if __name__ == "__main__":
    main()
