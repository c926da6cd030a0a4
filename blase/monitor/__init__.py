"""Monitor: does new data still fit a deployed model?

::

    from blase.monitor import Monitor

    result = Monitor("churn").check("data/new.csv")
    result.dataset_drift, result.drifted_columns, result.retrain, result.reasons

The reference is ``reference_profile.json`` in the model package (:class:`ReferenceProfile`,
saved by ``blase deploy``). Per-column tests follow Evidently's defaults (see
:mod:`blase.monitor._drift`); the statistics are in :mod:`blase.monitor._stats` and equal
scipy's on in-memory data. New data is read once, binned on the reference's fixed grid, so
its size does not change the memory used. Each check is a Track run of kind ``monitor``.
"""

from __future__ import annotations

from blase.errors import MonitorError
from blase.monitor._drift import (
    DISTANCE_THRESHOLD,
    NULL_SHIFT,
    P_THRESHOLD,
    SMALL_REFERENCE,
    ColumnDrift,
    column_drift,
)
from blase.monitor._embedding import embedding_drift, mmd_squared, permutation_mmd
from blase.monitor._monitor import Monitor, MonitorResult, primary_metric
from blase.monitor._plugin import KINDS as DRIFT_TEST_KINDS
from blase.monitor._plugin import (
    DriftOutcome,
    DriftSample,
    DriftTest,
    chosen_tests,
    outcome_problem,
)
from blase.monitor._report import monitor_history
from blase.monitor._stats import (
    chi_square_test,
    jensen_shannon,
    ks_test,
    psi,
    psi_counts,
    wasserstein_binned,
    wasserstein_norm,
    z_test,
)
from blase.profile import (
    PROFILE_FILE,
    ColumnProfile,
    CurrentColumn,
    ReferenceProfile,
    load_profile,
)

__all__ = [
    "DISTANCE_THRESHOLD",
    "DRIFT_TEST_KINDS",
    "NULL_SHIFT",
    "PROFILE_FILE",
    "P_THRESHOLD",
    "SMALL_REFERENCE",
    "ColumnDrift",
    "ColumnProfile",
    "CurrentColumn",
    "DriftOutcome",
    "DriftSample",
    "DriftTest",
    "Monitor",
    "MonitorError",
    "MonitorResult",
    "ReferenceProfile",
    "chi_square_test",
    "chosen_tests",
    "column_drift",
    "embedding_drift",
    "jensen_shannon",
    "ks_test",
    "load_profile",
    "mmd_squared",
    "monitor_history",
    "outcome_problem",
    "permutation_mmd",
    "primary_metric",
    "psi",
    "psi_counts",
    "wasserstein_binned",
    "wasserstein_norm",
    "z_test",
]
