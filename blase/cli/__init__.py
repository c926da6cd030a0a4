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
    from blase.cli._common import root_options_first
    from blase.errors import BlaseError

    args = root_options_first(list(sys.argv[1:] if argv is None else argv))
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

