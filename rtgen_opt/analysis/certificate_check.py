"""Reading and re-checking a bound certificate (`rtgen-opt verify-bound`).

The file names the task set it was written for (scenario, overrides, latency statistic,
horizon, the semantics and a content hash of the expanded task set) and the prices
behind the bound. ``verify`` recomputes the value from the prices with ``dual_check`` and
``block_check``, which share no code with ``formulations.bounds``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from rtgen_opt import limits
from rtgen_opt.analysis.block_check import block_dual
from rtgen_opt.analysis.dual_check import CertificateInvalid, lagrangian_dual
from rtgen_opt.errors import InputError
from rtgen_opt.model.taskset import TaskSet
from rtgen_opt.safeload import input_name, load_json, read_limited

FORMAT = "rtgen-opt bound certificate"
VERSION = 2
SEMANTICS = ("granularity", "on_miss", "preemption", "after_horizon", "drain_us")


def taskset_sha256(ts: TaskSet) -> str:
    """The content hash of an expanded task set (scenario, latencies, overrides, horizon)."""
    return hashlib.sha256(ts.to_json().encode()).hexdigest()


# ----------------------------------------------------------------------------- the file


def read_certificate(path: str) -> dict:
    """Read a certificate file through the strict reader — a regular file, at most a 32nd
    of the memory limit (parsed JSON takes up to ~30 times its text), each key once, no
    NaN — and check its format (``load``)."""
    max_bytes = min(limits.MAX_SCHEDULE_BYTES, limits.max_memory() // 32)
    source = input_name(path)  # "-": standard input
    return load(read_limited(Path(path), source, "a bound certificate (JSON)", max_bytes),
                source)


def load(text: str, path: str) -> dict:
    """The certificate's JSON, its format checked (InputError naming the field)."""
    data = load_json(text, path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(path, "format", repr(FORMAT), data.get("format")
                         if isinstance(data, dict) else type(data).__name__)
    if data.get("version") != VERSION:
        raise InputError(path, "version", str(VERSION), data.get("version"))
    for key, kind in (("kind", str), ("scenario", str), ("horizon_us", int),
                      ("taskset_sha256", str), ("semantics", dict), ("value", (int, float)),
                      ("violations_lower_bound", (int, float))):
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            raise InputError(path, key, f"a {getattr(kind, '__name__', 'number')}",
                             data.get(key))
    if data["kind"] not in ("lagrangian", "blocks"):
        raise InputError(path, "kind", "lagrangian or blocks", data["kind"])
    return data


def same_problem(ts: TaskSet, data: dict, path: str) -> None:
    """InputError unless the task set is the one the certificate was written for; the
    message names the scenario the certificate was written for (the first difference
    found may be a detail of another scenario)."""
    written = f"; the certificate was written for {data['scenario']}"
    if data["horizon_us"] != ts.horizon_us:
        raise InputError(path, "horizon_us", f"{ts.horizon_us} (the task set's horizon"
                         f"{written})", data["horizon_us"])
    for key in SEMANTICS:
        if data["semantics"].get(key) != getattr(ts, key):
            raise InputError(path, f"semantics.{key}", f"{getattr(ts, key)!r} (the "
                             f"task set's{written})", data["semantics"].get(key))
    if data["taskset_sha256"] != taskset_sha256(ts):
        raise InputError(path, "taskset_sha256", f"{taskset_sha256(ts)} (another scenario, "
                         f"latency database or override?{written})", data["taskset_sha256"])


def read_prices(data: dict, ts: TaskSet, path: str) -> tuple[np.ndarray, int]:
    """The prices per (backend, tick), tiled when the certificate stores one period."""
    spec = data.get("lagrangian")
    try:
        tick, num_ticks, period = spec["tick_us"], spec["num_ticks"], spec["period_ticks"]
        rows = [spec["prices"][b] for b in ts.backends]
        values = np.array(rows, dtype=float)
        assert values.ndim == 2 and type(tick) is int and 1 <= tick <= 2**62
        assert isinstance(num_ticks, int) and num_ticks >= 0
    except (TypeError, KeyError, ValueError, AssertionError):
        raise InputError(path, "lagrangian", "tick_us, num_ticks, period_ticks and prices "
                         f"per backend ({', '.join(ts.backends)})") from None
    # ticks past every deadline and give-up time price nothing the task set can use; a
    # claim of more would only be memory (the tiling below is num_ticks wide)
    most = max(ts.end_us, ts.horizon_us + ts.drain_us) // tick + 2
    if num_ticks > most or values.shape[1] > most:
        raise InputError(path, "lagrangian.num_ticks", f"at most {most:,} ticks of {tick} µs "
                         "(the task set's run)", max(num_ticks, values.shape[1]))
    if period is not None:
        values = values[:, np.arange(num_ticks) % max(1, values.shape[1])]
    return values, tick


def rounded(ts: TaskSet, value: float) -> float:
    """Whole violations when every weight is whole (so is the optimum)."""
    if all(float(t.weight).is_integer() for t in ts.tasks):
        return float(max(0, int(np.ceil(value - 1e-6))))
    return max(0.0, value)


def verify(ts: TaskSet, data: dict, path: str) -> float:
    """The value the certificate's prices prove; CertificateInvalid where it claims more."""
    if data["kind"] == "lagrangian":
        prices, tick = read_prices(data, ts, path)
        if (prices < 0).any() or not np.isfinite(prices).all():
            raise CertificateInvalid("a price is negative or not finite")
        value = lagrangian_dual(ts, prices, tick)
    else:
        value = block_dual(ts, data, path)
    if data["value"] > value + 1e-6 * max(1.0, abs(value)):
        raise CertificateInvalid(f"value {data['value']!r} claimed, the prices prove "
                                 f"{value!r}")
    if data["violations_lower_bound"] > rounded(ts, value) + 1e-9:
        raise CertificateInvalid(f"violations_lower_bound {data['violations_lower_bound']!r}"
                                 f" claimed, the prices prove {rounded(ts, value)!r}")
    return value
