"""JSON Schemas (2020-12) of the scenario file and the latency database, for editors and
for validation outside the tool (`rtgen-opt schema scenario|database`).

The scenario schema is built from the loader's own definitions: its key sets
(``TOP_KEYS``, ``PERIODIC_KEYS``, ``REQUEST_KEYS``, ``ARRIVAL_KEYS``), its enums, its
limits (``rtgen_opt.limits``, ``MAX_EXECUTION_FACTOR``, the text lengths) and the duration
syntax (``units.DURATION_BODY``), so the two agree on everything a file alone decides:
required keys, types, ranges, exclusive keys, durations. What needs the latency database
(a model or backend that exists there, ``input_tokens`` when the latency depends on it,
``output_tokens`` for an LLM) or the whole task list (unique names, ``after`` targets) is
the loader's alone. tests/test_schema.py checks the agreement field by field, on every
built-in scenario and on every scenario example in the docs.

The tool reads ``1e3`` as a number (safeload.py); PyYAML and other YAML 1.1 readers give
the text "1e3", so every numeric field also takes such a text (``EXPONENT``): its range is
then the loader's to check.
"""

from __future__ import annotations

from rtgen_opt import limits
from rtgen_opt.model.latency import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, TRANSFER_COLUMNS
from rtgen_opt.model.scenario import (
    AFTER_HORIZON,
    ARRIVAL_KEYS,
    ARRIVAL_KINDS,
    MAX_DB_REF_CHARS,
    MAX_DESCRIPTION_CHARS,
    MAX_EXECUTION_FACTOR,
    ON_MISS,
    PERIODIC_KEYS,
    PREEMPTION,
    REQUEST_KEYS,
    TOP_KEYS,
)
from rtgen_opt.units import DURATION_BODY, MAX_DURATION_CHARS

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# the end of the text: Python's `$` (jsonschema) also matches before a final newline
END = r"$(?!\n)"

# ---------------------------------------------------------------- value definitions


def duration(positive: bool = True) -> dict:
    """A duration with its unit, as ``units.parse_duration`` reads it; ``positive``: not
    zero (a lookahead for a non-zero digit), else the number 0 too."""
    nonzero = "(?=[^1-9]*[1-9])" if positive else ""
    text = {"type": "string", "maxLength": MAX_DURATION_CHARS,
            "pattern": "^" + nonzero + DURATION_BODY + END,
            "description": "a duration with its unit: 60s, 16.67ms, 500us, 2min"
                           + ("" if positive else " (or 0)")}
    if positive:
        return text
    return {"anyOf": [text, {"type": "number", "const": 0}]}


# a number with an exponent, as the tool's YAML reader resolves it (safeload.py)
_MANTISSA = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
EXPONENT = {"type": "string", "pattern": rf"^\+?(?=[^eE]*[1-9]){_MANTISSA}[eE][-+]?[0-9]+{END}",
            "description": "a positive number with an exponent (1e3), which YAML 1.1 "
                           "readers leave as text"}


def _integral_exponent(positive: bool) -> dict:
    """A text like 1e3 or 2.5e1 whose value is a whole number: no more significant
    fraction digits than the (non-negative) exponent."""
    forms = [r"[0-9]+\.?0*[eE]\+?[0-9]+"]
    for d in range(1, 10):
        forms.append(rf"[0-9]*\.[0-9]{{{d}}}0*[eE]\+?0*(?:[{d}-9]|[1-9][0-9]+)")
    nonzero = "(?=[^eE]*[1-9])" if positive else ""
    return {"type": "string", "pattern": rf"^\+?{nonzero}(?:{'|'.join(forms)}){END}",
            "description": "a whole number with an exponent (1e3)"}


def number(minimum: float = 0, maximum: float | None = None) -> dict:
    """A positive number within [minimum, maximum] (``_Fields.number``)."""
    value: dict = {"type": "number", "exclusiveMinimum": 0}
    if minimum > 0:
        value["minimum"] = float(minimum)
    if maximum is not None:
        value["maximum"] = maximum
    return {"anyOf": [value, EXPONENT]}


def integer(minimum: int = 1, maximum: int | None = None) -> dict:
    """An integer within [minimum, maximum] (``_Fields.integer``)."""
    value: dict = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        value["maximum"] = maximum
    return {"anyOf": [value, _integral_exponent(minimum > 0)]}


# what str.isprintable refuses, in the Basic Multilingual Plane: controls, format
# characters, separators other than the space, private use
_UNPRINTABLE = (r"\u007f-\u00a0\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
                r"\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000"
                r"\ue000-\uf8ff\ufeff\ufff9-\ufffb")


def text(max_chars: int = limits.MAX_NAME_CHARS, lines: bool = False) -> dict:
    """A text with a character that is not a space, of printable characters (``lines``:
    newlines and tabs too), at most ``max_chars`` long (``_Fields.text``)."""
    controls = r"\u0000-\u0008\u000b-\u001f" if lines else r"\u0000-\u001f"
    return {"type": "string", "maxLength": max_chars,
            "pattern": rf"^(?=[\s\S]*\S)[^{controls}{_UNPRINTABLE}]*{END}"}


NAME = text()
# kept for the sweep schema (sweep/schema.py)
DURATION = duration()
POSITIVE = number()
COUNT = integer()

_TASK_FIELDS = {
    "name": NAME, "model": NAME,
    "fps": number(limits.MIN_RATE_HZ, limits.MAX_RATE_HZ), "period": duration(),
    "deadline": duration(), "phase": duration(positive=False),
    "weight": number(maximum=limits.MAX_WEIGHT), "after": NAME,
    "input_tokens": integer(maximum=limits.MAX_SEQ_LEN),
    "output_tokens": integer(maximum=limits.MAX_OUTPUT_TOKENS),
    "ttft": duration(), "tpt": duration(), "jitter": duration(positive=False),
}
_ARRIVAL_FIELDS = {
    "every": duration(), "start": duration(positive=False),
    "times": {"type": "array", "minItems": 1, "maxItems": limits.MAX_ARRIVAL_TIMES,
              "items": duration(positive=False)},
    "poisson": number(limits.MIN_RATE_HZ, limits.MAX_RATE_HZ),
    "seed": integer(0, limits.MAX_SEED),
    "file": {"type": "string", "pattern": r"\S",
             "description": "a CSV request trace: header time, one duration per row"},
}
# each kind of arrivals: the keys it may have beside its own, and those it needs
_ARRIVAL_FORMS = {"every": (("start",), ()), "times": ((), ()),
                  "poisson": (("start", "seed"), ("seed",)), "file": ((), ())}
# group:N with N from 1 to MAX_LAYERS (a power of ten: 1-9 followed by fewer digits, or
# it), written in at most 6 digits (leading zeros count: scenario._is_group)
assert str(limits.MAX_LAYERS).rstrip("0") == "1"
_TOP_FIELDS = {
    "name": NAME, "description": text(MAX_DESCRIPTION_CHARS, lines=True),
    "latency_db": text(MAX_DB_REF_CHARS),
    "platform": {"type": "object", "minProperties": 1,
                 "additionalProperties": integer(maximum=limits.MAX_INSTANCES),
                 "description": "backend -> instances"},
    "horizon": duration(), "drain": duration(),
    "after_horizon": {"enum": list(AFTER_HORIZON)},
    "granularity": {"type": "string",
                    "pattern": r"^(layer|model|group:(?=[0-9]{1,6}$)0*([1-9][0-9]{0,"
                               + f"{len(str(limits.MAX_LAYERS)) - 2}}}|{limits.MAX_LAYERS}))"
                               + END,
                    "description": f"layer, model or group:N (N from 1 to {limits.MAX_LAYERS})"},
    "on_miss": {"enum": list(ON_MISS)}, "preemption": {"enum": list(PREEMPTION)},
    "execution": {"type": "array", "minItems": 2, "maxItems": 2, "prefixItems": [
                      {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                                 EXPONENT]},
                      {"anyOf": [{"type": "number", "minimum": 1,
                                  "maximum": MAX_EXECUTION_FACTOR}, EXPONENT]}],
                  "description": "[lo, hi]: actual durations within [lo, hi] x nominal, "
                                 f"0 < lo <= 1 <= hi <= {MAX_EXECUTION_FACTOR}"},
    "mapping": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1},
                "description": '"model" or "model/stage" -> backend'},
}


def _arrivals() -> dict:
    forms = []
    for kind in ARRIVAL_KINDS:
        extra, needed = _ARRIVAL_FORMS[kind]
        keys = (kind, *extra)
        forms.append({"properties": {k: _ARRIVAL_FIELDS[k] for k in keys},
                      "required": [kind, *needed], "additionalProperties": False})
    assert set(_ARRIVAL_FIELDS) == set(ARRIVAL_KEYS)
    return {"type": "object", "oneOf": forms,
            "description": "exactly one of " + ", ".join(ARRIVAL_KINDS)
                           + " (every with an optional start; poisson with a seed and an "
                           "optional start; times or file alone)"}


def _task(keys: tuple[str, ...], required: list[str]) -> dict:
    fields = {**_TASK_FIELDS, "arrivals": _arrivals()}
    return {"type": "object", "properties": {k: fields[k] for k in keys},
            "required": required, "additionalProperties": False}


def scenario_schema() -> dict:
    """The schema of a scenario file (YAML, instances/*.yaml)."""
    periodic = _task(PERIODIC_KEYS, ["name", "model"])
    periodic["oneOf"] = [{"required": ["fps"]}, {"required": ["period"]}]
    request = _task(REQUEST_KEYS, ["name", "model"])
    # a request task has its own arrivals or inherits them through `after`, not both
    request["oneOf"] = [{"required": ["arrivals"]}, {"required": ["after"]}]
    top = {k: _TOP_FIELDS[k] for k in TOP_KEYS if k != "tasks"}
    top["tasks"] = {"type": "array", "minItems": 1, "maxItems": limits.MAX_TASKS,
                    "items": {"oneOf": [periodic, request]}}
    return {"$schema": DRAFT, "$id": "https://rtgen-opt.invalid/schema/scenario.json",
            "title": "rtgen-opt scenario", "type": "object", "properties": top,
            "required": ["latency_db", "tasks"], "additionalProperties": False}


def database_schema() -> dict:
    """The schema of one row of ``latency.csv`` (and of ``transfers.csv``), as the JSON
    object a CSV row reads as (every cell a string)."""
    name = {"type": "string", "minLength": 1, "maxLength": limits.MAX_NAME_CHARS}
    number = {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?\s*$"}
    optional_number = {"type": "string", "pattern": r"^(\s*|\s*[0-9]+(\.[0-9]*)?\s*)$"}
    cells = {"model": name, "stage": {"enum": ["frame", "prefill", "decode"]},
             "backend": name, "seq_len": optional_number, "layers": number,
             "latency_ms": number, "source": {"type": "string"}}
    cells.update({c: optional_number for c in OPTIONAL_COLUMNS})
    row = {"type": "object", "properties": {c: cells[c] for c in
                                            (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)},
           "required": list(REQUIRED_COLUMNS), "additionalProperties": False}
    transfer = {"type": "object", "properties": {c: (name if c != "latency_ms" else number)
                                                 for c in (*TRANSFER_COLUMNS, "model")},
                "required": list(TRANSFER_COLUMNS), "additionalProperties": False}
    return {"$schema": DRAFT, "$id": "https://rtgen-opt.invalid/schema/database.json",
            "title": "rtgen-opt latency database row", "$defs": {"transfer": transfer},
            **row}
