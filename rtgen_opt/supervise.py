"""A command's wall clock, its progress on stderr, and Ctrl-C (docs/files-and-output.md).

``--time-limit`` bounds the whole command. A :class:`Budget` holds that limit: phases get
*a priori* shares of it (``budget.share(0.3)``: the same seconds on every run, so a run
with ``--workers 1``, whose CP-SAT searches stop on deterministic time, is reproducible)
while the wall clock is enforced apart: once the command's deadline passes, or Ctrl-C is
pressed, every running CP-SAT search is stopped and every later one is given no time, so
the library finishes at once with the best answer it has.

:func:`supervise` does the enforcing for a command. It handles SIGINT itself and
learns of it on a watcher thread through the signal wakeup fd — at once, even while the
main thread is inside a solver — because CP-SAT, left alone, catches SIGINT itself during
a search (ending only that search, silently) and leaves the default handler behind (the
next Ctrl-C kills the process without a word); so supervised searches run with
``catch_sigint_signal`` off. The watcher thread also

* stops the CP-SAT searches that run past the deadline (solvers are tracked by
  :func:`track`, which wraps ``CpSolver.solve`` while a command is supervised);
* raises :class:`TimeUp` in the main thread at the deadline inside a :func:`cutoff`
  block: work whose late answer is worth nothing (a `check` probe, a matched optimum) is
  abandoned there, even in a long Python computation such as a bound;
* prints a line of progress on stderr when a phase has been silent for ``QUIET_S``.

First Ctrl-C: ``budget.interrupted`` is set and the searches stop; the command prints the
best answer so far marked ``interrupted`` and exits 130. A second Ctrl-C raises
KeyboardInterrupt in the main thread (abort without an answer, still exit 130).

The MILP runs in a child process killed at its own hard limit, at the deadline and at
Ctrl-C (``formulations/milp/worker.py``); building its model is abandoned at the deadline.
"""

from __future__ import annotations

import _thread
import contextlib
import ctypes
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator

QUIET_S = 2.0  # a phase silent for this long gets a progress line
TICK_S = 0.25  # how often the watcher looks at the clock
EXIT_INTERRUPTED = 130  # the shell's code for "ended by SIGINT"


class TimeUp(Exception):
    """Raised in the main thread when the deadline passes (or Ctrl-C is pressed) inside a
    :func:`cutoff` block: work whose answer would come too late is abandoned."""


class Budget:
    """The command's wall-clock limit, split a priori between phases.

    Parameters
    ----------
    total_s
        The whole command's limit (``--time-limit``), or None for no limit.
    reserve_s
        Kept back at the end for writing the answer: solvers are stopped this long before
        the deadline.
    """

    def __init__(self, total_s: float | None, reserve_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 started: float | None = None) -> None:
        self.total_s = total_s
        self.reserve_s = (min(2.0, 0.05 * total_s) if total_s else 0.0) if reserve_s is None \
            else reserve_s
        self._clock = clock
        self.started = clock() if started is None else started  # e.g. the program's start
        self.interrupted = threading.Event()
        self._cutoff_lock = threading.Lock()
        self._cutoff_thread: int | None = None  # armed: the thread to raise TimeUp in
        self._cutoff_fired = False

    def share(self, fraction: float) -> float:
        """A phase's a priori seconds: ``fraction`` of what the solvers may use."""
        if self.total_s is None:
            return float("inf")
        return fraction * (self.total_s - self.reserve_s)

    def elapsed(self) -> float:
        return self._clock() - self.started

    def remaining(self) -> float:
        """Seconds left for solving before the deadline (0 once interrupted)."""
        if self.interrupted.is_set():
            return 0.0
        if self.total_s is None:
            return float("inf")
        return max(0.0, self.total_s - self.reserve_s - self.elapsed())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def limit(self, fraction: float) -> float:
        """The seconds to hand a solver call: its a priori share, cut to what is left."""
        return max(0.0, min(self.share(fraction), self.remaining()))

    def interrupt(self) -> None:
        self.interrupted.set()


class Reporter:
    """Progress lines on stderr: ``[command 12.3 s] message``.

    The library calls :meth:`say` (its ``progress`` callbacks); the watcher thread calls
    :meth:`heartbeat`, which repeats the current phase when nothing was said for
    ``QUIET_S`` seconds, so that no phase longer than that is silent.
    """

    def __init__(self, command: str, budget: Budget | None = None, stream=None,
                 enabled: bool = True) -> None:
        self.command = command
        self.budget = budget
        self.stream = stream
        self.enabled = enabled
        self.phase_name = "starting"
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def phase(self, name: str) -> None:
        """Start a phase; it is named again in heartbeats while it lasts."""
        self.phase_name = name

    def say(self, message: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            elapsed = self.budget.elapsed() if self.budget else 0.0
            limit = (f" of {self.budget.total_s:g} s" if self.budget and self.budget.total_s
                     else "")
            stream = self.stream or sys.stderr
            print(f"[{self.command} {elapsed:.1f} s{limit}] {message}", file=stream,
                  flush=True)
            self._last = time.monotonic()

    def heartbeat(self) -> None:
        if time.monotonic() - self._last >= QUIET_S:
            self.say(f"{self.phase_name} ...")

    def __call__(self, message: str) -> None:  # usable as a progress callback
        self.say(message)


def budget_kwargs(fn: Callable, budget: Budget | None) -> dict:
    """``{"budget": budget}`` when ``fn`` takes one (solve.py's phases may ask it whether
    to start more work), else nothing: the library adopts it function by function."""
    import inspect

    if budget is None:
        return {}
    try:
        return {"budget": budget} if "budget" in inspect.signature(fn).parameters else {}
    except (TypeError, ValueError):
        return {}


# ----------------------------------------------------------------------------- cutoff


@contextlib.contextmanager
def cutoff(budget: Budget | None) -> Iterator[None]:
    """Work inside may be abandoned: once the deadline passes or Ctrl-C is pressed, the
    watcher raises :class:`TimeUp` in this thread (at its next Python instruction: a
    C++ search is stopped first, Python loops such as bound computations stop at once).
    For work whose late answer is worth nothing — a `check` probe undecided by the
    deadline is "unknown" — not for a solve whose partial schedule is the answer. Catch
    TimeUp outside the ``with``. Only in the main thread of a supervised command."""
    if budget is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    with budget._cutoff_lock:
        enclosing = budget._cutoff_thread
        budget._cutoff_thread = threading.get_ident()
        budget._cutoff_fired = False
    try:
        yield
    finally:
        with budget._cutoff_lock:
            if budget._cutoff_fired and budget._cutoff_thread is not None:
                _set_async_exc(budget._cutoff_thread, None)  # not raised yet: cancel it
            # an enclosing block is armed again (an abandoned phase inside a matched
            # optimum must not let the rest of it run past the deadline): the watcher
            # fires it at its next tick if the deadline has passed
            budget._cutoff_thread = enclosing
            budget._cutoff_fired = False


def _fire_cutoff(budget: Budget) -> None:
    with budget._cutoff_lock:
        if budget._cutoff_thread is not None and not budget._cutoff_fired:
            budget._cutoff_fired = True
            _set_async_exc(budget._cutoff_thread, TimeUp)


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    """CPython's PyThreadState_SetAsyncExc; ``None`` clears a pending one."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None
        else ctypes.py_object())


# ----------------------------------------------------------------------------- solvers

_active: set = set()
_active_lock = threading.Lock()
_current: Budget | None = None


@contextlib.contextmanager
def track(solver) -> Iterator[None]:
    """Register a CP-SAT solver while it searches, so the deadline or Ctrl-C can stop it.
    Its wall limit is cut to what is left of the command's budget."""
    budget = _current
    if budget is not None:
        left = budget.remaining()
        params = solver.parameters
        params.max_time_in_seconds = max(0.001, min(params.max_time_in_seconds, left))
    with _active_lock:
        _active.add(solver)
    try:
        yield
    finally:
        with _active_lock:
            _active.discard(solver)


class _Stopper:
    def __init__(self, stop: Callable[[], object]):
        self.stop_search = stop


@contextlib.contextmanager
def stoppable(stop: Callable[[], object]) -> Iterator[None]:
    """Register another solver's stop (e.g. a MIP's ``InterruptSolve``) while it runs, so
    the deadline or Ctrl-C ends it as they end a CP-SAT search."""
    stopper = _Stopper(stop)
    with _active_lock:
        _active.add(stopper)
    try:
        if interrupted():
            stop()
        yield
    finally:
        with _active_lock:
            _active.discard(stopper)


_clock_cuts = [0]  # searches, in this process, that wall-clock time stopped


def current_budget() -> Budget | None:
    """The budget of the command being supervised in this process, if any."""
    return _current


def interrupted() -> bool:
    """Has the command being supervised here been interrupted (Ctrl-C)?"""
    return _current is not None and _current.interrupted.is_set()


def abandonable(work: Callable[[], object], fallback: object) -> object:
    """Run a phase whose partial work is worth nothing: Ctrl-C or the deadline abandons it
    within a tick (the watcher raises TimeUp in it, see :func:`cutoff`) and ``fallback``
    is the answer instead; the clock then decided, so the answer says it may differ."""
    try:
        with cutoff(_current):
            return work()
    except TimeUp:
        _clock_cuts[0] += 1
        return fallback


def clock_cuts() -> int:
    """How many CP-SAT searches wall-clock time has stopped so far in this process (the
    command's deadline, Ctrl-C, or a wall limit reached before the deterministic one): an
    answer they contributed to may differ between runs, however many workers."""
    return _clock_cuts[0]


def _note_clock_cut(solver, status) -> None:
    """A search stopped by a limit (not finished: neither optimal nor infeasible) before
    its deterministic budget ran out was stopped by the clock."""
    from ortools.sat.python import cp_model

    if status in (cp_model.OPTIMAL, cp_model.INFEASIBLE):
        return
    budget = solver.parameters.max_deterministic_time
    if solver.response_proto.deterministic_time < 0.999 * budget:
        _clock_cuts[0] += 1


def stop_solvers() -> None:
    with _active_lock:
        solvers = list(_active)
    for solver in solvers:
        solver.stop_search()


def _patch_cpsat() -> Callable[[], None]:
    """Route every ``CpSolver.solve`` through :func:`track`; returns the undo."""
    try:
        from ortools.sat.python import cp_model
    except ImportError:  # pragma: no cover - ortools is a base dependency
        return lambda: None
    original = cp_model.CpSolver.solve
    if getattr(original, "_rtgen_opt_tracked", False):
        return lambda: None  # routed already (a command layer installed it for good)

    def solve(self, model, *args, **kwargs):
        # CP-SAT would catch SIGINT itself, end only this search without a word and leave
        # the default handler behind; the watcher handles it instead
        self.parameters.catch_sigint_signal = False
        with track(self):
            status = original(self, model, *args, **kwargs)
        _note_clock_cut(self, status)
        return status

    solve._rtgen_opt_tracked = True
    cp_model.CpSolver.solve = solve
    return lambda: setattr(cp_model.CpSolver, "solve", original)


def track_cpsat_for_good() -> None:
    """Route CP-SAT searches through :func:`track` for the life of the process, so that
    :func:`clock_cuts` counts them outside a supervised command too (a sweep's worker)."""
    _patch_cpsat()


# ----------------------------------------------------------------------------- supervise


@contextlib.contextmanager
def supervise(budget: Budget, reporter: Reporter | None = None) -> Iterator[Budget]:
    """Run a command under its budget: deadline, Ctrl-C and heartbeats (see the module
    docstring). Outside the main thread only the deadline and the heartbeats work."""
    global _current
    catch = threading.current_thread() is threading.main_thread()
    done = threading.Event()
    presses = [0]
    unpatch = _patch_cpsat()
    _current = budget
    if catch:
        wake_read, wake_write = socket.socketpair()
        wake_write.setblocking(False)
        old_wakeup = signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)

        def on_sigint(signum, frame):  # main thread, once it runs Python again
            if presses[0] >= 2:
                raise KeyboardInterrupt

        old_handler = signal.signal(signal.SIGINT, on_sigint)
    watcher = threading.Thread(target=_watch, args=(budget, reporter, done, presses,
                                                    wake_read if catch else None),
                               name="rtgen-opt-watch", daemon=True)
    watcher.start()
    try:
        yield budget
    finally:
        done.set()
        watcher.join()
        _current = None
        unpatch()
        if catch:
            signal.signal(signal.SIGINT, old_handler)
            signal.set_wakeup_fd(old_wakeup)
            wake_read.close()
            wake_write.close()


def _watch(budget: Budget, reporter: Reporter | None, done: threading.Event,
           presses: list[int], wake) -> None:
    """Ctrl-C arrives here at once, through the wakeup fd, even while the main thread is
    inside a solver: stop the searches; at the second press, abort the main thread."""
    while not done.is_set():
        if wake is not None:
            ready, _, _ = select.select([wake], [], [], TICK_S)
            signals = wake.recv(64) if ready else b""
        else:
            signals = b""
            done.wait(TICK_S)
        for _ in range(signals.count(bytes([signal.SIGINT]))):
            presses[0] += 1
            budget.interrupt()
            stop_solvers()
            if presses[0] == 1 and reporter is not None:
                reporter.say("interrupted: finishing with the best answer so far "
                             "(Ctrl-C again to abort)")
            elif presses[0] == 2:
                _thread.interrupt_main()
        if budget.expired:
            stop_solvers()
            _fire_cutoff(budget)
        if reporter is not None and not done.is_set():
            reporter.heartbeat()
