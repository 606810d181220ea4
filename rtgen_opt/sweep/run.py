"""Sweeps: many scenario variants, one tidy table (`rtgen-opt sweep`).

A sweep file (``sweep_file``: the schema) names scenario(s), axes of ``--set``
overrides and commands to run at every point.

Each (point, command) is one **run**: the scenario is loaded with the point's overrides
(``--set`` semantics), expanded, and the library called in a worker — never the CLI. Its
result is flattened into rows (one per policy or method; every nested metric becomes a
dotted column, so metrics added to the library appear without a change here) and cached
under a content hash of what determines it: the scenario after overrides, the latency
database's content, the command and its options, the tool's version and source code. A
rerun computes only what the cache lacks; a failed run is recorded in the table (its
``error`` column) and never cached, so a rerun retries it.

Engines (``sweep_engines``): a local process pool, or Ray. Results are ordered by point,
command and policy whichever engine computed them, so the table does not depend on it.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import time
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from rtgen_opt import __version__
from rtgen_opt.errors import InputError
from rtgen_opt.model.scenario import Scenario, load_scenario
from rtgen_opt.model.size import check_size
from rtgen_opt.output import STDOUT, csv_cell, write_file, write_with
from rtgen_opt.safeload import read_limited
from rtgen_opt.sweep.cache import CACHE_FORMAT, ResultCache, default_cache_dir  # noqa: F401
from rtgen_opt.sweep.compute import Run
from rtgen_opt.sweep.engines import ENGINES
from rtgen_opt.sweep.spec import Command, SweepSpec, assignment

ID_COLUMNS = ("point", "scenario")  # then the axes, then RUN_COLUMNS, then the metrics
RUN_COLUMNS = ("command", "policy", "error")
# What the report plots and the summary table shows when the file has no `plots`.
DEFAULT_PLOTS = {
    "simulate": ("violation_rate", "llm.*.ttft_ms.mean", "llm.*.tpt_ms.mean", "llm.*.starved"),
    "solve": ("violations", "violations_lower_bound", "gap"),
    "check": ("verdict", "max_fps_proven"),
    "gap": ("violations", "matched_optimum.violations", "gap_violations"),
}


# ----------------------------------------------------------------------------- points


def expand(spec: SweepSpec) -> list[tuple[int, str, str, tuple]]:
    """The points in order: (index, scenario, scenario path, axis assignments); the
    scenarios vary slowest, then the axes in file order, the last fastest."""
    points = []
    steps = itertools.product(*(axis.values for axis in spec.axes))
    combos = [tuple(kv for axis, step in zip(spec.axes, combo, strict=True)
                    for kv in zip(axis.keys, step, strict=True)) for combo in steps]
    for (scenario, path), combo in itertools.product(
            zip(spec.scenarios, spec.scenario_paths, strict=True), combos):
        points.append((len(points), scenario, path, combo))
    return points


def plan(spec: SweepSpec) -> list[Run]:
    """Every run of the sweep, validated and keyed. A point whose overrides the scenario
    rejects is bad input (exit 2), named with its assignments: nothing has run yet.

    Each run carries what its key hashes — the loaded scenario and the policies' source —
    so that the worker computes from exactly that (``compute.Run``). Points whose latency
    databases have the same rows share one loaded copy."""
    runs = []
    fingerprint = code_fingerprint()
    sources = {c.name: policy_sources(c) for c in spec.commands}
    databases: dict[str, object] = {}
    arrivals: dict = {}
    for index, scenario, path, combo in expand(spec):
        overrides = spec.base_overrides + tuple(assignment(k, v) for k, v in combo)
        said = ", ".join(f"{k}={json.dumps(v)}" for k, v in combo) or "the base scenario"
        try:
            loaded = load_scenario(path, overrides)
        except InputError as exc:
            raise InputError(spec.source, f"point {index} ({scenario}: {said})",
                             f"overrides the scenario accepts: {exc}") from None
        if loaded.horizon is None:
            raise InputError(spec.source, "horizon", f"a horizon for {scenario}, which has "
                             "none: the sweep's `horizon`, or an axis of horizons", "nothing")
        try:  # a task set too large for memory: refused before anything runs
            check_size(loaded, None)
        except InputError as exc:
            raise InputError(spec.source, f"point {index} ({scenario}: {said})",
                             f"a task set that fits in memory: {exc}") from None
        loaded = _shared(loaded, databases, arrivals)
        for command in spec.commands:
            _check_against_scenario(spec, command, loaded, index)
            key = run_key(loaded, command, fingerprint, sources[command.name])
            runs.append(Run(index, scenario, path, combo, overrides, command, key, loaded,
                            tuple(sorted(sources[command.name].items()))))
    return runs


def _shared(scenario: Scenario, databases: dict, arrivals: dict) -> Scenario:
    """``scenario`` holding the one loaded copy of an equal latency database and of equal
    arrival times (a request trace of 100,000 times, the same at every point): the runs
    keep their scenarios until computed, and a sweep has up to ``MAX_RUNS`` of them."""
    db = databases.setdefault(db_fingerprint(scenario), scenario.db)
    tasks = tuple(t if t.arrivals is None else
                  dataclasses.replace(t, arrivals=arrivals.setdefault(t.arrivals, t.arrivals))
                  for t in scenario.tasks)
    return dataclasses.replace(scenario, db=db, tasks=tasks)


MAX_POLICY_BYTES = 4 * 2**20


def policy_sources(command: Command) -> dict[str, str]:
    """Label -> source text of each user policy file the command names, read once: the
    text is hashed into the key and travels with the run."""
    return {label: read_limited(Path(spec.rpartition(":")[0]), spec, "a policy file (Python)",
                                MAX_POLICY_BYTES)
            for label, spec in command.options.get("policy_files", {}).items()}


def _check_against_scenario(spec: SweepSpec, command: Command, scenario: Scenario,
                            index: int) -> None:
    task = command.options.get("max_fps")
    periodic = [t.name for t in scenario.tasks if t.kind == "periodic"]
    if task is not None and task not in periodic:
        raise InputError(spec.source, "run.check.max_fps", f"a periodic task of the scenario "
                         f"at point {index} ({', '.join(periodic)})", task)


# ----------------------------------------------------------------------------- cache


def run_key(scenario: Scenario, command: Command, fingerprint: str,
            sources: dict[str, str] | None = None) -> str:
    """The content hash of a run: what it computes from, and nothing else (not the file
    names, not the time). ``sources``: the user policies' text (read now when None)."""
    sources = policy_sources(command) if sources is None else sources
    content = {
        "format": CACHE_FORMAT, "version": __version__, "code": fingerprint,
        "scenario": repr(dataclasses.replace(scenario, db=None, source="")),
        "db": db_fingerprint(scenario), "command": command.name, "options": command.options,
        "policy_code": {command.options["policy_files"][label]:
                        hashlib.sha256(text.encode()).hexdigest()
                        for label, text in sources.items()},
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def db_fingerprint(scenario: Scenario) -> str:
    db = scenario.db
    text = json.dumps([list(db.rows), sorted(map(repr, db.transfers.items()))], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


_CODE_FINGERPRINT: list[str] = []


def code_fingerprint() -> str:
    """A hash of the package's source: a cached result is reused only by the code that
    computed it (the version alone does not change between commits)."""
    if not _CODE_FINGERPRINT:
        import importlib.util

        roots = [Path(__file__).parent.parent]
        spec = importlib.util.find_spec("rtgen_opt.formulations")
        roots += [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
        digest = hashlib.sha256()
        for root in roots:
            for path in sorted(root.rglob("*.py")):
                digest.update(path.relative_to(root).as_posix().encode())
                digest.update(path.read_bytes())
        _CODE_FINGERPRINT.append(digest.hexdigest())
    return _CODE_FINGERPRINT[0]


# ----------------------------------------------------------------------------- the sweep


@dataclass
class SweepOutcome:
    """What a sweep produced: the rows in table order and how they were obtained."""

    spec: SweepSpec
    rows: list[dict]
    runs: int
    cached: int = 0
    computed: int = 0
    failed: int = 0
    ignored: int = 0  # cache records found but not trusted, recomputed (sweep.cache)
    interrupted: bool = False
    wall_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return self.runs - self.cached - self.computed - self.failed


class StopSweep(Exception):
    """Raised by the engines' result hook to end the sweep as Ctrl-C would (test hook)."""


def run_sweep(spec: SweepSpec, runs: list[Run], engine: str = "local", workers: int = 0,
              address: str | None = None, cache: ResultCache | None = None, progress=None,
              stop_after: int | None = None) -> SweepOutcome:
    """Run what the cache lacks on an engine, and assemble the table.

    ``progress(done, total, computed, failed, elapsed_s)`` is called after each run.
    ``stop_after``: stop as Ctrl-C does after that many runs were computed (a test hook).
    Ctrl-C (KeyboardInterrupt) stops the engine; finished runs are kept (and cached).
    """

    cache = cache or ResultCache(None)
    started = time.perf_counter()
    results: dict[int, dict] = {}
    todo = []
    for i, run in enumerate(runs):
        rows = cache.get(run.key)
        if rows is None:
            todo.append(i)
        else:
            results[i] = {"rows": rows, "error": None, "cached": True}
    outcome = SweepOutcome(spec, [], len(runs), cached=len(results), ignored=cache.ignored)
    say = progress or (lambda *a: None)

    def on_result(i: int, result: dict) -> None:
        result = json.loads(json.dumps(result))  # the types a cached result has
        results[i] = result
        if result["error"] is None:
            # an answer a clock decided may differ on a rerun: shown, never cached
            if all(row.get("reproducible", True) is not False for row in result["rows"]):
                cache.put(runs[i].key, runs[i], result["rows"])
            outcome.computed += 1
        else:
            outcome.failed += 1
        say(len(results), len(runs), outcome.computed + outcome.failed, outcome.failed,
            time.perf_counter() - started)
        if stop_after is not None and outcome.computed + outcome.failed >= stop_after:
            raise StopSweep

    say(len(results), len(runs), 0, 0, 0.0)
    try:
        if todo:
            ENGINES[engine]([runs[i] for i in todo], todo, workers, address, on_result)
    except (KeyboardInterrupt, StopSweep):
        outcome.interrupted = True
    outcome.rows = table_rows(spec, runs, results)
    outcome.errors = [f"point {runs[i].point} {runs[i].command.name}: {r['error']}"
                      for i, r in sorted(results.items()) if r["error"]]
    outcome.wall_s = time.perf_counter() - started
    return outcome


def table_rows(spec: SweepSpec, runs: list[Run], results: dict[int, dict]) -> list[dict]:
    """One row per run and policy (or method), in run order: point, scenario, the axes,
    command, policy, error, then every metric. A failed run gets a row per expected
    policy with its error, so plots show a gap rather than a shorter line."""
    rows = []
    for i, run in enumerate(runs):
        if i not in results:
            continue
        ident = {"point": run.point, "scenario": run.scenario,
                 **{k: _cell(v) for k, v in run.assignments}, "command": run.command.name}
        result = results[i]
        if result["error"] is not None:
            rows += [{**ident, "policy": label, "error": result["error"]}
                     for label in run.command.labels]
            continue
        for metrics in result["rows"]:
            metrics = dict(metrics)
            rows.append({**ident, "policy": metrics.pop("policy", None), "error": None,
                         **{k: v for k, v in metrics.items() if k not in ident}})
    return rows


def _cell(value):
    return value if value is None or isinstance(value, (bool, int, float, str)) else \
        json.dumps(value, sort_keys=True)


def plot_columns(spec: SweepSpec, columns: list[str]) -> list[str]:
    """The metric columns to plot and summarize: the file's `plots` (glob patterns) or
    the commands' headline metrics, in pattern order, those the table has."""
    patterns = spec.plots or tuple(p for c in spec.commands for p in DEFAULT_PLOTS[c.name])
    fixed = set(ID_COLUMNS) | set(RUN_COLUMNS) | set(spec.axis_keys)
    chosen = []
    for pattern in patterns:
        chosen += [c for c in columns if fnmatch(c, pattern) and c not in fixed
                   and c not in chosen]
    return chosen


def check_plots(spec: SweepSpec, rows: list[dict]) -> None:
    """InputError naming the first `plots` pattern that matches no column of the computed
    rows (a typo would otherwise plot nothing, silently); not judged when no run gave rows.
    Called before anything is written: the runs are cached, a corrected rerun is quick."""
    fixed = set(ID_COLUMNS) | set(RUN_COLUMNS) | set(spec.axis_keys)
    columns = sorted({c for row in rows if row.get("error") is None for c in row} - fixed)
    if not columns or not spec.plots:
        return
    for pattern in spec.plots:
        if not any(fnmatch(c, pattern) for c in columns):
            close = difflib.get_close_matches(pattern, columns, n=3, cutoff=0.5)
            said = f"did you mean {', '.join(close)}?" if close else \
                f"such as {', '.join(columns[:5])}"
            raise InputError(spec.source, "plots", "glob patterns each matching a metric "
                             f"column of the table ({said})", pattern)


def estimate(spec: SweepSpec, runs: list[Run], cache: ResultCache, workers: int) -> dict:
    """What `--dry-run` prints: points, runs, what the cache already holds, and the work
    left: policy simulations and task-set segments (estimated from the scenarios, as the
    memory check does: no task set is built), and the solver time budget (the sum of the
    commands' time limits: an upper bound on their solver time; a `max_fps` search shares
    one limit among its probes). A point whose task set would not fit in memory is refused
    here, as the run itself would refuse it."""
    todo = [r for r in runs if cache.get(r.key) is None]
    scenarios = {r.point: r.loaded for r in todo}
    estimates = [check_size(s, None) for s in scenarios.values()]
    segments = sum(e.segments for e in estimates if e is not None)
    simulations = sum(len(r.command.options["policies"]) for r in todo
                      if r.command.name == "simulate")
    solver_s = sum(_solver_budget(r) for r in todo)
    return {"sweep": spec.name, "points": spec.num_points, "runs": len(runs),
            "cached": len(runs) - len(todo), "to_compute": len(todo),
            "axes": list(spec.axis_keys), "commands": [c.name for c in spec.commands],
            "simulations": simulations, "segments": segments,
            "solver_budget_s": solver_s, "workers": workers,
            "solver_wall_s_at_most": solver_s / max(1, workers)}


def _solver_budget(run: Run) -> float:
    options = run.command.options
    if run.command.name in ("solve", "gap"):
        return options["time_limit_s"]
    if run.command.name == "check":  # the optimal method solves; a policy simulates
        return options["time_limit_s"] * sum(p == "optimal" for p in options["policies"])
    return 0.0


# ----------------------------------------------------------------------------- output


TABLE_FORMATS = (".csv", ".parquet")


def check_table_path(path: str) -> None:
    """Before the sweep runs: a table name we can write (CSV, or Parquet with pyarrow;
    ``-``: CSV on stdout)."""
    if path == STDOUT:
        return
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise InputError("--out", "", "a file name ending in .csv or .parquet", path)
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError("--out", "", "pyarrow for Parquet: pip install "
                             "'rtgen-opt[sweep]' (or write .csv)", path) from None
    if not Path(path).resolve().parent.is_dir():
        raise InputError("--out", "", "a path in an existing folder", path)


def to_frame(rows: list[dict]):
    """The tidy table as a pandas DataFrame, columns in first-appearance order."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    for column in frame.columns:  # integers stay integers beside missing cells
        values = [r[column] for r in rows if r.get(column) is not None]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            frame[column] = frame[column].astype("Int64")
    return frame


def table_csv(rows: list[dict]) -> str:
    """The table as CSV whose text cells a spreadsheet shows as text (``csv_cell``)."""
    frame = to_frame(rows)
    frame.columns = [csv_cell(c) for c in frame.columns]
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].map(csv_cell)
    return frame.to_csv(index=False)


def write_table(rows: list[dict], path: str) -> None:
    """CSV or Parquet by extension, through the one atomic writer (``rtgen_opt.output``)."""
    if Path(path).suffix.lower() == ".parquet":
        frame = _arrow_safe(to_frame(rows))
        write_with({path: lambda temp: frame.to_parquet(temp, index=False)})
    else:
        write_file(path, table_csv(rows))


def _arrow_safe(frame):
    """Parquet needs one type per column: a column mixing text with other values (an
    axis of durations and numbers, say) is written as text."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column].dropna()
        kinds = {type(v) for v in values}
        if len(kinds) > 1 and not kinds <= {int, float, bool}:
            frame[column] = frame[column].map(lambda v: v if v is None or v != v else str(v))
    return frame


class ProgressLine:
    """Progress on stderr with an ETA from the throughput so far: one line rewritten on a
    terminal, otherwise a line every tenth of the work or ten seconds."""

    def __init__(self, stream, label: str, enabled: bool = True):
        self.stream, self.label, self.enabled = stream, label, enabled
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.last_print, self.last_share = -math.inf, -1
        self.open_line = False

    def __call__(self, done: int, total: int, computed: int, failed: int,
                 elapsed: float) -> None:
        if not self.enabled:  # --quiet
            return
        share = done * 10 // max(total, 1)
        now = time.monotonic()
        if not self.tty and done < total and share == self.last_share and \
                now - self.last_print < 10:
            return
        self.last_print, self.last_share = now, share
        left = total - done
        eta = "" if not computed or not left else f", ETA {_clock(elapsed / computed * left)}"
        text = (f"[sweep] {self.label}: {done}/{total} runs ({done - computed} cached, "
                f"{failed} failed), {_clock(elapsed)}{eta}")
        end = "\n" if not self.tty or done == total else ""
        self.stream.write(("\r\033[K" if self.tty else "") + text + end)
        self.stream.flush()
        self.open_line = not end

    def close(self) -> None:
        if self.open_line:
            self.stream.write("\n")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
