"""The ``blase`` command line: a thin Typer layer over the Python API.

Heavy imports (duckdb, torch, pydantic models) happen inside the commands, so that
``blase --help`` stays instant. A :class:`~blase.errors.BlaseError` prints as one message and
exits 1; ``--debug`` (or ``BLASE_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``blase`` console script."""
    from blase.cli._app import app
    from blase.cli._common import print_error as _print_error
    from blase.errors import BlaseError

    args = _debug_first(list(sys.argv[1:] if argv is None else argv))
    if hasattr(signal, "SIGXFSZ") and threading.current_thread() is threading.main_thread():
        # over the file size limit a write raises EFBIG (a message naming the file) instead of
        # the signal killing the process; CPython does this too, an embedding host may not
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    debug = "--debug" in args or os.environ.get("BLASE_DEBUG", "") not in ("", "0")
    try:
        app(args=args, prog_name="blase")
    except SystemExit as exc:
        raise exc
    except BlaseError as exc:
        if debug:
            raise
        _print_error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        if debug:
            raise
        _print_error("interrupted")
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        _print_error(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "  hint: this is a bug in Blase; rerun with --debug for the traceback and report it"
        )
        sys.exit(2)


def _debug_first(args: list[str]) -> list[str]:
    """Move ``--debug`` to the front, so ``blase runs --debug`` works like ``blase --debug runs``.

    ``--debug`` is an option of the root command; Click rejects it after a subcommand. Arguments
    after ``--`` are left alone.
    """
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args
    rest = [a for a in args[:end] if a != "--debug"] + args[end:]
    return ["--debug", *rest]
