"""Where a sweep's runs execute: a local process pool, or a Ray cluster.

Both engines have one signature, ``engine(runs, ids, workers, address, on_result)``: they
compute ``compute(run)`` for every run, wherever they like and in any order, and
call ``on_result(id, result)`` in this process as each one finishes. The sweep orders the
table itself, so the engine cannot change it. A KeyboardInterrupt (or an exception raised
by ``on_result``) stops the engine: running work is abandoned, finished work was already
handed over.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
from collections.abc import Callable

from rtgen_opt.errors import InputError
from rtgen_opt.sweep.compute import Run, compute

OnResult = Callable[[int, dict], None]


def _leave_ctrl_c_to_the_parent() -> None:
    """A worker leaves its terminal's process group and ignores SIGINT: Ctrl-C reaches
    only the parent, which stops the workers itself. (In the group, CP-SAT would catch the
    SIGINT, end its search early and hand back a truncated answer as if it were final.)"""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_local(runs: list[Run], ids: list[int], workers: int, address: str | None,
              on_result: OnResult, work: Callable = compute) -> None:
    """A process pool over this machine's cores (``workers`` 0: one per core); ``work``
    (picklable) computes one run.

    Processes are spawned, not forked: the parent may hold threads (a Ray client, a
    progress display) that a fork would copy in an undefined state. At most two runs per
    worker are queued, so a stop leaves little to cancel. A worker that dies (a crash,
    the OOM killer) breaks the pool: the runs in flight are recorded as failed (not
    cached, so a rerun retries them) and a new pool takes the rest.
    """
    import multiprocessing
    from collections import deque

    if address is not None:
        raise InputError("--address", "", "no address with --engine local (it is Ray's)",
                         address)
    context = multiprocessing.get_context("spawn")
    queue = deque(zip(ids, runs, strict=True))
    with _safe_path():
        while queue:
            _run_pool(queue, workers or os.cpu_count() or 1, context, on_result, work)


@contextlib.contextmanager
def _safe_path():
    """While the pool spawns its workers: ``PYTHONSAFEPATH=1`` in their environment. A
    spawned worker starts as ``python -c ...``, which would put the working folder first
    on sys.path while it imports multiprocessing (a ``socket.py`` there would run); the
    worker then takes this process's sys.path, so it runs the same code. Restored after:
    this process's environment is the caller's."""
    old = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONSAFEPATH", None)
        else:
            os.environ["PYTHONSAFEPATH"] = old


def _run_pool(queue, workers: int, context, on_result: OnResult, work: Callable) -> None:
    """Run from ``queue`` until it is empty or the pool breaks."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_leave_ctrl_c_to_the_parent)
    pending: dict = {}
    try:
        while queue or pending:
            while queue and len(pending) < 2 * workers:
                i, run = queue.popleft()
                pending[pool.submit(work, run)] = i
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            if any(_died(f) for f in done):
                wait(pending)  # a broken pool fails every future it holds
                done = set(pending)
            for future in sorted(done, key=pending.get):
                i = pending.pop(future)
                on_result(i, _outcome(future))
            if any(_died(f) for f in done):
                break
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=not queue)


DIED = "the worker process died (a crash, or out of memory) while this run was in flight"


def _died(future) -> bool:
    from concurrent.futures.process import BrokenProcessPool

    return isinstance(future.exception(), BrokenProcessPool)


def _outcome(future) -> dict:
    error = future.exception()
    if error is None:
        return future.result()
    return {"rows": None, "error": DIED if _died(future) else f"{type(error).__name__}: {error}"}


def _stop(pool) -> None:
    """Stop now: cancel what is queued and end the workers (a run may take minutes).
    Python 3.14 has ``terminate_workers``; before it, the processes are terminated."""
    pool.shutdown(wait=False, cancel_futures=True)
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.join(timeout=5)


def require(engine: str, address: str | None = None) -> None:
    """Bad input before anything runs: an unknown engine, one not installed, a cluster
    address that does not answer."""
    if engine not in ENGINES:
        raise InputError("--engine", "", f"one of {', '.join(ENGINES)}", engine)
    if address is not None and engine != "ray":
        raise InputError("--address", "", "--engine ray with an address (it is Ray's)",
                         address)
    if engine == "ray":
        if (address or os.environ.get("RAY_ADDRESS")) is None:
            _check_local_ray_auth()
        _import_ray()
        if address is not None:
            _check_reachable(address)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise InputError("--engine", "", "Ray installed for --engine ray: pip install "
                         "'rtgen-opt[ray]'", "ray") from None
    return ray


def _check_local_ray_auth() -> None:
    """A local Ray without token authentication lets anyone who reaches this machine
    join it and run code in the sweep's workers: refused, not started."""
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is not None and mode.lower() != "token":
        raise InputError("RAY_AUTH_MODE", "", "unset or token (a local Ray without "
                         "authentication runs code for anyone who reaches this machine; "
                         "use --address for a cluster you secured yourself)", mode)


@contextlib.contextmanager
def local_ray_token():
    """Token authentication for the local Ray started here, with a token of this process
    (in its environment, inherited by Ray's processes, never written to disk) unless the
    user gave one. Ray's default would be a token file under ~/.ray, readable by others
    when the home folder is. The environment is restored afterwards."""
    _check_local_ray_auth()
    try:
        from ray._private.authentication import authentication_token_setup  # noqa: F401
    except ImportError:
        raise InputError("--engine", "", "Ray with token authentication (ray>=2.60) for a "
                         "local Ray", "an older ray") from None
    if any(os.environ.get(k) for k in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
        yield  # the user's own token
        return
    # RAY_AUTH_MODE stays as it is: unset, a new local Ray turns token mode on itself
    os.environ["RAY_AUTH_TOKEN"] = _process_token()
    try:
        yield
    finally:
        os.environ.pop("RAY_AUTH_TOKEN", None)


@functools.cache
def _process_token() -> str:
    """One token per process: Ray's driver caches the first token it reads, so a second
    local Ray in the same process must get the same one."""
    import secrets

    return secrets.token_hex(32)


def run_ray(runs: list[Run], ids: list[int], workers: int, address: str | None,
            on_result: OnResult) -> None:
    """Ray tasks, one CPU each, on the cluster at ``address`` (or $RAY_ADDRESS), else on
    a new local Ray (with ``workers`` CPUs; 0: all) — never on a cluster merely found
    running on this machine. Every node needs the same rtgen-opt installed.

    A Ray cluster is trusted (SECURITY.md): it receives every run (options, the loaded
    scenario, the user policies' source: a node reads no file of the sweep) and sends back
    pickled results, unpickled here. A local Ray listens on every interface (Ray has no
    loopback-only option), so it runs with token authentication and a token of this
    process (``local_ray_token``); with authentication turned off it is refused."""
    ray = _import_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    started_here = not ray.is_initialized()
    with local_ray_token() if started_here and address is None else contextlib.nullcontext():
        if started_here:
            _init_ray(ray, address, workers)
        _run_on_ray(ray, runs, ids, on_result, started_here)


def _init_ray(ray, address: str | None, workers: int) -> None:
    import logging

    options = dict(include_dashboard=False, log_to_driver=False,
                   logging_level=logging.ERROR, configure_logging=True)
    if address is None:
        options["num_cpus"] = workers or os.cpu_count() or 1
    try:
        ray.init(address=address or "local", **options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise InputError("--address", "", "the address of a running Ray cluster "
                         "(host:port, or auto)", f"{address}: {exc}") from None


def _run_on_ray(ray, runs: list[Run], ids: list[int], on_result: OnResult,
                started_here: bool) -> None:
    remote = ray.remote(num_cpus=1, max_retries=0)(compute)
    capacity = int(ray.cluster_resources().get("CPU", 1))
    queue = list(zip(ids, runs, strict=True))[::-1]
    pending: dict = {}
    try:
        while queue or pending:
            while queue and len(pending) < 2 * capacity:
                i, run = queue.pop()
                pending[remote.remote(run)] = i
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 (a worker died: record, go on)
                    result = {"rows": None, "error": f"Ray: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}"}
                on_result(i, result)
    finally:
        _release(ray, pending, started_here)


def _release(ray, pending: dict, started_here: bool) -> None:
    """Cancel what still runs (on a shared cluster it would run on), then stop the Ray we
    started. A failed cancel must neither hide why we stopped nor skip the shutdown."""
    for ref in pending:
        try:
            ray.cancel(ref, force=True)
        except Exception:  # noqa: BLE001, S110 (already finished, or its worker gone)
            pass
    if started_here:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Ray retries an unreachable host:port for many minutes; a TCP probe answers in
    seconds. Other forms (auto, ray://...) are left to Ray."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host or "/" in host:
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise InputError("--address", "", "the host:port of a running Ray cluster's head",
                         f"{address}: {exc}") from None


ENGINES = {"local": run_local, "ray": run_ray}
