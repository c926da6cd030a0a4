"""Schema suggestion: what each column is, and the transform that would suit it.

:func:`suggest_schema` reads a source once and proposes, per column, a kind (continuous,
discrete, categorical_low, categorical_high, boolean, datetime, text, identifier, constant),
statistics, and suggestions with a one-line reason each (impute, scale, encode, drop), plus
label candidates and warnings (identifiers, likely leakage, constant columns, outliers,
class imbalance). :meth:`SchemaReport.to_transform_config` turns the suggestions into valid
``transform:`` entries of ``blase.yaml``, and :func:`write_suggestions` writes them there.

Cost: exactly one full pass over the data. It is one DuckDB aggregate query that computes,
for every column at once, the row count, non-null count, approximate distinct count, min,
max, mean and standard deviation (a ``SUMMARIZE``-style scan; mean and standard deviation
from shifted sums, see :func:`blase.schema._profile._scan`). The expensive parts (quantiles, skew, outliers, top
values, mean text length, leakage, date parsing of text) run on a sample of about
``sample_rows`` rows: a big plain CSV is sampled by position before the pass (64 evenly
spaced byte ranges, ~1 % of the file, :mod:`blase._sample`); other sources keep a Bernoulli
sample in the same pass (rows whose hash falls under a threshold set from the row count,
which Parquet metadata gives exactly and a CSV's size estimates). A source whose size cannot
be estimated beforehand (e.g. a database table) gets a second, sampling pass (``USING SAMPLE
reservoir``).

Modules: ``_profile`` (the pass and the sample), ``_suggest`` (kinds, suggestions, leakage,
label candidates), ``_report`` (the report classes and the thresholds), ``_write`` (into
``blase.yaml``).
"""

from __future__ import annotations

from blase.schema._profile import suggest_schema
from blase.schema._report import LOW_CARDINALITY, ColumnReport, SchemaReport, Suggestion
from blase.schema._write import write_suggestions

__all__ = [
    "LOW_CARDINALITY",
    "ColumnReport",
    "SchemaReport",
    "Suggestion",
    "suggest_schema",
    "write_suggestions",
]
