"""One function per command, returning its JSON-able result; the CLI and the sweep both
call these, so the same command gives the same answer either way."""
