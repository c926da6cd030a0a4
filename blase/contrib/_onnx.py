"""ONNX export for the reference model plugins: scores exactly as their ``predict`` gives them.

Blase's ONNX contract (what ``blase serve --onnx`` and ``blase predict --onnx`` run): one input
``features``, float32 ``[batch, n_features]``, and as first output the model's scores. The
converters give something close but not that: onnxmltools turns a booster into a classifier
whose output is probabilities (a logistic or softmax over the margins) next to a label, and a
Keras network on the standardised label gives scores before Blase's label scale. The helpers
here rewrite the converted graph into the contract.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from blase.model import ExportUnsupported

__all__ = ["export_trees", "require_converter", "scale_output"]

#: ONNX's tree ensemble operators: their ``post_transform`` maps margins to probabilities.
_TREE_OPS = {"TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble"}


def require_converter(module: str, *, what: str, extra: str) -> None:
    """Raise :class:`ExportUnsupported` naming the extra when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ExportUnsupported(
            f"ONNX export of {what} needs {module}, which is not installed",
            hint=f"pip install 'blase[{extra}]' (or `pip install {module}`), then deploy again; "
                 "without it the package runs the model in its own format",
        )


def export_trees(booster: Any, path: Path, n_features: int, *, task: str, library: str,
                 **convert_options: Any) -> None:
    """Convert ``booster`` with onnxmltools' ``convert_<library>`` and write it to ``path`` as
    margins shaped as ``predict`` gives them for ``task`` (``binary``, ``multiclass`` or
    ``regression``); ``convert_options`` go to the converter.

    Raises
    ------
    ExportUnsupported
        onnxmltools is missing (naming the ``onnx`` extra), or cannot convert this model.
    """
    require_converter("onnxmltools", what=f"a {library} model", extra="onnx")
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    try:
        model = getattr(onnxmltools, f"convert_{library}")(
            booster, initial_types=[("features", FloatTensorType([None, n_features]))], **convert_options)
    except Exception as exc:  # any converter failure means: no ONNX for this model
        raise ExportUnsupported(
            f"onnxmltools {onnxmltools.__version__} cannot convert this {library} model "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            hint="the package keeps the model in its own format, which `blase predict` runs",
        ) from exc
    _margins(model, task=task)
    Path(path).write_bytes(model.SerializeToString())


def _margins(model: Any, *, task: str) -> None:
    """Rewrite a converted tree ensemble so that its only output, ``scores``, holds what
    ``predict`` gives: margins (``post_transform NONE``: no logistic or softmax); for binary
    the positive column of the classifier's ``[-m, m]``, for regression ``[n]``, not ``[n, 1]``."""
    from onnx import TensorProto, helper

    graph = model.graph
    for node in graph.node:
        if node.op_type in _TREE_OPS:
            for attribute in node.attribute:
                if attribute.name == "post_transform":
                    attribute.s = b"NONE"
    source = "probabilities" if any(o.name == "probabilities" for o in graph.output) else graph.output[0].name
    if task == "binary":
        graph.initializer.append(helper.make_tensor("positive_column", TensorProto.INT64, [], [1]))
        graph.node.append(helper.make_node("Gather", [source, "positive_column"], ["scores"], axis=1))
    elif task == "regression":
        graph.initializer.append(helper.make_tensor("one_column", TensorProto.INT64, [1], [-1]))
        graph.node.append(helper.make_node("Reshape", [source, "one_column"], ["scores"]))
    else:
        graph.node.append(helper.make_node("Identity", [source], ["scores"]))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("scores", TensorProto.FLOAT,
                                                      [None, None] if task == "multiclass" else [None]))
    if not any(o.domain in ("", "ai.onnx") for o in model.opset_import):  # Gather, Reshape, Identity
        model.opset_import.append(helper.make_opsetid("", 13))


def scale_output(path: Path, mean: float, std: float) -> None:
    """Append ``scores * std + mean`` to the ONNX model at ``path`` (a network trained on the
    standardised label gives the label's units, as its ``predict`` does)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    raw = graph.output[0].name
    graph.initializer.extend([
        helper.make_tensor("label_std", TensorProto.FLOAT, [], [np.float32(std)]),
        helper.make_tensor("label_mean", TensorProto.FLOAT, [], [np.float32(mean)]),
    ])
    graph.node.extend([helper.make_node("Mul", [raw, "label_std"], ["scores_scaled"]),
                       helper.make_node("Add", ["scores_scaled", "label_mean"], ["scores"])])
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("scores", TensorProto.FLOAT, None))
    onnx.save(model, str(path))
