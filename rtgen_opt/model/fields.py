"""Typed access to one mapping of a YAML file the user wrote (a scenario, a sweep): every
error is an ``InputError`` naming the file and the field's path (``tasks[2].fps``).

What both files share lives here: the mapping check, unknown keys (with the closest known
one as a hint), paths, and required or defaulted texts. Each file's reader subclasses it
for its own value types (durations, numbers, integers, flags), whose messages differ
between the two files on purpose: tests and users rely on them."""

from __future__ import annotations

import difflib

from rtgen_opt.errors import InputError

# the first characters of an unknown key compared with the known ones: difflib is
# quadratic, and a longer key is never close to a known (short) one anyway
MAX_HINT_CHARS = 100


class Fields:
    """One mapping at ``where`` (empty: the top level) of ``source``, whose keys must be
    among ``allowed`` (None: any key)."""

    text_keys = False  # reject keys that are not non-empty text before unknown ones

    def __init__(self, source: str, where: str, mapping: object,
                 allowed: tuple[str, ...] | None):
        if not isinstance(mapping, dict):
            raise InputError(source, where or "top level", "a mapping", mapping)
        self.source, self.where, self.mapping = source, where, mapping
        for key in mapping:
            if self.text_keys and (not isinstance(key, str) or not key.strip()):
                raise self.error(str(key), "a non-empty text key", key)
            if allowed is not None and key not in allowed:
                close = difflib.get_close_matches(str(key)[:MAX_HINT_CHARS], allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.error(str(key), f"a known key{hint}; this mapping takes "
                                 f"{', '.join(allowed)}")

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else str(key)

    def error(self, key: str, expected: str, got: object = ...) -> InputError:
        return InputError(self.source, self.path(key), expected, got)

    def has(self, key: str) -> bool:
        return key in self.mapping

    def text(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        """A non-empty text, one of ``choices`` when given; ``default`` when the key is
        absent (required when there is none)."""
        if key not in self.mapping:
            if default is None:
                raise self.error(key, "a value (this key is required)", "nothing")
            return default
        value = self.mapping[key]
        if not isinstance(value, str) or not value.strip() or (choices and value not in choices):
            raise self.error(key, f"one of {', '.join(choices)}" if choices else "a text", value)
        return value
