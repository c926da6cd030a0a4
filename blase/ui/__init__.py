"""The web app of ``blase ui``: runs across projects, a run, a compare view, models.

A local server (the standard library's ``http.server``) over the same files the CLI reads;
:class:`Dashboard` holds the logic and returns JSON-able dicts, :func:`serve` runs the server::

    from blase.ui import Dashboard, serve

    serve(Dashboard(["proj_a", "proj_b"], read_only=True), port=8765)
"""

from blase.ui._api import Dashboard, RunsQuery, UIError
from blase.ui._server import make_server, serve

__all__ = ["Dashboard", "RunsQuery", "UIError", "make_server", "serve"]
