"""The sweep's result cache: one JSON record per run, named by the run's content key.

The cache folder is **not trusted** (SECURITY.md): anything in it may have been written by
someone else, or swapped. So

* a record carries its key and the cache format; one whose key is not the one it is
  looked up under (a record copied or renamed onto another run's name), whose format
  differs, or that does not parse, is ignored — the run is computed again and the record
  replaced — and counted (``ignored``): the sweep says so;
* a folder that other users can write (group or other write permission, or owned by
  someone else) is refused unless the user says they share it on purpose (``shared``);
* records are read through the strict, bounded reader and written through the one atomic
  writer (``rtgen_opt.output``: unpredictable temporary names, links replaced).

What the key covers is ``run.run_key``'s business: the scenario after overrides, the
latency database's rows, the command and its options, the tool's version, the source of
the rtgen_opt package (and ``formulations``) and the source file of each user policy —
but **not** the modules a user's policy imports, nor other installed packages (OR-Tools,
PuLP, NumPy): after changing those, run with ``--no-cache`` or another ``--cache``.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from rtgen_opt.errors import InputError
from rtgen_opt.output import write_file
from rtgen_opt.safeload import load_json, read_limited

CACHE_FORMAT = 2  # bump when the cached record's layout changes (2: records carry their key)
MAX_RECORD_BYTES = 64 * 2**20


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rtgen-opt" / "sweep"


class ResultCache:
    """One JSON file per run, named by its key, written whole. ``None`` as folder: a cache
    that holds nothing (``--no-cache``). ``shared``: accept a folder others can write."""

    def __init__(self, folder: Path | None, shared: bool = False):
        self.folder = folder
        self.ignored = 0  # records found but not trusted (another key, format, unreadable)
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise InputError(str(folder), "", "a folder the cache can be written to",
                                 str(exc)) from None
            if not shared:
                refuse_shared(folder)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> list[dict] | None:
        """The rows cached under ``key``, or None: absent, or ignored (and counted)."""
        if self.folder is None:
            return None
        path = self._path(key)
        if not os.path.lexists(path):
            return None
        try:
            record = load_json(read_limited(path, str(path), "a cache record",
                                            MAX_RECORD_BYTES), str(path))
        except InputError:
            record = None  # unreadable, truncated, too big, not a file: compute it again
        if not isinstance(record, dict) or record.get("format") != CACHE_FORMAT \
                or record.get("key") != key or not isinstance(record.get("rows"), list) \
                or not all(isinstance(r, dict) for r in record["rows"]):
            self.ignored += 1
            return None
        return record["rows"]

    def put(self, key: str, run, rows: list[dict]) -> None:
        if self.folder is None:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(exist_ok=True, mode=0o700)
        except OSError as exc:
            raise InputError(str(path.parent), "", "a folder the cache can be written to",
                             str(exc)) from None
        record = {"format": CACHE_FORMAT, "key": key, "command": run.command.name,
                  "scenario": run.scenario, "overrides": list(run.overrides), "rows": rows}
        write_file(str(path), json.dumps(record))


def refuse_shared(folder: Path) -> None:
    """Bad input: a cache folder (or one of its shard folders) others can write — a
    record planted there would be served as a result (a proven "no" turned into "yes")."""
    for path in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid() \
                or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise InputError("--cache", "", f"a cache folder only you can write ({path} "
                             f"is {_who(info)}); chmod go-w it, choose another --cache, or "
                             "--shared-cache if you trust everyone who can write it",
                             str(folder))


def _who(info: os.stat_result) -> str:
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link"
    if info.st_uid != os.getuid():
        return f"owned by user {info.st_uid}"
    return f"writable by others (mode {stat.S_IMODE(info.st_mode):o})"
