"""One ONNX graph for an ensemble: the members' own exports side by side, then their
weighted average, computed as :func:`blase.model._ensemble.blend_scores` computes it.

Blase's ONNX contract: input ``features`` (float32 ``[batch, n_features]``), first output the
model's scores. Each member's graph is renamed with a prefix (``m0_``, ``m1_``...), brought to
the newest default-domain opset among them (ONNX's version converter), fed ``features``
through an ``Identity``, and its scores reshaped to ``[n]`` (binary, regression) or
``[n, classes]``. Then: regression ``sum w z``; binary ``log(max(sum w sigmoid(z), tiny)) -
log(max(sum w sigmoid(-z), tiny))``; multiclass ``log(max(sum w softmax(z), tiny))``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blase.model._errors import ExportUnsupported

__all__ = ["join_members"]

_TINY = 1e-30


def _default_opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def join_members(files: list[Path], weights: list[float], task: str, path: Path) -> None:
    """Write to ``path`` the graph averaging the ONNX models in ``files`` with ``weights``."""
    import onnx
    from onnx import TensorProto, compose, helper, version_converter

    models = [onnx.load(str(f)) for f in files]
    target = max(13, *(_default_opset(m) for m in models))
    nodes: list[Any] = []
    initializers: list[Any] = []
    functions: list[Any] = []
    opsets: dict[str, int] = {"": target}
    outputs = []
    classes: int | None = None
    for i, model in enumerate(models):
        if _default_opset(model) not in (0, target):
            try:
                model = version_converter.convert_version(model, target)
            except Exception as exc:  # the converter has no adapter for some operator
                raise ExportUnsupported(
                    f"cannot bring the ensemble's member {files[i].stem} to ONNX opset {target} "
                    f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
                    hint="the package keeps the ensemble in its own format, which `blase predict` runs",
                ) from exc
        model = compose.add_prefix(model, f"m{i}_")
        graph = model.graph
        nodes.append(helper.make_node("Identity", ["features"], [graph.input[0].name]))
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
        functions.extend(model.functions)
        for o in model.opset_import:
            domain = "" if o.domain == "ai.onnx" else o.domain
            opsets[domain] = max(opsets.get(domain, 0), o.version)
        out = graph.output[0]
        if task == "multiclass":
            dims = out.type.tensor_type.shape.dim
            if len(dims) == 2 and dims[1].HasField("dim_value"):
                classes = dims[1].dim_value
        outputs.append(out.name)

    def const(name: str, values: list[float] | list[int], kind: int = TensorProto.FLOAT,
              dims: list[int] | None = None) -> str:
        initializers.append(helper.make_tensor(name, kind, [] if dims is None else dims, values))
        return name

    flat = const("blend_flat", [-1] if task != "multiclass" else [-1, classes or -1], TensorProto.INT64,
                 [1] if task != "multiclass" else [2])
    if task == "multiclass" and classes is None:
        raise ExportUnsupported("the ensemble's members do not say how many classes their ONNX output has",
                                hint="the package keeps the ensemble in its own format, which `blase predict` runs")
    tiny = const("blend_tiny", [_TINY])
    weighted, against = [], []
    for i, out in enumerate(outputs):
        w = const(f"blend_w{i}", [weights[i]])
        z = f"blend_z{i}"
        nodes.append(helper.make_node("Reshape", [out, flat], [z]))
        if task == "regression":
            nodes.append(helper.make_node("Mul", [z, w], [f"blend_wz{i}"]))
            weighted.append(f"blend_wz{i}")
        elif task == "binary":
            nodes += [helper.make_node("Sigmoid", [z], [f"blend_p{i}"]),
                      helper.make_node("Neg", [z], [f"blend_nz{i}"]),
                      helper.make_node("Sigmoid", [f"blend_nz{i}"], [f"blend_q{i}"]),
                      helper.make_node("Mul", [f"blend_p{i}", w], [f"blend_wp{i}"]),
                      helper.make_node("Mul", [f"blend_q{i}", w], [f"blend_wq{i}"])]
            weighted.append(f"blend_wp{i}")
            against.append(f"blend_wq{i}")
        else:
            nodes += [helper.make_node("Softmax", [z], [f"blend_p{i}"], axis=1),
                      helper.make_node("Mul", [f"blend_p{i}", w], [f"blend_wp{i}"])]
            weighted.append(f"blend_wp{i}")
    if task == "regression":
        nodes.append(helper.make_node("Sum", weighted, ["scores"]))
    elif task == "binary":
        nodes += [helper.make_node("Sum", weighted, ["blend_yes"]), helper.make_node("Sum", against, ["blend_no"]),
                  helper.make_node("Max", ["blend_yes", tiny], ["blend_yes_c"]),
                  helper.make_node("Max", ["blend_no", tiny], ["blend_no_c"]),
                  helper.make_node("Log", ["blend_yes_c"], ["blend_log_yes"]),
                  helper.make_node("Log", ["blend_no_c"], ["blend_log_no"]),
                  helper.make_node("Sub", ["blend_log_yes", "blend_log_no"], ["scores"])]
    else:
        nodes += [helper.make_node("Sum", weighted, ["blend_p"]),
                  helper.make_node("Max", ["blend_p", tiny], ["blend_pc"]),
                  helper.make_node("Log", ["blend_pc"], ["scores"])]
    n_features = models[0].graph.input[0].type.tensor_type.shape.dim[1].dim_value or None
    graph = helper.make_graph(
        nodes, "blase_ensemble",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None] if task != "multiclass" else [None, classes])],
        initializers)
    joined = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
                               functions=functions)
    joined.ir_version = max(m.ir_version for m in models)
    try:
        onnx.checker.check_model(joined)
    except Exception as exc:
        raise ExportUnsupported(f"the joined ONNX graph of the ensemble is not valid ({exc})",
                                hint="the package keeps the ensemble in its own format, which `blase predict` runs") \
            from exc
    onnx.save(joined, str(path))
