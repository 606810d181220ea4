"""The command line: a thin Typer layer that parses, calls the library, renders, exits."""

from rtgen_opt.cli.app import main

__all__ = ["main"]
