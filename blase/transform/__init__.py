"""Transform: standard operations and user functions, fitted out-of-core, saved as JSON.

>>> from blase.transform import Transform, Impute, Scale, OneHot
>>> t = Transform([Impute(strategy="median"), Scale(), OneHot(max_categories=20)], exclude=["label"])
>>> result = t.run("data/extracted", "data/transformed", memory="1GB")   # doctest: +SKIP
>>> Transform.load("data/transformed/transform.json").apply(batch)       # doctest: +SKIP

Every operation follows one contract (:class:`Operation`, scikit-learn style): ``__init__``
stores parameters, fitting learns attributes ending in ``_`` and returns ``self``, the
learned state is JSON. Check your own operations with :func:`blase.testing.check_operation`.
"""

from __future__ import annotations

from blase.transform._base import NotFittedError, Operation, SQLStage, query_batch
from blase.transform._encode import HashEncode, OneHot, Ordinal, is_other
from blase.transform._numeric import Clip, Impute, Log1p, Scale
from blase.transform._ops import (
    DEFAULT_PARTS,
    Cast,
    DatetimeParts,
    Drop,
    Filter,
    Rename,
    Select,
    SQLExpr,
    varying_parts,
)
from blase.transform._pipeline import (
    OPERATIONS,
    STATE_FILE,
    ApplyReport,
    Transform,
    from_step_config,
)
from blase.transform._plugin import build_plugin_operation
from blase.transform._user import UserFunction, load_reference, transform_function

__all__ = [
    "DEFAULT_PARTS",
    "OPERATIONS",
    "STATE_FILE",
    "ApplyReport",
    "Cast",
    "Clip",
    "DatetimeParts",
    "Drop",
    "Filter",
    "HashEncode",
    "Impute",
    "Log1p",
    "NotFittedError",
    "OneHot",
    "Operation",
    "Ordinal",
    "Rename",
    "SQLExpr",
    "SQLStage",
    "Scale",
    "Select",
    "Transform",
    "UserFunction",
    "build_plugin_operation",
    "from_step_config",
    "is_other",
    "load_reference",
    "query_batch",
    "transform_function",
    "varying_parts",
]
