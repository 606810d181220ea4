"""The `rtgen-opt` command line (Typer). Commands only parse, call the library and render.

Exit codes: 0 success, 1 a check failed, 2 bad input (one message naming the file, the
field and what was expected; never a traceback), 70 an internal error (one line saying how
to report it; ``--debug`` shows the traceback), 130 interrupted.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Annotated, Optional

import typer

from rtgen_opt import __version__, limits
from rtgen_opt.cli.common import app

# Each command module registers its commands on import; the order here is the order of
# --help (the data flow: task set, policies, optimum, gap, check, then the tools).
# isort: off
from rtgen_opt.cli import taskset, simulate, solve, gap, check, replay, sweep  # noqa: F401,E402
from rtgen_opt.cli import verify_bound, schema  # noqa: F401,E402
from rtgen_opt.cli import scenarios, db  # noqa: F401,E402
# isort: on
from rtgen_opt.errors import InputError, SolverCrash, Terminated, printable


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", help="On an internal error, show the Python traceback.")] = False,
    max_memory: Annotated[Optional[str], typer.Option(
        "--max-memory", metavar="SIZE", help="Refuse task sets estimated to need more "
        "memory than this, e.g. 16GiB (default: half the physical memory, at most 8GiB; also "
        f"{limits.MAX_MEMORY_ENV}).")] = None,
) -> None:
    del debug  # read by main() from the command line: it matters when parsing failed too
    limits.set_max_memory(None if max_memory is None
                          else limits.parse_size(max_memory, "--max-memory"))
    if version:
        typer.echo(f"rtgen-opt {__version__}")
        raise typer.Exit()


REPORT_HINT = ("a bug in rtgen-opt: please report it to the maintainers with the command "
               "line and the output of the same command with --debug")


def main() -> None:
    """Console-script entry point; every way a command can end maps to an exit code.

    0/1/3 come from the commands; 2: bad input, one line on stderr (usage errors, our
    ``InputError``, a task set too large for memory); 70: an internal error, one line and
    how to report it (``--debug`` shows the traceback); 130: interrupted (Ctrl-C).
    """
    # the click that typer runs on (typer >= 0.20 vendors its own copy)
    click = sys.modules[typer.BadParameter.__module__]
    no_args = getattr(click, "NoArgsIsHelpError", ())
    debug = "--debug" in sys.argv[1:]
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    try:
        command = typer.main.get_command(app)
        _word_metavars(command)
        code = command(prog_name="rtgen-opt", standalone_mode=False)
    except InputError as exc:
        _fail(2, f"error: {exc}")
    except no_args as exc:  # `rtgen-opt db`: the help is the answer
        print(exc.ctx.get_help() if exc.ctx else str(exc), file=sys.stderr)
        sys.exit(2)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "rtgen-opt"
        _fail(2, f"error: {printable(exc.format_message(), 300)} (see {command} --help)")
    except click.ClickException as exc:
        _fail(2, f"error: {printable(exc.format_message(), 300)}")
    except (KeyboardInterrupt, typer.Abort):
        _fail(130, "interrupted")
    except MemoryError:
        _fail(2, "error: out of memory: the inputs (scenario, database, horizon) need more "
              "than this machine has, though --max-memory allowed them; shorten --horizon "
              "or coarsen granularity, and set --max-memory to what the machine can give "
              "so the size check refuses such inputs before building", debug)
    except SolverCrash as exc:
        _fail(70, f"error: {exc}", debug)
    except BrokenPipeError:  # `rtgen-opt ... | head`
        sys.stderr.close()
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the last resort: never a raw traceback
        kind = type(exc).__name__
        _fail(70, f"internal error ({kind}: {printable(str(exc), 120)}); {REPORT_HINT}", debug)
    sys.exit(code if isinstance(code, int) else 0)


def _word_metavars(command) -> None:
    """--help shows words, never Python types: every option without a metavar of its own
    gets one (``--engine ENGINE``, ``--workers N``), arguments drop Typer's ``<str>`` and
    the braces around required ones in the usage line (``SCENARIO``, not ``{SCENARIO}``)."""
    for sub in getattr(command, "commands", {}).values():
        _word_metavars(sub)
    for param in getattr(command, "params", ()):
        if isinstance(param, typer.core.TyperArgument):
            param.display_type_rich = lambda ctx: None
            if param.required and param.nargs == 1:
                param._usage_display_name = lambda p=param: p.display_name_raw
            continue
        if param.metavar is not None or getattr(param, "is_flag", False):
            continue
        kind = param.bare_type() if hasattr(param, "bare_type") else ""
        words = {"int": "N", "float": "X"}
        param.metavar = words.get(kind, param.name.upper().rstrip("_"))


def _terminated(signum, frame) -> None:
    """SIGTERM: leave through SystemExit, so that every `finally` runs (solver process
    groups killed, temporary files removed). The MILP workers' groups are killed first,
    here: whatever the unwinding meets, no solver process runs on after this one."""
    worker = sys.modules.get("rtgen_opt.formulations.milp.worker")
    if worker is not None:
        worker.kill_live_workers()
    print("rtgen-opt: terminated", file=sys.stderr)
    raise Terminated(128 + signum)


def _fail(code: int, message: str, debug: bool = False) -> None:
    if debug:
        import traceback

        traceback.print_exc()
    print(f"rtgen-opt: {message}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
