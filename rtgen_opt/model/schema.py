"""JSON Schemas (2020-12) of the scenario file and the latency database, for editors and
for validation outside the tool (`rtgen-opt schema scenario|database`).

The key sets come from the loader's own constants (``TOP_KEYS``, ``PERIODIC_KEYS``,
``REQUEST_KEYS``, the database's column tuples), so a key the loader accepts is a key the
schema names; the loader stays the authority on values (ranges, units, cross-field rules),
which the schema describes in the broad strokes an editor can check. A test validates every
built-in scenario and example against these schemas and checks that the loader and the
schema both refuse a typo'd key.
"""

from __future__ import annotations

from rtgen_opt.model.latency import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, TRANSFER_COLUMNS
from rtgen_opt.model.scenario import (
    AFTER_HORIZON,
    ARRIVAL_KINDS,
    ON_MISS,
    PERIODIC_KEYS,
    PREEMPTION,
    REQUEST_KEYS,
    TOP_KEYS,
)

DRAFT = "https://json-schema.org/draft/2020-12/schema"
DURATION = {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]*)?\s*(us|µs|ms|s|min|h)\s*$",
            "description": "a duration with its unit: 60s, 16.67ms, 500us, 2min"}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
POSITIVE = {"type": "number", "exclusiveMinimum": 0}
COUNT = {"type": "integer", "minimum": 1}

_TASK_FIELDS = {
    "name": NAME, "model": NAME, "fps": POSITIVE, "period": DURATION, "deadline": DURATION,
    "phase": DURATION, "weight": POSITIVE, "after": NAME, "input_tokens": COUNT,
    "output_tokens": COUNT, "ttft": DURATION, "tpt": DURATION, "jitter": DURATION,
    "arrivals": {
        "type": "object", "minProperties": 1,
        "properties": {"every": DURATION, "start": DURATION, "times": {
            "type": "array", "items": DURATION}, "poisson": POSITIVE,
            "seed": {"type": "integer", "minimum": 0},
            "file": {"type": "string", "description": "a CSV request trace: header time, "
                     "one duration per row"}},
        "additionalProperties": False,
        "description": "one of " + ", ".join(ARRIVAL_KINDS)
                       + " (poisson with a seed; file: a CSV request trace)"},
}
_TOP_FIELDS = {
    "name": NAME, "description": {"type": "string"}, "latency_db": NAME,
    "platform": {"type": "object", "additionalProperties": COUNT,
                 "description": "backend -> instances"},
    "horizon": DURATION, "drain": DURATION, "after_horizon": {"enum": list(AFTER_HORIZON)},
    "granularity": {"type": "string", "pattern": r"^(layer|model|group:[1-9][0-9]*)$"},
    "on_miss": {"enum": list(ON_MISS)}, "preemption": {"enum": list(PREEMPTION)},
    "execution": {"type": "array", "items": POSITIVE, "minItems": 2, "maxItems": 2,
                  "description": "[lo, hi]: actual durations within [lo, hi] x nominal, "
                                 "0 < lo <= 1 <= hi"},
    "mapping": {"type": "object", "additionalProperties": NAME,
                "description": '"model" or "model/stage" -> backend'},
}


def _task(keys: tuple[str, ...], required: list[str]) -> dict:
    return {"type": "object", "properties": {k: _TASK_FIELDS[k] for k in keys},
            "required": required, "additionalProperties": False}


def scenario_schema() -> dict:
    """The schema of a scenario file (YAML, instances/*.yaml)."""
    periodic = _task(PERIODIC_KEYS, ["name", "model"])
    periodic["oneOf"] = [{"required": ["fps"]}, {"required": ["period"]}]
    request = _task(REQUEST_KEYS, ["name", "model"])
    request["anyOf"] = [{"required": ["arrivals"]}, {"required": ["after"]}]
    top = {k: _TOP_FIELDS[k] for k in TOP_KEYS if k != "tasks"}
    top["tasks"] = {"type": "array", "minItems": 1, "items": {"oneOf": [periodic, request]}}
    return {"$schema": DRAFT, "$id": "https://rtgen-opt.invalid/schema/scenario.json",
            "title": "rtgen-opt scenario", "type": "object", "properties": top,
            "required": ["tasks"], "additionalProperties": False}


def database_schema() -> dict:
    """The schema of one row of ``latency.csv`` (and of ``transfers.csv``), as the JSON
    object a CSV row reads as (every cell a string)."""
    number = {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?\s*$"}
    optional_number = {"type": "string", "pattern": r"^(\s*|\s*[0-9]+(\.[0-9]*)?\s*)$"}
    cells = {"model": NAME, "stage": {"enum": ["frame", "prefill", "decode"]},
             "backend": NAME, "seq_len": optional_number, "layers": number,
             "latency_ms": number, "source": {"type": "string"}}
    cells.update({c: optional_number for c in OPTIONAL_COLUMNS})
    row = {"type": "object", "properties": {c: cells[c] for c in
                                            (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)},
           "required": list(REQUIRED_COLUMNS), "additionalProperties": False}
    transfer = {"type": "object", "properties": {c: (NAME if c != "latency_ms" else number)
                                                 for c in (*TRANSFER_COLUMNS, "model")},
                "required": list(TRANSFER_COLUMNS), "additionalProperties": False}
    return {"$schema": DRAFT, "$id": "https://rtgen-opt.invalid/schema/database.json",
            "title": "rtgen-opt latency database row", "$defs": {"transfer": transfer},
            **row}
