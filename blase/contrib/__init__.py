"""Plugins shipped with Blase, written against the public plugin API only.

This module holds their manifests and imports nothing heavy: the entry points of Blase's own
``pyproject.toml`` (group ``blase.plugins``) name them, so ``blase plugins`` lists them
without importing their code or the libraries they need.

- ``excel`` (source): Excel and OpenDocument sheets (``.xlsx``, ``.xlsm``, ``.xlsb``, ``.xls``,
  ``.ods``) read with python-calamine; ``pip install 'blase[excel]'``.
- ``mmd`` (drift_test): the maximum mean discrepancy between the reference and the new
  values, with a seeded permutation p-value; numeric and categorical columns; numpy only.
"""

from blase.plugins import Plugin

__all__ = ["excel", "mmd"]

excel = Plugin(
    name="excel",
    kind="source",
    target="blase.contrib._excel:ExcelReader",
    version="1.0",
    description="Excel and OpenDocument sheets (.xlsx .xlsm .xlsb .xls .ods), read with python-calamine",
    requires=("python_calamine",),
    extra="excel",
    suffixes=(".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"),
)

mmd = Plugin(
    name="mmd",
    kind="drift_test",
    target="blase.contrib._mmd:MMDTest",
    version="1.0",
    description="maximum mean discrepancy with a seeded permutation p-value (numeric and categorical)",
    requires=("numpy",),
)
