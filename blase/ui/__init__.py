"""The web app of ``blase ui``: runs across projects, a run, compare 2-10 runs, models, the assistant.

A local server (the standard library's ``http.server``) over the same files the CLI reads;
:class:`Dashboard` holds the logic and returns JSON-able dicts, :func:`serve` runs the server::

    from blase.ui import Dashboard, serve

    serve(Dashboard(["proj_a", "proj_b"], read_only=True), port=8765)
"""

from blase.ui._api import Dashboard, RunsQuery, UIError
from blase.ui._registry import RegistryError, UserRegistry, remember_project, user_dir
from blase.ui._server import make_server, serve

__all__ = [
    "Dashboard",
    "RegistryError",
    "RunsQuery",
    "UIError",
    "UserRegistry",
    "make_server",
    "remember_project",
    "serve",
    "user_dir",
]
