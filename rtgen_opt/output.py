"""All-or-nothing output files: the one way the tool writes a file.

Every file the tool writes goes through here — CLI outputs, reports, solver models, the
sweep's table and its cache records. Paths are checked before any long computation
(``check_writable``); then each file is written to a temporary file in the target folder
and renamed over the target (``write_files``): a reader never sees half a file, a failure
leaves no temporary file behind, and several files (one trace per policy) appear all
together or not at all.

The rule, the same for every output:

* temporary files get unpredictable names (``tempfile.mkstemp``) and are created
  exclusively (``O_CREAT | O_EXCL``) in the target's folder: a planted file or link of
  that name makes the creation fail instead of being written through;
* a symbolic link at the target path is **replaced** by the new file, never followed: a
  link planted beside a victim file cannot make the tool overwrite the victim;
* modes are never widened: a replaced regular file keeps its permission bits, a new file
  gets ``0666`` minus the umask (what ``open`` would give);
* a target that is itself (not through a link) a device or a named pipe — ``/dev/null``,
  a FIFO — is written in place (renaming over it would replace it with a file), opened
  without following links and without creating anything;
* the path ``-`` is standard output: its content is prepared in a private temporary file
  like the others and copied to stdout once every file is in place (a library writing by
  path — a solver's model — writes the text form there: the temporary name ends in .txt).
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from rtgen_opt.errors import InputError

_TEMP_PREFIX = ".rtgen-opt-"
STDOUT = "-"  # the output path that means standard output


def check_writable(path: str, option: str = "") -> None:
    """Refuse, before any work, an output path that cannot be written: its folder is
    missing or read-only, or the path is a folder (a link at the path is fine: it will be
    replaced)."""
    source = option or path
    if path == STDOUT:
        return
    target = Path(path)
    try:
        if not path or "\x00" in path:
            raise InputError(source, "", "a file path", path)
        if target.is_dir() and not target.is_symlink():
            raise InputError(source, "", "a file path, not a folder", path)
        folder = target.parent if str(target.parent) else Path(".")
        if not folder.is_dir():
            raise InputError(source, "", f"a file in an existing folder ({folder} does not "
                             "exist)", path)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(source, "", f"a file in a folder you can write ({folder} is "
                             "not writable)", path)
        mode = _lmode(path)
        if mode is not None and stat.S_ISREG(mode) and not os.access(target, os.W_OK):
            raise InputError(source, "", "a file you can overwrite", path)
    except OSError as exc:  # a name too long, ...
        raise InputError(source, "", "a writable file path", exc.strerror or str(exc)) \
            from None


def write_files(files: dict[str, str | bytes]) -> None:
    """Write every file, or none: every target is checked, all go to temporary files
    first, then each is renamed over its target. On any failure the temporary files are
    removed (a rename within one folder after these checks practically never fails)."""
    write_with({path: _content_writer(content) for path, content in files.items()})


def write_file(path: str, content: str | bytes) -> None:
    """Write one file atomically (see ``write_files``)."""
    write_files({path: content})


def write_with(writers: dict[str, Callable[[str], None]]) -> None:
    """As ``write_files``, for content a library writes itself to a path it is given
    (a solver's model, a Parquet table): ``writer(temp_path)`` fills the temporary file
    (created empty and private beforehand; the writer opens it by that name)."""
    for path in writers:
        check_writable(path)
    temps: list[tuple[str, str]] = []
    path = ""
    try:
        special = {p: w for p, w in writers.items() if p != STDOUT and _is_special(p)}
        for path, writer in writers.items():
            if path not in special:
                temp = _new_temp(path)
                temps.append((temp, path))
                writer(temp)
                if path != STDOUT:
                    _set_mode(temp, path)
        for path, writer in special.items():
            _write_in_place(path, writer)
        for temp, path in temps:
            if path == STDOUT:
                _copy_to_stdout(temp)
            else:
                os.replace(temp, path)  # replaces a link at `path`, never follows it
    except BrokenPipeError:  # `... --schedule-out - | head`: the reader left
        raise
    except OSError as exc:
        raise InputError(path, "", "a writable file path", exc.strerror or str(exc)) \
            from None
    finally:
        for temp, _ in temps:
            if os.path.lexists(temp):
                os.unlink(temp)


def _content_writer(content: str | bytes) -> Callable[[str], None]:
    data = content.encode("utf-8") if isinstance(content, str) else content

    def write(temp: str) -> None:
        fd = os.open(temp, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    return write


def _lmode(path: str) -> int | None:
    """The mode of what is at ``path`` itself (a link is a link), None when nothing."""
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return None


def _is_special(path: str) -> bool:
    """A device or a pipe at the path itself (not reached through a link)."""
    mode = _lmode(path)
    return mode is not None and (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)
                                 or stat.S_ISBLK(mode))


def _write_in_place(path: str, writer: Callable[[str], None]) -> None:
    """A device or pipe found at the path itself: the writer opens it (``_content_writer``
    with ``O_NOFOLLOW`` and without ``O_CREAT``)."""
    writer(path)


def _copy_to_stdout(temp: str) -> None:
    """The prepared content of ``-`` onto stdout, after what was printed before it."""
    sys.stdout.flush()
    with open(temp, "rb") as f:
        target = getattr(sys.stdout, "buffer", None)
        if target is None:  # a text-only stdout (a test's capture)
            sys.stdout.write(f.read().decode("utf-8", errors="replace"))
        else:
            shutil.copyfileobj(f, target)
    sys.stdout.flush()


def _new_temp(path: str) -> str:
    """An empty private file with an unpredictable name, created exclusively beside
    ``path``, with its suffix (a writer may choose its format by it: ``.pbtxt``); for
    stdout (``-``), in the system's temporary folder, ending in .txt (the text form)."""
    if path == STDOUT:
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=".txt")
        os.close(fd)
        return temp
    folder = os.path.dirname(os.path.abspath(path))
    suffix = Path(path).suffix if len(Path(path).suffix) <= 16 else ""
    fd, temp = tempfile.mkstemp(dir=folder, prefix=_TEMP_PREFIX, suffix=suffix)
    os.close(fd)
    return temp


def _set_mode(temp: str, path: str) -> None:
    """The permission bits the target will have: those of the regular file it replaces,
    else ``0666`` minus the umask. Never wider (mkstemp made the temp 0600)."""
    mode = _lmode(path)
    if mode is not None and stat.S_ISREG(mode):
        bits = stat.S_IMODE(mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        bits = 0o666 & ~umask
    fd = os.open(temp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        os.fchmod(fd, bits)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- inert text

# A spreadsheet evaluates a CSV cell that starts with one of these (=HYPERLINK(...), +, -,
# @, and tab or carriage return, which some programs strip before evaluating).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A CSV cell a spreadsheet shows as text: a text cell that starts with ``= + - @``,
    tab or CR gets a leading ``'`` (and one that starts with ``'`` another, so that
    ``csv_text`` reads every cell back exactly). Numbers — and texts that are numbers,
    like ``-2`` — stay as they are."""
    if not isinstance(value, str) or not value.startswith((*_FORMULA_START, "'")):
        return value
    if _is_number(value):
        return value
    return "'" + value


def csv_text(cell: str) -> str:
    """The text ``csv_cell`` wrote (the inverse: one leading ``'`` removed)."""
    if cell.startswith("'") and cell[1:].startswith((*_FORMULA_START, "'")):
        return cell[1:]
    return cell


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and text.lower().lstrip("+-") not in ("inf", "infinity", "nan")
