"""``--set KEY=VALUE``: applying an override to a raw scenario, and blaming an invalid
value on the override that wrote it rather than on the scenario file."""

from __future__ import annotations

from rtgen_opt.errors import InputError
from rtgen_opt.safeload import load_yaml


def apply_override(raw: dict, assignment: str, top_keys: tuple[str, ...]) -> None:
    """Apply one ``--set key=value`` to the raw scenario mapping (validated afterwards).

    Keys are top-level keys (``granularity=model``, ``platform.npu=2``,
    ``mapping.llama3.2-1b/prefill=gpu``) or a task's name and field
    (``llm.input_tokens=2048``, ``llm.arrivals.every=2s``). Values are YAML scalars.
    """
    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise InputError("--set", assignment, "KEY=VALUE, like llm.input_tokens=2048")
    key = key.strip()
    value = load_yaml(text, "--set", key) if text.strip() else ""
    head, _, rest = key.partition(".")
    if head in ("platform", "mapping") and rest:
        raw.setdefault(head, {})
        if not isinstance(raw[head], dict):
            raise InputError("--set", key, f"{head} to be a mapping in the scenario")
        raw[head][rest] = value
        return
    if head in top_keys and not rest and head != "tasks":
        raw[head] = value
        return
    tasks = raw.get("tasks") if isinstance(raw.get("tasks"), list) else []
    # Task names may contain dots: match the longest name that prefixes the key.
    named = sorted((t for t in tasks if isinstance(t, dict) and isinstance(t.get("name"), str)
                    and key.startswith(t["name"] + ".")), key=lambda t: -len(t["name"]))
    if not named:
        names = [t.get("name") for t in tasks if isinstance(t, dict)]
        raise InputError("--set", key, f"a top-level key ({', '.join(top_keys[:-1])}) or "
                         f"TASK.FIELD with a task of the scenario ({', '.join(map(str, names))})")
    target = named[0]
    parts = key[len(target["name"]) + 1:].split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise InputError("--set", key, f"{part} to be a mapping in the scenario")
    target[parts[-1]] = value


def blame_override(exc: InputError, source: str, overrides) -> InputError:
    """A field a ``--set`` wrote is the override's fault, not the file's (a built-in
    scenario lives inside site-packages): ``--set llm.input_tokens: expected ...``. Any
    other error of a scenario with overrides says which applied."""
    if exc.source != source or not overrides:
        return exc
    for assignment in reversed(overrides):  # the last one for a key is the one applied
        key = assignment.partition("=")[0].strip()
        for field in (key, f"tasks.{key}"):
            if exc.field == field or exc.field.startswith((field + ".", field + "[")):
                return InputError(f"--set {key}", exc.field[len(field):].lstrip("."),
                                  exc.expected, exc.got)
    exc.args = (f"{exc} (the scenario after --set {' '.join(overrides)})",)
    return exc


def blame_metadata(exc: InputError, schedule: str, overrides) -> InputError:
    """Overrides read from a schedule file's metadata (``replay --settings-from-schedule``)
    are that file's, not the command line's: an error one of them causes names the file
    and its metadata field ``set`` (``trace.json: metadata set, llm.nosuch: expected
    ...``), not a ``--set`` the user never typed."""
    source = str(exc.source)
    if source == "--set" or source.startswith("--set "):
        key, detail = source[len("--set"):].strip(), exc.field
        rest = ".".join(p for p in (key, detail) if p).replace(".[", "[")
        return InputError(schedule, f"metadata set, {rest}" if rest else "metadata set",
                          exc.expected, exc.got)
    text = str(exc)
    if overrides and "(the scenario after --set " in text:
        exc.args = (text.replace("(the scenario after --set ",
                                 f"(the scenario after {schedule}'s metadata set: "),)
    return exc
