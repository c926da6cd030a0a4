"""Update: retrain a deployed model on new data, evaluated against the current one first.

::

    from blase.update import Update

    result = Update("churn").run("data/march.csv", mode="finetune", replay=0.2, promote_if_better=True)
    result.candidate_version, result.promoted, result.reasons

See :mod:`blase.update._update` for the steps; ``update:`` in ``blase.yaml``
(:class:`~blase.config._models.UpdateConfig`) holds the defaults: mode, replay, epochs,
margin, tolerance and holdout. ``blase rollback NAME`` undoes a promotion.
"""

from __future__ import annotations

from blase.update._update import Update, UpdateError, UpdateResult

__all__ = ["Update", "UpdateError", "UpdateResult"]
