"""The JSON Schema (2020-12) of a sweep file (`rtgen-opt schema sweep`): its keys from the
sweep reader's own ``TOP_KEYS``, ``COMMANDS`` and ``COMMAND_OPTIONS``."""

from __future__ import annotations

from rtgen_opt.model.schema import DRAFT, DURATION, NAME
from rtgen_opt.sweep.spec import COMMAND_OPTIONS, COMMANDS, TOP_KEYS

_OPTION = {"policies": {"oneOf": [NAME, {"type": "array", "items": NAME}]},
           "policy": NAME, "solver": {"enum": ["cpsat", "milp"]}, "mip_solver": NAME,
           "time_limit": DURATION, "workers": {"type": "integer", "minimum": 0},
           "seed": {"type": "integer", "minimum": 0}, "ttft": {"type": "string"},
           "slo": {"type": "boolean"}, "max_fps": NAME}
_TOP = {"name": NAME, "description": {"type": "string"}, "scenario": NAME,
        "scenarios": {"type": "array", "items": NAME}, "horizon": DURATION,
        "set": {"type": "array", "items": {"type": "string"}},
        "grid": {"type": "object", "additionalProperties": {"type": "array"}},
        "zip": {"type": "object", "additionalProperties": {"type": "array"}},
        "plots": {"type": "array"}}


def sweep_schema() -> dict:
    run = {"type": "object", "minProperties": 1, "additionalProperties": False,
           "properties": {c: {"type": ["object", "null"], "additionalProperties": False,
                              "properties": {o: _OPTION[o] for o in COMMAND_OPTIONS[c]}}
                          for c in COMMANDS}}
    props = {k: (run if k == "run" else _TOP[k]) for k in TOP_KEYS}
    return {"$schema": DRAFT, "$id": "https://rtgen-opt.invalid/schema/sweep.json",
            "title": "rtgen-opt sweep", "type": "object", "properties": props,
            "required": ["run"], "additionalProperties": False}
