"""The Blase assistant: a LangGraph agent that drives :mod:`blase.tools`.

Installed as ``blase.agent``. The graph, the autonomy gate and the LLM providers arrive with
the assistant issue ([6/7]); this package exists now so the layout and the import path are
fixed from the start. Nothing in :mod:`blase` imports it.
"""

__all__: list[str] = []
