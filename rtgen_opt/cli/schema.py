"""`rtgen-opt schema`: the JSON Schema of a file the tool reads."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from rtgen_opt.cli.common import QuietOpt, app
from rtgen_opt.errors import InputError

KINDS = ("scenario", "sweep", "database")


@app.command()
def schema(
    kind: Annotated[str, typer.Argument(metavar="scenario|sweep|database",
                                        help="Which file's schema.")],
    quiet: QuietOpt = False,
) -> None:
    """Print the JSON Schema (2020-12) of a scenario file, a sweep file or a latency
    database row, for editor completion and validation outside the tool.

    Example: rtgen-opt schema scenario > scenario.schema.json, then start a scenario file
    with the line  # yaml-language-server: $schema=./scenario.schema.json
    """
    from rtgen_opt.model.schema import database_schema, scenario_schema
    from rtgen_opt.sweep.schema import sweep_schema

    if kind not in KINDS:
        raise InputError("schema", "KIND", " or ".join(KINDS), kind)
    build = {"scenario": scenario_schema, "sweep": sweep_schema, "database": database_schema}
    if not quiet:  # --quiet: only whether the schema builds (the exit code)
        typer.echo(json.dumps(build[kind](), indent=2, ensure_ascii=False))
