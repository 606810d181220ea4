"""Lower bounds on the weighted frame violations of a ``Problem``.

* ``lagrangian`` — prices on backend time over a grid; valid for any prices;
* ``phase_lp`` — prices chosen by a small LP over the frames' repeat period;
* ``blocks`` — the block bound: exact frame damage per block, prices per occupied interval,
  for frames with slack where per-tick prices prove nothing;
* ``chain_blocks`` — the chain-block bound: each chain pays the exact block damage of its
  own touches, the blocks keep what several chains save together (no certificate);
* ``certificate`` — the prices and value written out, for anyone to re-check.
"""

from .lagrangian import BoundValue, Prices, lagrangian_value
from .phase_lp import phase_prices

__all__ = ["BoundValue", "LowerBound", "Prices", "lagrangian_value", "lower_bound",
           "max_bound", "phase_prices"]


import math  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402

from ..problem import Problem  # noqa: E402
from .blocks import block_bound  # noqa: E402
from .chain_blocks import chain_block_bound  # noqa: E402

DEFAULT_TICK_US = 500  # strength vs memory: 0.5 ms is near the finest that pays (see README)
# the chain-block bound runs where some chain has at least this share of its window's blocks
# to itself (elsewhere it gives the block bound back: 60 s of scenario_c at OD 30 FPS, 0.41)
CHAIN_MIN_SHARE = 0.5
CHAIN_MAX_WORK = 40_000_000  # cells x segments x states of its chain programs (~5-10 s)


@dataclass(frozen=True)
class LowerBound:
    """A proven lower bound on a problem's weighted frame violations, and how."""

    value: float  # in weight units, rounded up when the weights are integers
    method: str  # what proved it, for the output
    prices: Prices | None  # the phase LP's prices: the exportable certificate (or None)
    exact: float  # the certifiable bound before rounding (what the certificate proves)
    wall_s: float
    blocks: dict | None = None  # the block bound's certificate part, when it is reported
    certified: float | None = None  # what the certificate proves, when below ``value``


def lower_bound(problem: Problem, tick_us: int = DEFAULT_TICK_US, blocks: bool = True,
                enough: float | None = None) -> LowerBound:
    """The best valid bound we can prove quickly: the Lagrangian bound with prices from
    the phase LP and, with ``blocks``, the block bound where frames have slack — skipped
    once the phase bound reaches ``enough`` (the best schedule known). 0 when the frames
    do not repeat."""
    started = time.perf_counter()
    chosen = phase_prices(problem, tick_us)
    if chosen is None:
        return LowerBound(0.0, "trivial (no repeating frames to price)", None, 0.0,
                          time.perf_counter() - started)
    prices, facts = chosen
    value = lagrangian_value(problem, prices)
    method = (f"Lagrangian bound, prices from the phase LP ({facts['phases']} phases of "
              f"{facts['tick_us'] / 1000:g} ms, {facts['patterns']} frame patterns)")
    best = LowerBound(value.rounded(problem), method, prices, value.value, 0.0)
    if blocks and (enough is None or best.value < enough):
        best = max_bound(problem, best, tick_us)
    return replace(best, wall_s=time.perf_counter() - started)


def max_bound(problem: Problem, best: LowerBound, tick_us: int = DEFAULT_TICK_US
              ) -> LowerBound:
    """``best``, or the block bound where it is stronger; then the chain-block bound where
    it applies (``CHAIN_MIN_SHARE``, ``CHAIN_MAX_WORK``) and is stronger still. That one
    has no certificate: the result keeps the certifiable bound's (``exact``, ``prices``,
    ``blocks``) and says what it proves in ``certified`` and its method."""
    started = time.perf_counter()
    blocks = block_bound(problem, tick_us)
    if blocks is not None and _rounded(problem, blocks.value) > best.value:
        best = LowerBound(_rounded(problem, blocks.value),
                          f"block bound (exact frame damage per block, {blocks.blocks} blocks "
                          f"of {blocks.types} types; phase LP: {best.value:g})", best.prices,
                          blocks.value, best.wall_s, blocks.certificate)
    chain = chain_block_bound(problem, tick_us, CHAIN_MIN_SHARE, CHAIN_MAX_WORK)
    if chain is not None and _rounded(problem, chain.value) > best.value:
        certifiable = "block bound" if best.blocks is not None else "Lagrangian bound"
        best = replace(best, value=_rounded(problem, chain.value), certified=best.value,
                       method=f"chain-block bound (exact own damage per chain and block, "
                              f"{chain.single} of {chain.blocks} blocks to one chain; no "
                              f"certificate: the {certifiable}'s proves {best.value:g})")
    return replace(best, wall_s=best.wall_s + time.perf_counter() - started)


def _rounded(problem: Problem, value: float) -> float:
    """In weight units, rounded up when the weights are integers (so is OPT)."""
    if problem.weight_scale == 1:
        return float(max(0, math.ceil(value - 1e-6)))
    return max(0.0, value)
