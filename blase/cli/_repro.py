"""Reproducibility commands: inspect --lineage, trace, reproduce, diff, restore, gc, pin ([4/7]).

Commands register themselves on :data:`blase.cli._app.app`; heavy imports stay inside them.
"""

from __future__ import annotations

from blase.cli._app import app  # noqa: F401
