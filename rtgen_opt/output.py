"""All-or-nothing output files.

Every file the CLI writes goes through here: paths are checked before any long computation
(``check_writable``), and files are written to a temporary file in the target folder, then
renamed over the target (``write_files``) — a reader never sees half a file, a failure
leaves no temporary file behind, and several files (one trace per policy) appear all
together or not at all. A symbolic link is followed (the file it points to is replaced,
the link kept); a target that is not a regular file (``/dev/stdout``, a named pipe) is
written in place, since renaming over it would replace the device with a file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from rtgen_opt.errors import InputError

_TEMP_PREFIX = ".rtgen-opt-"


def check_writable(path: str, option: str = "") -> None:
    """Refuse, before any work, an output path that cannot be written: its folder is
    missing or read-only, or the path is a folder."""
    source = option or path
    target = Path(path)
    try:
        if not path or "\x00" in path:
            raise InputError(source, "", "a file path", path)
        if target.is_dir():
            raise InputError(source, "", "a file path, not a folder", path)
        folder = target.parent if str(target.parent) else Path(".")
        if not folder.is_dir():
            raise InputError(source, "", f"a file in an existing folder ({folder} does not "
                             "exist)", path)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(source, "", f"a file in a folder you can write ({folder} is "
                             "not writable)", path)
        if target.exists() and not os.access(target, os.W_OK):
            raise InputError(source, "", "a file you can overwrite", path)
    except OSError as exc:  # a name too long, ...
        raise InputError(source, "", "a writable file path", exc.strerror or str(exc)) \
            from None


def write_files(files: dict[str, str | bytes]) -> None:
    """Write every file, or none: every target is checked, all go to temporary files
    first, then each is renamed over its target. On any failure the temporary files are
    removed (a rename within one folder after these checks practically never fails)."""
    for path in files:  # a folder in the way would fail the rename of that one only
        check_writable(path)
    temps: list[tuple[str, str]] = []
    try:
        special = {p: c for p, c in files.items() if _is_special(p)}
        for path, content in files.items():
            if path not in special:
                real = os.path.realpath(path)  # keep a symbolic link, replace its target
                temps.append((_write_temp(real, content), real))
        for path, content in special.items():
            with open(path, "wb") as f:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
        for temp, path in temps:
            os.replace(temp, path)
    except OSError as exc:
        raise InputError(path, "", "a writable file path", exc.strerror or str(exc)) \
            from None
    finally:
        for temp, _ in temps:
            if os.path.exists(temp):
                os.unlink(temp)


def _is_special(path: str) -> bool:
    """An existing target that is not a regular file (a device, a pipe)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False  # does not exist yet


def write_file(path: str, content: str | bytes) -> None:
    """Write one file atomically (see ``write_files``)."""
    write_files({path: content})


def _write_temp(path: str, content: str | bytes) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(dir=folder, prefix=_TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp makes it private; a report is not
    except BaseException:
        os.unlink(temp)
        raise
    return temp
