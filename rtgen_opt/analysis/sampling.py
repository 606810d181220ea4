"""Monte Carlo over realizations: ``simulate --samples N`` (docs/semantics.md, *Timing
uncertainty*).

Sample i of a run draws its realization (``model.realization.sample``) from a generator
seeded with ``SeedSequence(seed, spawn_key=(i,))``: sample i is the same whichever worker
runs it and however many there are, so a seeded run is reproducible bit for bit and its
worst realization can be drawn again in the parent for the witness file instead of being
shipped back. Samples run in chunks on a local process pool (spawned, like the sweep's
local engine; each worker receives the task set once).

What sampling shows is evidence, not a proof: with k of N realizations missing a deadline
or starving a request, the miss probability under uniform sampling is below the
Clopper-Pearson 95 % upper bound (3 / N, the rule of three, when k = 0) — about the
sampling distribution, never about a worst case the samples did not hit (``check`` is the
proof).
"""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.model.realization import Realization, sample
from rtgen_opt.model.taskset import TaskSet
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES
from rtgen_opt.simulation.policies.loader import load_policy

CHUNK = 20  # samples per pool task: small enough for progress and a prompt Ctrl-C
CONFIDENCE = 0.95


def sample_generator(seed: int, index: int) -> np.random.Generator:
    """The generator of sample ``index`` of a run seeded with ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def draw(ts: TaskSet, seed: int, index: int) -> Realization:
    """Sample ``index`` of a run seeded with ``seed`` (what the workers ran)."""
    return sample(ts, sample_generator(seed, index))


def sample_metrics(ts: TaskSet, policy, realization: Realization) -> dict:
    """The per-sample figures: violations (total and per task), per LLM task its mean
    TTFT and TPT (ms; None when no request completed) and starved requests."""
    m = evaluate(ts, simulate(ts, policy, realization).schedule)
    return {"violations": m["violations"],
            "tasks": {t: v["violations"] for t, v in m["tasks"].items()},
            "llm": {t: {"ttft_ms": v["ttft_ms"]["mean"], "tpt_ms": v["tpt_ms"]["mean"],
                        "starved": v["starved"]} for t, v in m["llm"].items()}}


# ---------------------------------------------------------------------------- workers

_worker: dict = {}


def _policy(spec: str):
    return POLICIES[spec] if spec in POLICIES else load_policy(spec)


def _init_worker(ts: TaskSet, policy_spec: str) -> None:
    """Worker setup: the task set and policy once; Ctrl-C is the parent's to handle (the
    worker leaves the terminal's process group)."""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker.update(ts=ts, policy=_policy(policy_spec))


def _run_chunk(seed: int, indices: range, stop: Callable[[], bool] = lambda: False
               ) -> list[dict]:
    """The samples of ``indices`` in order; a prefix of them once ``stop()`` is true."""
    ts, policy, done = _worker["ts"], _worker["policy"], []
    for i in indices:
        if stop():
            break
        done.append(sample_metrics(ts, policy, draw(ts, seed, i)))
    return done


@dataclass(frozen=True)
class SampleRun:
    """The per-sample figures of the samples that ran (in sample order)."""

    seed: int
    samples: list[dict]
    interrupted: bool

    def worst_index(self) -> int | None:
        """The sample with the most violations, then the most starved requests (the
        first such)."""
        if not self.samples:
            return None
        keys = [(s["violations"], _starved(s)) for s in self.samples]
        return max(range(len(keys)), key=lambda i: (keys[i], -i))


def run_samples(ts: TaskSet, policy_spec: str, n: int, seed: int, workers: int = 0,
                progress: Callable[[str], None] | None = None,
                stop: Callable[[], bool] = lambda: False) -> SampleRun:
    """Run ``n`` sampled realizations of ``policy_spec`` (a name of ``POLICIES`` or a
    ``FILE.py:CLASS`` spec) on ``workers`` processes (0: one per core; 1: in this
    process). ``stop()`` true ends it early with the samples done so far (a prefix)."""
    workers = min(workers or os.cpu_count() or 1, max(1, math.ceil(n / CHUNK)))
    chunks = [range(a, min(a + CHUNK, n)) for a in range(0, n, CHUNK)]
    results: dict[int, list[dict]] = {}
    if workers == 1:
        _init_in_process(ts, policy_spec)
        for k, chunk in enumerate(chunks):
            if stop():
                break
            results[k] = _run_chunk(seed, chunk, stop)  # stops between samples
            _report(progress, results, chunks, n)
    else:
        _run_pool(ts, policy_spec, seed, chunks, workers, results, progress, stop, n)
    done = []
    for k in range(len(chunks)):  # the prefix of samples that all ran
        if k not in results:
            break
        done.extend(results[k])
        if len(results[k]) < len(chunks[k]):
            break
    return SampleRun(seed, done, len(done) < n)


def _init_in_process(ts: TaskSet, policy_spec: str) -> None:
    _worker.update(ts=ts, policy=_policy(policy_spec))


def _report(progress, results: dict, chunks: list[range], n: int) -> None:
    if progress is not None:
        progress(f"{sum(len(chunks[k]) for k in results)}/{n} samples")


def _run_pool(ts, policy_spec, seed, chunks, workers, results, progress, stop, n) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                               initargs=(ts, policy_spec))
    pending: dict = {}
    queue = list(enumerate(chunks))[::-1]
    try:
        while queue or pending:
            while queue and len(pending) < 2 * workers and not stop():
                k, chunk = queue.pop()
                pending[pool.submit(_run_chunk, seed, chunk)] = k
            if not pending:
                break
            finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                results[pending.pop(future)] = future.result()
            if finished:
                _report(progress, results, chunks, n)
            if stop():
                queue.clear()
                _terminate(pool)  # a running chunk may take seconds: Ctrl-C must not
                return
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _terminate(pool) -> None:
    """End the pool's worker processes now (their chunks are abandoned)."""
    if hasattr(pool, "terminate_workers"):  # Python 3.14
        pool.terminate_workers()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _starved(s: dict) -> int:
    return sum(v["starved"] for v in s["llm"].values())


# ---------------------------------------------------------------------------- summary


def distribution(values: list) -> dict:
    """mean, p50, p99 and max of the values that exist (None: a sample without one)."""
    present = np.array([v for v in values if v is not None], dtype=float)
    if not len(present):
        return {"mean": None, "p50": None, "p99": None, "max": None}
    return {"mean": float(present.mean()), "p50": float(np.percentile(present, 50)),
            "p99": float(np.percentile(present, 99)), "max": float(present.max())}


def miss_upper_bound(k: int, n: int) -> float:
    """One-sided 95 % upper confidence bound on a probability seen k times in n trials:
    Clopper-Pearson, or the rule of three (3 / n) when k = 0."""
    if k == 0:
        return min(1.0, 3 / n)
    if k == n:
        return 1.0
    from scipy.stats import beta  # (slow to import: only when needed)

    return float(beta.ppf(CONFIDENCE, k + 1, n - k))


def miss_lower_bound(k: int, n: int) -> float:
    """One-sided 95 % lower confidence bound on a probability seen k times in n trials
    (Clopper-Pearson): 0 when k = 0, (1 - 0.95)^(1/n) when every trial saw it."""
    if k == 0:
        return 0.0
    if k == n:
        return (1 - CONFIDENCE) ** (1 / n)
    from scipy.stats import beta  # (slow to import: only when needed)

    return float(beta.ppf(1 - CONFIDENCE, k, n - k + 1))


def summarize(run: SampleRun) -> dict:
    """The ``samples`` object of ``simulate --samples`` JSON (docs/files-and-output.md)."""
    s = run.samples
    n = len(s)
    misses = sum(1 for x in s if x["violations"] > 0 or _starved(x) > 0)
    tasks = list(s[0]["tasks"]) if s else []
    llm = list(s[0]["llm"]) if s else []
    return {
        "n": n, "seed": run.seed, "interrupted": run.interrupted,
        "violations": distribution([x["violations"] for x in s]),
        "tasks": {t: {"violations": distribution([x["tasks"][t] for x in s])} for t in tasks},
        "llm": {t: {key: distribution([x["llm"][t][key] for x in s])
                    for key in ("ttft_ms", "tpt_ms", "starved")} for t in llm},
        "starved": distribution([_starved(x) for x in s]),
        "miss": {"samples_with_miss": misses,
                 "probability_upper_95": miss_upper_bound(misses, n) if n else None,
                 "probability_lower_95": miss_lower_bound(misses, n) if n else None,
                 "statement": _statement(misses, n)},
        "worst_sample": run.worst_index(),
    }


def _statement(k: int, n: int) -> str:
    if not n:
        return "no sample ran"
    bound = miss_upper_bound(k, n)
    said = (f"{k} of {n} sampled realizations missed a deadline or starved a request; "
            "sampling evidence (not a proof): the miss probability under uniform sampling ")
    if k == n:  # no upper bound below 1 exists; the informative side is the lower one
        return said + (f"is at least {miss_lower_bound(k, n):.3g} with 95 % confidence "
                       "(Clopper-Pearson)")
    if bound >= 1:  # the rule of three says nothing with 3 samples or fewer
        return said + "cannot be bounded below 1 from so few samples (take more than 3)"
    return said + (f"is below {bound:.3g} with 95 % confidence"
                   + (" (rule of three)" if k == 0 else " (Clopper-Pearson)"))
