"""Input limits: representable numbers, file sizes and the memory limit.

Two kinds of limit protect every command from hostile or mistaken input:

* **Representable numbers.** Time is integer microseconds in int64 arrays (docs/semantics.md),
  and CP-SAT takes domains up to 2**62. With the bounds below and a task set that passes
  the memory check (at most ~10**7 segments of at most 3.6e9 µs each on one backend), every
  sum the tool forms — a release plus a deadline, a drain of 10 x a chain's standalone
  latency — stays below ~4e17 µs, an order of magnitude inside both. The bounds are far
  above any real scenario: a frame rate of 10**6 FPS, a stage of one hour, a horizon of 11
  days.
* **Memory.** A valid scenario can still expand into more jobs and segments than fit in
  memory (60 s at 60 FPS is thousands of jobs; 10**5 s at 1000 FPS is 10**8). The task
  set's size is estimated from the scenario alone — O(number of tasks), nothing is
  allocated (``rtgen_opt.model.size``) — and refused with a suggestion when the estimate
  exceeds the memory limit
  (``--max-memory``, or the environment variable ``RTGEN_OPT_MAX_MEMORY``; default: half
  the physical memory, at most 8 GiB).
"""

from __future__ import annotations

import os
import re
from fractions import Fraction

from rtgen_opt.errors import InputError

# ------------------------------------------------------------------ representable numbers

MAX_DURATION_S = 10**6  # any duration in a file or on the command line (11.6 days)
MAX_RATE_HZ = 10**6  # fps and Poisson rates: a period of at least 1 µs
MIN_RATE_HZ = Fraction(1, MAX_DURATION_S)  # a period of at most MAX_DURATION_S
MAX_LATENCY_MS = 3_600_000  # one latency-database row (a stage or a layer): one hour
MAX_LAYERS = 100_000
MAX_SEQ_LEN = 10_000_000  # input tokens and database sequence lengths
MAX_OUTPUT_TOKENS = 1_000_000
MAX_INSTANCES = 1_024  # instances of one backend
MAX_TASKS = 1_000
MAX_ARRIVAL_TIMES = 100_000  # explicit `times:` of one task
MAX_WEIGHT = 10**6
MAX_SEED = 2**63 - 1
MAX_NAME_CHARS = 200  # task, model and backend names
MAX_WORKERS = 256  # CP-SAT rejects a model with tens of thousands of workers
MAX_SOLVER_SEED = 2**31 - 1  # CP-SAT's random_seed is an int32

# ------------------------------------------------------------------ file sizes

MAX_SCENARIO_BYTES = 256 * 2**10  # 1,000 tasks take about 60 KiB; parsing YAML is slow
MAX_DB_BYTES = 64 * 2**20
MAX_SCHEDULE_BYTES = 2 * 2**30

# ------------------------------------------------------------------ memory

# Bytes per job and per segment of a task set, with what a command builds from it (the
# executor's state, a schedule, the evaluator). Measured with peak RSS (``/usr/bin/time
# -f %M``) of ``simulate scenario_c --policy edf-dyn`` at 200 s and 2000 s: about 560 B
# per segment; ``taskset`` alone about 160 B. Rounded up.
BYTES_PER_SEGMENT = 700
BYTES_PER_JOB = 400
BASE_BYTES = 100 * 2**20  # the interpreter, NumPy, OR-Tools
MAX_MEMORY_ENV = "RTGEN_OPT_MAX_MEMORY"
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?\s*$",
                   re.ASCII)
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
               "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
DRAIN_FACTOR = 10  # default drain: a request gives up after 10 x its standalone latency


def parse_size(text: str, source: str) -> int:
    """A memory size like ``8GiB``, ``500MB`` or a number of bytes."""
    match = _SIZE.match(text) if isinstance(text, str) and len(text) < 40 else None
    if not match:
        raise InputError(source, "", "a memory size like 8GiB or 500MB", text)
    value = int(Fraction(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if value < BASE_BYTES:
        raise InputError(source, "", f"at least {BASE_BYTES // 2**20}MiB", text)
    return value


def default_max_memory() -> int:
    """Half the physical memory, at most 8 GiB (``RTGEN_OPT_MAX_MEMORY`` overrides it)."""
    env = os.environ.get(MAX_MEMORY_ENV)
    if env:
        return parse_size(env, MAX_MEMORY_ENV)
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 16 * 2**30
    return min(8 * 2**30, physical // 2)


_max_memory: int | None = None


def set_max_memory(limit: int | None) -> None:
    """Set the memory limit of this process (the CLI's ``--max-memory``)."""
    global _max_memory
    _max_memory = limit


def max_memory() -> int:
    return _max_memory if _max_memory is not None else default_max_memory()
