"""YAML and JSON from untrusted files, with limits: every file a user hands us goes through
here.

``yaml.safe_load`` and ``json.loads`` construct anything well-formed; a hostile or broken
file can still hurt: a duplicate key silently wins (``fps: 30`` then ``fps: 1000000``),
a "billion laughs" document expands aliases into gigabytes, deep nesting exhausts the
recursion limit, a huge file takes minutes. These loaders reject each case with an
``InputError`` naming the file and the line, before anything large is built.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path

import yaml

from rtgen_opt.errors import InputError

MAX_DEPTH = 64  # nesting levels of mappings and lists
MAX_EXPANDED_NODES = 200_000  # YAML nodes once every alias is expanded
MAX_ALIASES = 1_000


class _LimitExceeded(yaml.YAMLError):
    def __init__(self, expected: str, got: object, mark):
        super().__init__(expected)
        self.expected, self.got, self.problem_mark = expected, got, mark


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and bounds nesting and alias expansion."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _LimitExceeded(f"at most {MAX_ALIASES} aliases (*name)", self._aliases,
                                     self.peek_event().start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _LimitExceeded(f"at most {MAX_DEPTH} levels of nesting", self._depth,
                                     self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node):
        _check_expanded_size(node)
        return super().construct_document(node)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` may override on purpose
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # a list or mapping as a key
                    raise _LimitExceeded("a text or number as a mapping key", key,
                                         key_node.start_mark) from None
                if duplicate:
                    first = seen[key].start_mark.line + 1
                    raise _LimitExceeded(f"each key once in a mapping (line {first} has it "
                                         "already)", key, key_node.start_mark)
                seen[key] = key_node
        return super().construct_mapping(node, deep)


# YAML 1.1 (PyYAML) reads 1e3, 1.5e3 and 1e-3 as text: its floats need a point and a signed
# exponent (1.0e+3). YAML 1.2 and every user read them as numbers, so do we: `fps: 1e3` and
# `--set od.fps=1e3` were refused as "expected a positive number, got '1e3'".
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def _check_expanded_size(root: yaml.Node) -> None:
    """Count the nodes of the document as if every alias were copied (memoised per node,
    so linear in the file) and refuse exponential blow-ups before constructing them."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if not children_done and id(node) in visiting:
            raise _LimitExceeded("no recursive alias (a value that contains itself)",
                                 node.tag.rsplit(":", 1)[-1], node.start_mark)
        children = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if children_done or not children:
            size = 1 + sum(sizes.get(id(c), 1) for c in children)
            if size > MAX_EXPANDED_NODES:
                raise _LimitExceeded(f"a document of at most {MAX_EXPANDED_NODES} values once "
                                     "aliases are expanded", f"{size} or more", node.start_mark)
            sizes[id(node)] = size
            continue
        visiting.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


def read_limited(path: Path, source: str, what: str, max_bytes: int) -> str:
    """The UTF-8 text of ``path``, refused when larger than ``max_bytes`` (checked before a
    byte is parsed) or when it is not a regular file: a device (``/dev/zero``) never ends,
    a named pipe blocks. The file is opened without blocking and checked on the open
    descriptor, so it cannot be swapped between the check and the read.

    The path ``-`` is standard input (a pipe is fine there: the user chose it), read once
    and kept, so that a file's head and its whole can both be read."""
    if str(path) == STDIN:
        data = _stdin(max_bytes + 1)
        if len(data) > max_bytes:
            raise InputError(source, "", f"{what} of at most {_size(max_bytes)}", "more")
        return _decoded(data, source, what)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputError(source, "", _readable(what), exc.strerror or str(exc)) from None
    try:
        # checked on the descriptor before wrapping it: os.fdopen itself refuses a folder
        # (IsADirectoryError), which must read as bad input, not as an internal error
        try:
            info = os.fstat(fd)
        except OSError as exc:
            raise InputError(source, "", _readable(what), exc.strerror or str(exc)) \
                from None
        if not stat.S_ISREG(info.st_mode):
            raise InputError(source, "", f"{what}: a regular file (not a device, a pipe "
                             "or a folder)")
        if info.st_size > max_bytes:
            raise InputError(source, "", f"{what} of at most {_size(max_bytes)}",
                             _size(info.st_size))
        try:
            f = os.fdopen(fd, "rb")
        except OSError as exc:
            raise InputError(source, "", _readable(what), exc.strerror or str(exc)) \
                from None
    except BaseException:
        os.close(fd)
        raise
    with f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as exc:
            raise InputError(source, "", _readable(what), exc.strerror or str(exc)) \
                from None
    if len(data) > max_bytes:
        raise InputError(source, "", f"{what} of at most {_size(max_bytes)}", "more")
    return _decoded(data, source, what)


def _readable(what: str) -> str:
    """"a readable schedule file" from "a schedule file" (one article, not two)."""
    for article in ("a ", "an "):
        if what.startswith(article):
            what = what[len(article):]
            break
    return f"a readable {what}"


def _decoded(data: bytes, source: str, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(source, f"byte {exc.start}", f"{what} in UTF-8 text",
                         data[exc.start:exc.start + 8]) from None


def read_yaml_file(path: Path, source: str, what: str, max_bytes: int) -> object:
    """``read_limited`` then ``load_yaml``: the one way a YAML file is read."""
    return load_yaml(read_limited(path, source, what, max_bytes), source)


def read_json_file(path: Path, source: str, what: str, max_bytes: int) -> object:
    """``read_limited`` then ``load_json``: the one way a JSON file is read."""
    return load_json(read_limited(path, source, what, max_bytes), source)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def load_yaml(text: str, source: str, field: str = "") -> object:
    """Parse one YAML document strictly; errors name ``source`` and the line."""
    if "\x00" in text:
        raise InputError(source, field, "YAML text (no NUL bytes)")
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except _LimitExceeded as exc:
        raise InputError(source, _where(field, exc.problem_mark), exc.expected, exc.got) \
            from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(source, _where(field, mark), "valid YAML", problem) from None
    except RecursionError:
        raise InputError(source, field, f"at most {MAX_DEPTH} levels of nesting") from None


def _where(field: str, mark) -> str:
    line = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return ", ".join(p for p in (field, line) if p)


def load_json(text: str, source: str) -> object:
    """Parse JSON strictly: no duplicate keys, no NaN/Infinity, bounded nesting."""

    def pairs(items):
        seen = {}
        for key, value in items:
            if key in seen:
                raise InputError(source, f"key {key!r}", "each key once in an object", key)
            seen[key] = value
        return seen

    def constant(name):
        raise InputError(source, "", "finite JSON numbers", name)

    if "\x00" in text:
        raise InputError(source, "", "JSON text (no NUL bytes)")
    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except RecursionError:
        raise InputError(source, "", f"at most {MAX_DEPTH} levels of nesting") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of too many digits
        raise InputError(source, "", "valid JSON", str(exc).splitlines()[0]) from None


# ----------------------------------------------------------------------------- stdin

STDIN = "-"  # the input path that means standard input


def input_name(path: str | Path) -> str:
    """How messages name an input: its path, or "stdin" for ``-``."""
    return "stdin" if str(path) == STDIN else str(path)


class _StdinCache:
    """What was read of standard input so far: a process reads its stdin once (a new
    stdin object, as a test installs, starts afresh)."""

    stream: object = None
    data = bytearray()


def _stdin(limit: int) -> bytes:
    """The first ``limit`` bytes of standard input (fewer at its end), read once."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is not _StdinCache.stream:
        _StdinCache.stream, _StdinCache.data = stream, bytearray()
    data = _StdinCache.data
    while stream is not None and len(data) < limit:
        chunk = stream.read(limit - len(data))
        if not chunk:
            break
        data.extend(chunk)
    return bytes(data[:limit])
