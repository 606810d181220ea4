"""Latency database: loading and validation (interpolation: ``rtgen_opt.model.curve``).

A database is one CSV file, or a folder holding ``latency.csv`` (and optionally
``transfers.csv``). Each row gives, for a model, stage and backend, the latency of the whole
stage (``layer`` empty: split uniformly over ``layers``) or of one layer (``layer`` set: the
stage then lists every layer). Latency may depend on ``seq_len`` (prompt length for prefill
and encoders, context length for decode); between listed lengths it is interpolated
linearly, outside them it is an error.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rtgen_opt import limits
from rtgen_opt.errors import InputError
from rtgen_opt.model.curve import Curve, SeqLenOutOfRange, bounded_segment_ms
from rtgen_opt.resources import data_dir
from rtgen_opt.safeload import read_limited

STAGES = ("frame", "prefill", "decode")
LLM_STAGES = ("prefill", "decode")
REQUIRED_COLUMNS = ("model", "stage", "backend", "seq_len", "layers", "latency_ms", "source")
OPTIONAL_COLUMNS = ("layer", "latency_p99_ms", "samples", "latency_min_ms", "latency_max_ms")
BOUND_COLUMNS = ("latency_min_ms", "latency_max_ms")  # the range of actual durations
LATENCY_STATISTICS = ("median", "p99")  # --latency: latency_ms, or latency_p99_ms
TRANSFER_COLUMNS = ("from_backend", "to_backend", "latency_ms")
# plain ASCII decimals: float() would also take "nan", "1_000" or Arabic-Indic digits
# and lengths are capped: an integer of 400 digits does not fit a float
_INTEGER = re.compile(r"[0-9]{1,15}", re.ASCII)
_DECIMAL = re.compile(r"(?=.{1,40}$)([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?",
                      re.ASCII)
_MAXIMA = {"layers": limits.MAX_LAYERS, "layer": limits.MAX_LAYERS - 1,
           "seq_len": limits.MAX_SEQ_LEN, "latency_ms": limits.MAX_LATENCY_MS,
           "latency_min_ms": limits.MAX_LATENCY_MS, "latency_max_ms": limits.MAX_LATENCY_MS}


@dataclass(frozen=True)
class LatencyDB:
    """A validated latency database."""

    name: str
    path: Path
    rows: tuple[dict, ...]  # as stored, for `db show`
    curves: dict[tuple[str, str, str], Curve]  # (model, stage, backend) -> curve
    stage2layers: dict[tuple[str, str], int]  # (model, stage) -> number of layers
    transfers: dict[tuple[str, str, str | None], float] = field(default_factory=dict)
    # (model, stage, backend) -> (min curve, max curve) of the actual durations, NaN where
    # a row gives no bound (the scenario's `execution` factors apply there)
    bound_curves: dict[tuple[str, str, str], tuple[Curve, Curve]] = field(
        default_factory=dict)

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(model for model, _ in self.stage2layers))

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(sorted({backend for _, _, backend in self.curves}))

    def stages(self, model: str) -> tuple[str, ...]:
        return tuple(s for s in STAGES if (model, s) in self.stage2layers)

    def is_llm(self, model: str) -> bool:
        return "prefill" in self.stages(model)

    def backends_for(self, model: str, stage: str) -> tuple[str, ...]:
        return tuple(b for b in self.backends if (model, stage, b) in self.curves)

    def depends_on_seq_len(self, model: str, stage: str) -> bool:
        return any(self.curves[model, stage, b].seq_lens is not None
                   for b in self.backends_for(model, stage))

    def layer_ms(self, model: str, stage: str, backend: str, seq_lens) -> np.ndarray:
        """Per-layer latencies in ms, shape ``(len(seq_lens), layers)``.

        Raises ``SeqLenOutOfRange`` outside the listed lengths.
        """
        try:
            return self.curves[model, stage, backend].at(seq_lens)
        except SeqLenOutOfRange as exc:
            raise SeqLenOutOfRange(f"{self.name}: {model}/{stage} on {backend} is {exc}") from None

    def segment_ms(self, model: str, stage: str, backend: str, seq_lens,
                   starts: np.ndarray) -> np.ndarray:
        """Segment latencies in ms, shape ``(len(seq_lens), len(starts))`` (``Curve.
        segment_ms``). Raises ``SeqLenOutOfRange`` outside the listed lengths."""
        try:
            return self.curves[model, stage, backend].segment_ms(seq_lens, starts)
        except SeqLenOutOfRange as exc:
            raise SeqLenOutOfRange(f"{self.name}: {model}/{stage} on {backend} is {exc}") from None

    def segment_bounds_ms(self, model: str, stage: str, backend: str, seq_lens,
                          starts: np.ndarray, factors: tuple[float, float]):
        """(min, max) of the segments' actual durations, each ``(ms, bounded)`` as
        ``bounded_segment_ms`` gives it (``factors``: the scenario's ``execution``, for
        the layers without a bound); None when no row of this curve has a bound."""
        curves = self.bound_curves.get((model, stage, backend))
        if curves is None:
            return None
        nominal = self.curves[model, stage, backend]
        return tuple(bounded_segment_ms(nominal, curve, factor, seq_lens, starts)
                     for factor, curve in zip(factors, curves, strict=True))

    def transfer_ms(self, model: str, src: str, dst: str) -> float:
        """Cost of moving a job's data from ``src`` to ``dst`` (0 when not listed)."""
        if src == dst:
            return 0.0
        return self.transfers.get((src, dst, model), self.transfers.get((src, dst, None), 0.0))


def builtin_dbs() -> dict[str, Path]:
    """Built-in databases by name."""
    root = data_dir("latency_db")
    return {p.name: p for p in sorted(root.iterdir()) if (p / "latency.csv").is_file()}


def resolve_db(ref: str, relative_to: Path | None = None) -> Path | None:
    """A database path from a built-in name or a path (relative to ``relative_to``)."""
    candidate = Path(ref)
    if relative_to is not None and not candidate.is_absolute():
        candidate = relative_to / candidate
    try:
        if candidate.exists():
            return candidate
    except (OSError, ValueError):  # a name too long, a NUL byte: no such database
        return None
    return builtin_dbs().get(ref)


def load_db(path: Path, name: str | None = None, latency: str = "median") -> LatencyDB:
    """Load and validate a latency database (a CSV file, or a folder with latency.csv).

    ``latency="p99"`` schedules with the ``latency_p99_ms`` column instead of the median.
    """
    path = Path(path)
    csv_path = path / "latency.csv" if path.is_dir() else path
    if not csv_path.is_file():
        raise InputError(str(path), "", "a latency database: a CSV file or a folder with "
                         "latency.csv")
    rows = _read_latency_rows(csv_path)
    chosen = select_latency(csv_path, rows, latency)
    curves, stage2layers = _build_curves(csv_path, chosen)
    bound_curves = _build_bound_curves(csv_path, chosen)
    transfers = {}
    # present in any form (a folder, a dangling link): read, so that what is wrong with it
    # is an error rather than a database silently without its transfer costs
    if path.is_dir() and os.path.lexists(path / "transfers.csv"):
        transfers = _read_transfers(path / "transfers.csv", stage2layers, curves)
    return LatencyDB(name or (path.name if path.is_dir() else path.stem), path,
                     tuple(r for r, _ in rows), curves, stage2layers, transfers, bound_curves)


def _read_csv(path: Path, required: tuple[str, ...], optional: tuple[str, ...]):
    """Rows of a CSV as (dict, line number), after checking its header and that every row
    has as many cells as the header."""
    text = read_limited(path, str(path), "a CSV file", limits.MAX_DB_BYTES)
    if "\x00" in text:
        raise InputError(str(path), "", "a CSV text file (no NUL bytes)")
    lines = text.count("\n") + 1
    _check_memory(path, "", lines * BYTES_PER_ROW, f"{lines:,} rows")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise InputError(str(path), "header", f"columns {', '.join(required)}",
                             f"missing {', '.join(missing)}")
        unknown = [c for c in header if c not in required + optional]
        if unknown:
            raise InputError(str(path), "header", f"only the columns "
                             f"{', '.join(required + optional)}", f"unknown {', '.join(unknown)}")
        twice = sorted({c for c in header if header.count(c) > 1})
        if twice:
            raise InputError(str(path), "header", "each column once", f"twice {', '.join(twice)}")
        rows = []
        for row in reader:
            if None in row or None in row.values():
                cells = len(row) - (None in row) + len(row.get(None) or ())
                cells -= sum(v is None for k, v in row.items() if k is not None)
                raise InputError(str(path), f"line {reader.line_num}", f"{len(header)} cells "
                                 "like the header", f"{cells}")
            rows.append((row, reader.line_num))
        return rows
    except csv.Error as exc:
        raise InputError(str(path), "", "a well-formed CSV file", str(exc)) from None


def _number(path, line, column, text, *, integer=False, positive=True, optional=False):
    """Parse one cell; empty is allowed only when ``optional``."""
    text = (text or "").strip()
    if not text:
        if optional:
            return None
        raise InputError(str(path), f"line {line}, {column}", "a value", "")
    pattern = _INTEGER if integer else _DECIMAL
    if not pattern.fullmatch(text):
        if text.startswith("-") and pattern.fullmatch(text[1:]):  # a sign: say the limit
            kind = (("a positive" if positive else "a non-negative")
                    + (" integer" if integer else " number"))
        else:
            kind = ("an integer of at most 15 digits" if integer
                    else "a decimal number (such as 12.5 or 1e3)")
        raise InputError(str(path), f"line {line}, {column}", kind, text)
    value = int(text) if integer else float(text)
    if not math.isfinite(value) or (positive and value <= 0) or (not positive and value < 0):
        raise InputError(str(path), f"line {line}, {column}",
                         "a positive number" if positive else "a non-negative number", text)
    maximum = _MAXIMA.get(column)
    if maximum is not None and value > maximum:
        raise InputError(str(path), f"line {line}, {column}", f"at most {maximum:,}", text)
    return value


def _name(path, line, column, text) -> str:
    """A model, stage, backend or source name: printable, not empty, not too long."""
    text = (text or "").strip()
    if not text:
        raise InputError(str(path), f"line {line}, {column}", "a non-empty value", "")
    limit = 1000 if column == "source" else limits.MAX_NAME_CHARS
    if len(text) > limit or not text.isprintable():
        raise InputError(str(path), f"line {line}, {column}", f"printable text of at most "
                         f"{limit} characters", text)
    return text


def _read_latency_rows(path: Path) -> list[tuple[dict, int]]:
    rows, seen = [], {}
    for raw, line in _read_csv(path, REQUIRED_COLUMNS, OPTIONAL_COLUMNS):
        names = {c: _name(path, line, c, raw.get(c)) for c in ("model", "stage", "backend",
                                                                  "source")}
        stage = names["stage"]
        if stage not in STAGES:
            raise InputError(str(path), f"line {line}, stage", f"one of {', '.join(STAGES)}",
                             stage)
        layers = _number(path, line, "layers", raw["layers"], integer=True)
        row = {
            "model": names["model"], "stage": stage, "backend": names["backend"],
            "seq_len": _number(path, line, "seq_len", raw["seq_len"], integer=True,
                               optional=True),
            "layers": layers,
            "latency_ms": _number(path, line, "latency_ms", raw["latency_ms"]),
            "latency_p99_ms": _number(path, line, "latency_p99_ms", raw.get("latency_p99_ms"),
                                      optional=True),
            "samples": _number(path, line, "samples", raw.get("samples"), integer=True,
                               optional=True),
            "layer": _number(path, line, "layer", raw.get("layer"), integer=True,
                             positive=False, optional=True),
            "source": names["source"],
        }
        row.update({c: _number(path, line, c, raw.get(c), optional=True)
                    for c in BOUND_COLUMNS})
        _check_bounds(path, line, row)
        if row["layer"] is not None and row["layer"] >= layers:
            raise InputError(str(path), f"line {line}, layer", f"a layer index below layers="
                             f"{layers}", row["layer"])
        if stage in LLM_STAGES and row["seq_len"] is None:
            raise InputError(str(path), f"line {line}, seq_len", f"a length: {stage} latency "
                             "depends on the sequence length", "")
        key = (row["model"], stage, row["backend"], row["seq_len"], row["layer"])
        if key in seen:
            raise InputError(str(path), f"line {line}", f"one row per model, stage, backend, "
                             f"seq_len and layer (line {seen[key]} has the same)", key[:5])
        seen[key] = line
        rows.append((row, line))
    if not rows:
        raise InputError(str(path), "", "at least one latency row", "an empty table")
    return rows


def _check_bounds(path: Path, line: int, row: dict) -> None:
    """latency_min_ms <= latency_ms (and latency_p99_ms) <= latency_max_ms."""
    low, high = row["latency_min_ms"], row["latency_max_ms"]
    if low is not None and low > row["latency_ms"]:
        raise InputError(str(path), f"line {line}, latency_min_ms", "a minimum at most "
                         f"latency_ms ({row['latency_ms']:g})", low)
    for column in ("latency_ms", "latency_p99_ms"):
        if high is not None and row[column] is not None and high < row[column]:
            raise InputError(str(path), f"line {line}, latency_max_ms", f"a maximum at "
                             f"least {column} ({row[column]:g})", high)


def select_latency(path: Path, rows: list[tuple[dict, int]], statistic: str
                   ) -> list[tuple[dict, int]]:
    """The rows with ``latency_ms`` taken from the chosen statistic's column.

    ``p99`` needs ``latency_p99_ms`` on every row (a conservative check must not fall back
    to a median silently), at least as large as the median.
    """
    if statistic not in LATENCY_STATISTICS:
        raise InputError("--latency", "", "median or p99", statistic)
    if statistic == "median":
        return rows
    if all(row["latency_p99_ms"] is None for row, _ in rows):
        raise InputError(str(path), "latency_p99_ms", "this column for --latency p99 (the "
                         "99th percentile, as measured by `rtgen-opt db profile`)", "no p99")
    chosen = []
    for row, line in rows:
        p99 = row["latency_p99_ms"]
        if p99 is None:
            raise InputError(str(path), f"line {line}, latency_p99_ms", "a value for --latency "
                             "p99 (measure it with `rtgen-opt db profile`)", "")
        if p99 < row["latency_ms"]:
            raise InputError(str(path), f"line {line}, latency_p99_ms", "a 99th percentile at "
                             f"least as large as latency_ms ({row['latency_ms']:g})", p99)
        chosen.append(({**row, "latency_ms": p99}, line))
    return chosen


def _build_curves(path: Path, rows: list[tuple[dict, int]]):
    """Group rows into per-layer curves, checking that stages are described consistently."""
    stage2layers: dict[tuple[str, str], int] = {}
    groups: dict[tuple[str, str, str], dict] = {}
    for row, line in rows:
        model, stage, backend = row["model"], row["stage"], row["backend"]
        layers = stage2layers.setdefault((model, stage), row["layers"])
        if layers != row["layers"]:
            raise InputError(str(path), f"line {line}, layers", f"{layers} like the other "
                             f"{model}/{stage} rows (a layer runs on any backend)", row["layers"])
        points = groups.setdefault((model, stage, backend), {})
        points.setdefault(row["seq_len"], []).append((row, line))

    for model in {m for m, _ in stage2layers}:
        stages = {s for m, s in stage2layers if m == model}
        if stages & set(LLM_STAGES) and (stages != set(LLM_STAGES)):
            raise InputError(str(path), f"model {model}", "either a frame stage, or both "
                             "prefill and decode (an LLM)", sorted(stages))

    for (model, stage, backend), points in groups.items():
        if None in points and len(points) > 1:
            raise InputError(str(path), f"line {points[None][0][1]}, seq_len", f"a seq_len "
                             f"on every {model}/{stage}/{backend} row, or on none", "")
    _check_tables(path, groups, stage2layers, len(rows))
    curves = {}
    for (model, stage, backend), points in groups.items():
        seq_lens = sorted(points) if None not in points else [None]
        curves[model, stage, backend] = Curve(
            None if seq_lens == [None] else np.array(seq_lens, dtype=float),
            _layer_table(path, points, seq_lens, stage2layers[model, stage], "latency_ms"))
    return curves, stage2layers


BYTES_PER_ROW = 1_500  # a row read, validated and grouped (peak RSS: about 1.3 KB a row)


def _check_tables(path: Path, groups: dict, stage2layers: dict, rows: int) -> None:
    """Refuse (exit 2) a database whose per-layer tables would not fit in memory: every
    listed length of a curve takes 8 bytes per layer (twice more with min/max bounds),
    a whole-stage row too when the tables are used — so 3,000 rows of `layers: 100000`
    are 2.4 GB, from a file of 77 KB."""
    cells = {key: len(points) * stage2layers[key[:2]] * (3 if _has_bounds(points) else 1)
             for key, points in groups.items()}
    biggest = max(cells, key=cells.get)
    points = groups[biggest]
    line = min(line for same_len in points.values() for _, line in same_len)
    layers = stage2layers[biggest[:2]]
    _check_memory(path, f"line {line}, layers", 8 * sum(cells.values()) + rows * BYTES_PER_ROW,
                  f"{rows:,} rows and their per-layer tables", f"; 8 bytes per layer and "
                  f"listed length, whole-stage rows too: the largest is {'/'.join(biggest)}, "
                  f"{len(points):,} length(s) x {layers:,} layers", layers)


def _check_memory(path: Path, field: str, need: int, what: str, note: str = "",
                  got: object = ...) -> None:
    limit = limits.max_memory()
    if limits.BASE_BYTES + need > limit:
        raise InputError(str(path), field, f"a latency database that fits in {_gib(limit)} of "
                         f"memory ({what} need about {_gib(need)}{note}): fewer rows or "
                         "layers, or raise --max-memory", got)


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def _has_bounds(points: dict) -> bool:
    return any(r[c] is not None for same_len in points.values() for r, _ in same_len
               for c in BOUND_COLUMNS)


def _build_bound_curves(path: Path, rows: list[tuple[dict, int]]):
    """The (min, max) curves of every (model, stage, backend) with at least one bound,
    split over layers as the nominal latency is (the rows passed ``_build_curves``); a
    row without the bound gives NaN."""
    groups: dict[tuple[str, str, str], dict] = {}
    for row, line in rows:
        key = (row["model"], row["stage"], row["backend"])
        groups.setdefault(key, {}).setdefault(row["seq_len"], []).append((row, line))
    result = {}
    for key, points in groups.items():
        if not _has_bounds(points):
            continue
        layers = points[next(iter(points))][0][0]["layers"]
        seq_lens = sorted(points) if None not in points else [None]
        xs = None if seq_lens == [None] else np.array(seq_lens, dtype=float)
        result[key] = tuple(Curve(xs, _layer_table(path, points, seq_lens, layers, column))
                            for column in BOUND_COLUMNS)
    return result


def _layer_table(path: Path, points: dict, seq_lens: list, layers: int,
                 column: str) -> np.ndarray:
    """A row per listed length, a value per layer (NaN where ``column`` is empty). Whole-
    stage rows only: a read-only broadcast of one number per length, so a row of `layers:
    100000` costs nothing until the tables are used (``_check_tables`` counts it)."""
    values = [_point_values(path, points[s], layers, column) for s in seq_lens]
    if all(isinstance(v, float) for v in values):
        return np.broadcast_to((np.array(values) / layers)[:, None], (len(values), layers))
    table = np.empty((len(values), layers))
    for i, value in enumerate(values):
        table[i] = value / layers if isinstance(value, float) else value
    return table


def _point_values(path: Path, rows: list[tuple[dict, int]], layers: int,
                  column: str) -> float | np.ndarray:
    """One listed point: the whole stage's latency (a float, split uniformly over the
    layers by the caller) or one latency per layer."""
    def value(row: dict) -> float:
        return math.nan if row[column] is None else row[column]

    whole = [(r, line) for r, line in rows if r["layer"] is None]
    if whole:
        if len(rows) > 1:
            raise InputError(str(path), f"line {rows[1][1]}", "either one whole-stage row "
                             "(layer empty) or one row per layer, not both")
        return float(value(whole[0][0]))
    by_layer = {r["layer"]: value(r) for r, _ in rows}
    missing = [i for i in range(layers) if i not in by_layer]
    if missing:
        r, line = rows[0]
        raise InputError(str(path), f"line {line}", f"a row for every layer 0..{layers - 1} "
                         f"of {r['model']}/{r['stage']}/{r['backend']} seq_len {r['seq_len']}",
                         f"missing layers {missing}")
    return np.array([by_layer[i] for i in range(layers)])


def _read_transfers(path: Path, stage2layers, curves) -> dict[tuple[str, str, str | None],
                                                                float]:
    """Transfer costs between backends (and per model) that the latency table knows."""
    backends = sorted({b for _, _, b in curves})
    models = list(dict.fromkeys(m for m, _ in stage2layers))
    transfers = {}
    for raw, line in _read_csv(path, TRANSFER_COLUMNS, ("model",)):
        src, dst = (_name(path, line, c, raw.get(c)) for c in ("from_backend", "to_backend"))
        for column, backend in (("from_backend", src), ("to_backend", dst)):
            if backend not in backends:
                raise InputError(str(path), f"line {line}, {column}", "a backend of "
                                 f"latency.csv ({', '.join(backends)})", backend)
        model = (raw.get("model") or "").strip() or None
        if model is not None and model not in models:
            raise InputError(str(path), f"line {line}, model", "a model of latency.csv, or "
                             "empty for every model", model)
        key = (src, dst, model)
        if key in transfers:
            raise InputError(str(path), f"line {line}", "one row per backend pair and model",
                             key)
        transfers[key] = _number(path, line, "latency_ms", raw["latency_ms"], positive=False)
    return transfers
