"""The reference profile of a model: what its training data looked like, column by column.

``blase deploy`` writes it into the package as ``reference_profile.json``
(:data:`PROFILE_FILE`); ``blase monitor`` and ``blase update`` compare new data with it. It
sits below both, so a deploy needs nothing from the monitor. :func:`grouped_counts` is the
one DuckDB pass that bins data on a profile's keys (see :mod:`blase.profile._profile`).
"""

from __future__ import annotations

from blase.profile._profile import (
    MAX_CATEGORIES,
    NEW_KEY,
    PROFILE_FILE,
    PROFILE_VERSION,
    SAMPLE_SIZE,
    ColumnProfile,
    CurrentColumn,
    ReferenceProfile,
    column_kind,
    load_profile,
)
from blase.profile._scan import grouped_counts

__all__ = [
    "MAX_CATEGORIES",
    "NEW_KEY",
    "PROFILE_FILE",
    "PROFILE_VERSION",
    "SAMPLE_SIZE",
    "ColumnProfile",
    "CurrentColumn",
    "ReferenceProfile",
    "column_kind",
    "grouped_counts",
    "load_profile",
]
