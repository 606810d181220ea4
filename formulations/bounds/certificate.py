"""The bound's certificate: the prices and the value they prove, as JSON.

Validity of the Lagrangian bound does not depend on how the prices were chosen, so anyone
holding the task set can recompute L(π) from this file and confirm the bound
(``check_certificate`` here; the tests re-check it with slow, independent code).
"""

from __future__ import annotations

import json
import math

import numpy as np

from ..problem import Problem
from .lagrangian import Prices, lagrangian_value

FORMAT = "rtgen-opt lagrangian bound v1"


def certificate_json(problem: Problem, prices: Prices, value: float) -> str:
    """The certificate: prices per backend (one period when they repeat) and L(π) (the
    Lagrangian bound with prices from the phase LP; a stronger block bound, when one is
    reported, is recomputed by `solve`, not certified by this file)."""
    ts = problem.ts
    rounded = (float(max(0, math.ceil(value - 1e-6))) if problem.weight_scale == 1
               else max(0.0, value))
    k = prices.period_ticks
    values = prices.values if k is None else prices.values[:, :k]
    return json.dumps({
        "format": FORMAT, "scenario": ts.scenario, "horizon_us": ts.horizon_us,
        "after_horizon": ts.after_horizon,
        "method": "Lagrangian bound on a time grid, prices from the phase LP",
        "value": value, "violations_lower_bound": rounded,
        "tick_us": prices.tick_us, "num_ticks": int(prices.values.shape[1]),
        "period_ticks": k, "backends": list(ts.backends),
        "prices": {b: [round(float(x), 12) for x in values[i]]
                   for i, b in enumerate(ts.backends)},
    })


def read_prices(text: str) -> tuple[Prices, dict]:
    """The prices of a certificate (tiled back over the run) and its other fields."""
    data = json.loads(text)
    if data.get("format") != FORMAT:
        raise ValueError(f"not a bound certificate (format {data.get('format')!r})")
    values = np.array([data["prices"][b] for b in data["backends"]], dtype=float)
    k = data["period_ticks"]
    if k is not None:
        values = values[:, np.arange(data["num_ticks"]) % k]
    return Prices(int(data["tick_us"]), values, k), data


def check_certificate(problem: Problem, text: str) -> float:
    """L(π) recomputed from the certificate's prices (raises if it claims more)."""
    prices, data = read_prices(text)
    value = lagrangian_value(problem, prices).value
    if data["value"] > value + 1e-6 * max(1.0, abs(value)):
        raise ValueError(f"the certificate claims {data['value']}, its prices prove {value}")
    return value
