"""Your own transform code: stateless batch functions and stateful operation classes.

A batch function takes a batch (a ``pyarrow.Table``, or a pandas ``DataFrame`` when its
first parameter is annotated so or it is registered with ``kind="pandas"``) and returns a
batch with the same rows. Name it in ``blase.yaml`` as ``scripts/transforms.py:func``, or
register it with :func:`transform_function` and pass it to :class:`UserFunction`.

A stateful transform is a subclass of :class:`~blase.transform.Operation`; run
:func:`blase.testing.check_operation` on it. Both are saved by reference (a project file
path or an importable ``module:name``) together with a hash of their code, so a saved
transform notices when the code changed since it was fitted.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

import pyarrow as pa

from blase._pyfile import exec_file
from blase.errors import TransformError
from blase.transform._base import (
    Operation,
    arrow_table,
    as_table,
    close_matches,
    schema_from_json,
    schema_to_json,
)

if TYPE_CHECKING:
    import duckdb

__all__ = ["UserFunction", "code_digest", "load_reference", "reference_of", "transform_function"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Functions registered with @transform_function, by name and by "module:qualname".
_REGISTRY: dict[str, Callable[..., Any]] = {}
_USER_MODULE_PREFIX = "blase_user_code"
#: Rows of the data a batch function sees at fit time to learn its output schema.
SAMPLE_ROWS = 1_000


# --------------------------------------------------------------------------- registration


def _kind_from_annotation(func: Callable[..., Any]) -> str | None:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    if not params or params[0].annotation is inspect.Parameter.empty:
        return None
    text = str(params[0].annotation)
    if "DataFrame" in text:
        return "pandas"
    if "Table" in text or "RecordBatch" in text:
        return "arrow"
    return None


@overload
def transform_function(func: F) -> F: ...
@overload
def transform_function(*, kind: str | None = None, name: str | None = None) -> Callable[[F], F]: ...


def transform_function(
    func: F | None = None, *, kind: str | None = None, name: str | None = None
) -> F | Callable[[F], F]:
    """Register a stateless batch function for :class:`UserFunction` (use as a decorator).

    Parameters
    ----------
    kind:
        ``"arrow"`` (the batch is a ``pyarrow.Table``) or ``"pandas"`` (a ``DataFrame``);
        default: from the first parameter's annotation, else ``"arrow"``.
    name:
        A short name to refer to it by (``UserFunction("my_name")``); default its
        ``__name__``. It is also registered as ``"module:qualname"``.
    """

    def register(f: F) -> F:
        k = kind or _kind_from_annotation(f) or "arrow"
        if k not in ("arrow", "pandas"):
            raise TransformError(f"transform_function: kind must be 'arrow' or 'pandas', not {k!r}")
        short = name or f.__name__
        f.__blase_transform__ = {"kind": k, "name": short}  # type: ignore[attr-defined]
        if short in _REGISTRY and _REGISTRY[short] is not f:
            logger.debug("transform function %r registered again; the latest wins", short)
        _REGISTRY[short] = f
        _REGISTRY[f"{f.__module__}:{f.__qualname__}"] = f
        return f

    return register(func) if func is not None else register


# --------------------------------------------------------------------------- references


def _load_file(path: Path, code_name: str | None = None) -> Any:
    resolved = path.resolve()
    key = hashlib.sha1(str(resolved).encode(), usedforsecurity=False).hexdigest()[:10]
    mod_name = f"{_USER_MODULE_PREFIX}.{resolved.stem}_{key}"
    stamp = resolved.stat().st_mtime_ns
    module = sys.modules.get(mod_name)
    if module is not None and getattr(module, "__blase_mtime__", None) == stamp:
        return module
    try:
        module = exec_file(resolved, mod_name)
    except Exception as exc:
        raise TransformError(
            f"{path}: importing it failed: {type(exc).__name__}: {exc}",
            hint="fix the error in the file (run `python {path}` to see the traceback)",
        ) from exc
    module.__blase_mtime__ = stamp  # type: ignore[attr-defined]
    # A location-free name for code hashes: the same script in the project and in a model
    # package (or a moved project) hashes the same.
    module.__blase_code_name__ = code_name or resolved.name  # type: ignore[attr-defined]
    module.__blase_path__ = str(resolved)  # type: ignore[attr-defined]
    return module


def _attr(module: Any, qualname: str, where: str) -> Any:
    obj = module
    for part in qualname.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            near = close_matches(qualname, names)
            raise TransformError(
                f"{where} has no {qualname!r}" + (f" (did you mean {', '.join(map(repr, near))}?)" if near else ""),
                hint="check the name after ':' in blase.yaml (call: path/to/file.py:function)",
            )
        obj = getattr(obj, part)
    return obj


def load_reference(ref: str, project_root: str | os.PathLike[str] | None = None) -> Any:
    """The object a reference names: ``"scripts/t.py:func"`` (a file, relative to
    ``project_root`` or the current folder), ``"package.module:func"``, or a name
    registered with :func:`transform_function`.

    With a ``project_root`` (a project, or a model package) the code must lie inside it: a
    file reference is relative and stays inside once symlinks are resolved, and a module
    reference names a module whose file is inside (or a registered function), so a saved
    transform can never name ``/elsewhere/evil.py:f`` or ``pyarrow.csv:write_csv``.
    """
    if ref in _REGISTRY:
        return _REGISTRY[ref]
    if ":" not in ref:
        near = close_matches(ref, [k for k in _REGISTRY if ":" not in k])
        raise TransformError(
            f"no transform function registered as {ref!r}" + (f" (did you mean {near}?)" if near else ""),
            hint="use 'path/to/file.py:function', 'module:function', or register it with @transform_function",
        )
    target, _, qualname = ref.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_absolute():
            path = Path(project_root or ".") / path
        if project_root is not None:
            _check_inside(path, Path(project_root), ref)
        if not path.is_file():
            raise TransformError(
                f"user transform file {target!r} not found (looked for {path})",
                hint="paths in blase.yaml are relative to the project folder, e.g. scripts/transforms.py",
            )
        return _attr(_load_file(path, Path(target).as_posix()), qualname, target)
    if project_root is not None:
        _check_module_inside(target, Path(project_root), ref)
    try:
        module = importlib.import_module(target)
    except ImportError as exc:
        raise TransformError(f"cannot import module {target!r} for {ref!r}: {exc}") from None
    return _attr(module, qualname, target)


def _outside(ref: str, root: Path) -> TransformError:
    return TransformError(
        f"user code {ref!r} is outside {root}: a transform only calls code of its own project "
        "(or model package)",
        hint="put the function in the project, e.g. scripts/transforms.py, and name it "
        "'scripts/transforms.py:function' in blase.yaml",
    )


def _check_inside(path: Path, root: Path, ref: str) -> None:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        raise _outside(ref, root) from None


def _check_module_inside(target: str, root: Path, ref: str) -> None:
    """A module reference is allowed when the module's file lies inside ``root``."""
    try:
        spec = importlib.util.find_spec(target)
    except (ImportError, ValueError):
        spec = None
    origin = getattr(spec, "origin", None)
    if not origin or not os.path.isabs(origin):
        raise _outside(ref, root)
    _check_inside(Path(origin), root, ref)


def reference_of(obj: Any, project_root: str | os.PathLike[str] | None = None) -> str:
    """A reference :func:`load_reference` turns back into ``obj``."""
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "")
    if "<" in qualname:
        raise TransformError(
            f"cannot save a reference to {qualname!r}: lambdas and nested functions cannot be reloaded",
            hint="define it at the top level of a file, e.g. scripts/transforms.py",
        )
    module_name = getattr(obj, "__module__", "") or ""
    module = sys.modules.get(module_name)
    path = getattr(module, "__blase_path__", None) or getattr(module, "__file__", None)
    if path and project_root is not None:
        try:
            rel = Path(path).resolve().relative_to(Path(project_root).resolve())
            return f"{rel.as_posix()}:{qualname}"
        except ValueError:
            pass
    if module_name.startswith(_USER_MODULE_PREFIX) and path:
        return f"{Path(path).as_posix()}:{qualname}"
    if module_name and module_name != "__main__":
        return f"{module_name}:{qualname}"
    info = getattr(obj, "__blase_transform__", None)
    if info and _REGISTRY.get(info["name"]) is obj:
        return str(info["name"])
    raise TransformError(
        f"cannot save a reference to {qualname!r} defined in __main__",
        hint="move it into a file of the project (scripts/transforms.py) or register it with "
        "@transform_function",
    )


def code_digest(obj: Any, project_root: str | os.PathLike[str] | None = None) -> str | None:
    """Content hash of ``obj``'s code (:func:`blase.hashing.code_hash`); None if unavailable."""
    try:
        from blase.hashing import code_hash
    except ImportError:  # pragma: no cover - hashing ships with blase
        return None
    try:
        return str(code_hash(obj, project_root=project_root).digest)
    except Exception as exc:  # the hash is a safety net, never a reason to fail a fit
        logger.warning("could not hash the code of %r: %s", obj, exc)
        return None


# --------------------------------------------------------------------------- the operation


def _to_table(result: Any, name: str) -> pa.Table:
    if isinstance(result, pa.Table):
        return result
    if isinstance(result, pa.RecordBatch):
        return pa.Table.from_batches([result])
    if type(result).__module__.startswith("pandas"):
        return pa.Table.from_pandas(result, preserve_index=False)
    raise TransformError(
        f"user function {name} returned {type(result).__name__}; it must return a pyarrow.Table "
        "or a pandas DataFrame",
    )


class UserFunction(Operation):
    """A stateless batch function as a transform step.

    Parameters
    ----------
    func:
        The function, a registered name, or a reference ``"scripts/transforms.py:func"``
        (relative to ``project_root``) or ``"module:func"``.
    project_root:
        The folder file references are relative to (the project); not saved.
    kind:
        ``"arrow"`` or ``"pandas"``; default: what :func:`transform_function` or the first
        parameter's annotation says, else ``"arrow"``.
    params:
        Keyword arguments passed to the function with each batch.

    Learned
    -------
    ``ref_`` (the saved reference), ``code_hash_`` (checked when a saved transform is
    loaded) and ``output_schema_`` (learned from the first rows; every batch is cast to it,
    so the output files share one schema).
    """

    op_name: ClassVar[str] = "call"

    def __init__(
        self,
        func: Callable[..., Any] | str,
        project_root: str | os.PathLike[str] | None = None,
        kind: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.func = func
        self.project_root = project_root
        self.kind = kind
        self.params = params

    @property
    def label(self) -> str:
        return f"call {self.func if isinstance(self.func, str) else getattr(self.func, '__name__', '?')}"

    @functools.cached_property
    def _callable(self) -> Callable[..., Any]:
        func = load_reference(self.func, self.project_root) if isinstance(self.func, str) else self.func
        if not callable(func):
            raise TransformError(f"{self.label}: {func!r} is not callable")
        return func

    def _kind(self) -> str:
        info = getattr(self._callable, "__blase_transform__", {})
        kind = self.kind or info.get("kind") or _kind_from_annotation(self._callable) or "arrow"
        if kind not in ("arrow", "pandas"):
            raise TransformError(f"{self.label}: kind must be 'arrow' or 'pandas', not {kind!r}")
        return kind

    def fit_sql(
        self,
        con: duckdb.DuckDBPyConnection,
        relation: str,
        schema: pa.Schema,
        *,
        exclude: Sequence[str] = (),
    ) -> UserFunction:
        sample = arrow_table(con, f"SELECT * FROM {relation} AS _u LIMIT {SAMPLE_ROWS}")
        return self._fit_sample(sample)

    def fit(self, data: Any, *, exclude: Sequence[str] = ()) -> UserFunction:
        return self._fit_sample(as_table(data).slice(0, SAMPLE_ROWS))

    def _fit_sample(self, sample: pa.Table) -> UserFunction:
        func = self._callable
        if isinstance(self.func, str):
            self.ref_: str | None = self.func
        else:
            try:
                self.ref_ = reference_of(func, self.project_root)
            except TransformError as exc:  # fine in memory; saving will fail with this message
                logger.debug("%s", exc.message)
                self.ref_ = None
        self.code_hash_ = code_digest(func, self.project_root)
        self.output_schema_ = schema_to_json(self._call(sample).schema)
        return self

    def _call(self, table: pa.Table) -> pa.Table:
        name = self.label
        batch: Any = table.to_pandas() if self._kind() == "pandas" else table
        try:
            result = self._callable(batch, **(self.params or {}))
        except TransformError:
            raise
        except Exception as exc:
            raise TransformError(
                f"{name} failed on a batch of {table.num_rows} rows: {type(exc).__name__}: {exc}",
                hint="run the function on a sample (blase.transform.UserFunction(...).fit(sample)) "
                "to debug it",
            ) from exc
        out = _to_table(result, name)
        if out.num_rows != table.num_rows:
            raise TransformError(
                f"{name} returned {out.num_rows} rows for a batch of {table.num_rows}; a transform "
                "function must keep every row, in order",
                hint="drop rows with op: filter (a SQL predicate) instead",
            )
        return out

    def apply(self, table: pa.Table) -> pa.Table:
        self.check_fitted()
        out = self._call(table)
        learned = schema_from_json(self.output_schema_)
        if out.schema.equals(learned):
            return out
        columns, fields = [], []
        for f, column in zip(out.schema, out.columns, strict=True):
            want = learned.field(f.name) if f.name in learned.names else f
            if f.type == want.type:
                columns.append(column)
                fields.append(f if f.name not in learned.names else want)
                continue
            try:
                columns.append(column.cast(want.type))
                fields.append(want)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                if pa.types.is_integer(want.type) and pa.types.is_floating(f.type):
                    # fractions in a column fitted as integers (the input's, passed through):
                    # kept as float64, as Transform reads such an input column
                    columns.append(column.cast(pa.float64()))
                    fields.append(pa.field(f.name, pa.float64(), nullable=want.nullable))
                    continue
                raise TransformError(
                    f"{self.label} returned column {f.name!r} as {f.type}, but at fit time it was "
                    f"{want.type}: {str(exc).splitlines()[0]}",
                    hint=f"return {f.name!r} as {want.type} for every batch (cast it explicitly in "
                    "the function, mind all-null batches), or fix that column in the data",
                ) from None
        return pa.Table.from_arrays(columns, schema=pa.schema(fields))

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        self.check_fitted()
        return schema_from_json(self.output_schema_)

    def required_columns(self) -> list[str]:
        return []

    def saved_params(self) -> dict[str, Any]:
        params = self.get_params()
        params.pop("project_root")
        if self.ref_ is None:
            reference_of(self._callable, self.project_root)  # raises the reason
        params["func"] = self.ref_
        return params
