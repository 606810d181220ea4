"""The bound's certificate: the prices and the value they prove, as JSON.

Validity of the Lagrangian and block bounds does not depend on how the prices were
chosen, so anyone holding the task set can recompute the dual value from this file and
confirm the bound: `rtgen-opt verify-bound` does, with code that shares nothing with this
package (``rtgen_opt.analysis.certificate_check``). The file records what it was computed
for — scenario, overrides, latency statistic, horizon, semantics and a content hash of
the expanded task set — so a check against another task set is refused, not passed.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from ..problem import Problem
from .lagrangian import Prices, lagrangian_value

FORMAT = "rtgen-opt bound certificate"
VERSION = 2


def certificate_json(problem: Problem, prices: Prices | None, value: float,
                     blocks: dict | None = None, scenario: str | None = None,
                     overrides: tuple[str, ...] = (), latency: str = "median") -> str:
    """The certificate of the reported bound: the block bound's λ, blocks and damages when
    ``blocks`` is given, else the Lagrangian prices per backend (one period when they
    repeat); ``value`` is the bound before rounding."""
    ts = problem.ts
    rounded = (float(max(0, math.ceil(value - 1e-6))) if problem.weight_scale == 1
               else max(0.0, value))
    data = {
        "format": FORMAT, "version": VERSION,
        "kind": "blocks" if blocks is not None else "lagrangian",
        "scenario": scenario or ts.scenario, "overrides": list(overrides), "latency": latency,
        "horizon_us": ts.horizon_us,
        "taskset_sha256": hashlib.sha256(ts.to_json().encode()).hexdigest(),
        "semantics": {"granularity": ts.granularity, "on_miss": ts.on_miss,
                      "preemption": ts.preemption, "after_horizon": ts.after_horizon,
                      "drain_us": ts.drain_us},
        "value": value, "violations_lower_bound": rounded,
    }
    if blocks is not None:
        data["method"] = "block bound: damage per block, prices per touch"
        data["blocks"] = blocks
    else:
        k = prices.period_ticks
        values = prices.values if k is None else prices.values[:, :k]
        data["method"] = "Lagrangian bound on a time grid, prices from the phase LP"
        data["lagrangian"] = {
            "tick_us": prices.tick_us, "num_ticks": int(prices.values.shape[1]),
            "period_ticks": k,
            "prices": {b: [float(x) for x in values[i]] for i, b in enumerate(ts.backends)}}
    return json.dumps(data)


def read_prices(text: str) -> tuple[Prices, dict]:
    """The Lagrangian prices of a certificate (tiled back over the run) and its fields."""
    data = json.loads(text)
    if data.get("format") != FORMAT or data.get("kind") != "lagrangian":
        raise ValueError(f"not a Lagrangian bound certificate ({data.get('format')!r})")
    spec = data["lagrangian"]
    values = np.array(list(spec["prices"].values()), dtype=float)
    k = spec["period_ticks"]
    if k is not None:
        values = values[:, np.arange(spec["num_ticks"]) % k]
    return Prices(int(spec["tick_us"]), values, k), data


def check_certificate(problem: Problem, text: str) -> float:
    """L(π) recomputed by this package from the certificate's prices (raises if it claims
    more): a self-consistency check; `verify-bound` is the independent one."""
    prices, data = read_prices(text)
    value = lagrangian_value(problem, prices).value
    if data["value"] > value + 1e-6 * max(1.0, abs(value)):
        raise ValueError(f"the certificate claims {data['value']}, its prices prove {value}")
    return value
