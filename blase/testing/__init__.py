"""Conformance checks for plugin authors, in the spirit of scikit-learn's ``check_estimator``.

- :func:`check_operation`: the :class:`blase.transform.Operation` contract.
- :func:`check_plugin` / :func:`plugin_checks`: every rule of a plugin's kind, each a named
  check, so an author sees every broken rule at once (``blase plugin check NAME|PATH``).
"""

from blase.testing._operation import check_operation, sample_table
from blase.testing._plugin import CheckResult, check_plugin, plugin_checks

__all__ = ["CheckResult", "check_operation", "check_plugin", "plugin_checks", "sample_table"]
