"""Small real datasets that ship with Blase, so examples and the demo run offline."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["dataset_path"]

_DATASETS = {"penguins": "penguins.csv", "orders": "orders.ndjson", "cartpole": "cartpole.csv"}


def dataset_path(name: str) -> Path:
    """Path of a bundled dataset file (``"penguins"``: 344 rows, 3 species, with NAs;
    ``"orders"``: 3,000 generated nested JSON orders; ``"cartpole"``: CartPole-v1 observations
    and the actions of a balancing controller)."""
    if name not in _DATASETS:
        from blase.errors import BlaseError

        raise BlaseError(f"no bundled dataset named {name!r}", hint=f"choose one of {sorted(_DATASETS)}")
    return Path(str(resources.files(__name__).joinpath(_DATASETS[name])))
