"""Latency curves: per-layer latency as a function of sequence length, interpolated
linearly between the listed lengths (an error outside them), and summed into segments
without materialising every layer at every length."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class SeqLenOutOfRange(ValueError):
    """A sequence length outside the listed range of a curve (callers name the field)."""


@dataclass(frozen=True)
class Curve:
    """Per-layer latency (ms) of one (model, stage, backend) as a function of seq_len.

    ``seq_lens`` is ascending, or ``None`` when the latency does not depend on it;
    ``layer_ms`` has one row per listed length (a single row when ``seq_lens`` is None).
    """

    seq_lens: np.ndarray | None
    layer_ms: np.ndarray

    def at(self, seq_lens: np.ndarray | int) -> np.ndarray:
        """Per-layer latencies at each length: shape ``(len(seq_lens), layers)``."""
        idx, t = self.locate(seq_lens)
        if t is None:
            return np.repeat(self.layer_ms[:1], len(idx), axis=0)
        return self.layer_ms[idx] * (1 - t) + self.layer_ms[idx + 1] * t

    def segment_ms(self, seq_lens: np.ndarray | int, starts: np.ndarray) -> np.ndarray:
        """Latency of each segment (the layers from one of ``starts`` to the next) at each
        length: shape ``(len(seq_lens), len(starts))``. The layers are summed at the listed
        lengths, then interpolated — the same as summing ``at`` in exact arithmetic, without
        its lengths x layers matrix (an LLM's thousands of decode steps x 10**5 layers)."""
        idx, t = self.locate(seq_lens)
        if t is None:
            return np.repeat(np.add.reduceat(self.layer_ms[:1], starts, axis=1), len(idx),
                             axis=0)
        used = np.unique(np.concatenate([idx, idx + 1]))  # at most two rows per length
        sums = np.add.reduceat(self.layer_ms[used], starts, axis=1)
        low, high = np.searchsorted(used, idx), np.searchsorted(used, idx + 1)
        return sums[low] * (1 - t) + sums[high] * t

    def locate(self, seq_lens) -> tuple[np.ndarray, np.ndarray | None]:
        """Where each length falls among the listed ones: (row, weight) such that
        ``table[row] * (1 - weight) + table[row + 1] * weight`` interpolates a table with a
        row per listed length; weight None when one row holds at every length.

        Raises ``SeqLenOutOfRange`` outside the listed lengths."""
        x = np.atleast_1d(np.asarray(seq_lens, dtype=float))
        if self.seq_lens is None:
            return np.zeros(len(x), dtype=int), None
        lo, hi = self.seq_lens[0], self.seq_lens[-1]
        if x.min() < lo or x.max() > hi:
            bad = x[(x < lo) | (x > hi)][0]
            raise SeqLenOutOfRange(f"listed for seq_len {lo:g}..{hi:g}, asked for {bad:g}")
        if len(self.seq_lens) == 1:
            return np.zeros(len(x), dtype=int), None
        idx = np.clip(np.searchsorted(self.seq_lens, x, side="right") - 1, 0,
                      len(self.seq_lens) - 2)
        x0, x1 = self.seq_lens[idx], self.seq_lens[idx + 1]
        return idx, ((x - x0) / (x1 - x0))[:, None]


def bounded_segment_ms(nominal: Curve, bound: Curve, factor: float, seq_lens,
                       starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One side (min or max) of the actual durations of each segment at each length:
    the sum over its layers of the database's bound where the rows give one, else of
    ``factor`` x the nominal latency; and whether any layer of the segment has a bound.
    Shapes ``(len(seq_lens), len(starts))``, summed per listed interval as ``segment_ms``
    (a layer is bounded between two listed lengths when both give its bound)."""
    idx, t = nominal.locate(seq_lens)
    if t is None:
        own, other, bounded = _split_sums(nominal.layer_ms[0], bound.layer_ms[0],
                                          ~np.isnan(bound.layer_ms[0]), starts)
        value = own + factor * other
        return (np.repeat(value[None], len(idx), axis=0),
                np.repeat(bounded[None], len(idx), axis=0))
    value = np.empty((len(idx), len(starts)))
    bounded = np.empty((len(idx), len(starts)), dtype=bool)
    for i in np.unique(idx):
        at, w = idx == i, t[idx == i]
        given = ~np.isnan(bound.layer_ms[i]) & ~np.isnan(bound.layer_ms[i + 1])
        own0, other0, bounded[at] = _split_sums(nominal.layer_ms[i], bound.layer_ms[i],
                                                given, starts)
        own1, other1, _ = _split_sums(nominal.layer_ms[i + 1], bound.layer_ms[i + 1], given,
                                      starts)
        value[at] = (own0 * (1 - w) + own1 * w) + factor * (other0 * (1 - w) + other1 * w)
    return value, bounded


def _split_sums(nominal: np.ndarray, bound: np.ndarray, given: np.ndarray,
                starts: np.ndarray):
    """Per segment: the sum of the bounds of its ``given`` layers, the sum of the nominal
    latencies of the others, and whether it has a given layer."""
    return (np.add.reduceat(np.where(given, bound, 0.0), starts),
            np.add.reduceat(np.where(given, 0.0, nominal), starts),
            np.add.reduceat(given, starts) > 0)
