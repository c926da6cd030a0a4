"""Code hashes that follow a function into the project-local code it calls."""

from __future__ import annotations

import enum
import functools
import inspect
import io
import logging
import os
import site
import sys
import sysconfig
import textwrap
import tokenize
import types
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import xxhash

from blase.errors import HashError
from blase.hashing._config import hash_config
from blase.hashing._files import _CODE_TAG, PathLike, hash_bytes

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- code


@dataclass(frozen=True)
class CodeHash:
    """The digest of a piece of code and the names (``module.qualname``) it covers."""

    digest: str
    sources: tuple[str, ...]

    def __str__(self) -> str:
        return self.digest


def _is_under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip(os.sep) + os.sep)


class _Locality:
    """Decides which source files are the project's own."""

    def __init__(self, project_root: PathLike | None) -> None:
        self.root = os.path.realpath(os.fspath(project_root)) if project_root else None
        prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
        paths = sysconfig.get_paths()
        prefixes.update(
            paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths
        )
        try:
            prefixes.update(site.getsitepackages())
            prefixes.add(site.getusersitepackages())
        except AttributeError:  # some embedded interpreters
            pass
        # Blase's own code is covered by its version in the environment fingerprint.
        prefixes.add(str(Path(__file__).resolve().parent))
        self.excluded = tuple(sorted(os.path.realpath(p) for p in prefixes if p))
        self._known: dict[str, bool] = {}

    def __call__(self, filename: str | None) -> bool:
        if not filename or filename.startswith("<"):
            return False
        known = self._known.get(filename)
        if known is None:
            known = self._known[filename] = self._decide(filename)
        return known

    def _decide(self, filename: str) -> bool:
        real = os.path.realpath(filename)
        if not os.path.isfile(real):
            return False
        if self.root is not None:
            return _is_under(real, self.root)
        if any(_is_under(real, p) for p in self.excluded):
            return False
        return not {"site-packages", "dist-packages"} & set(Path(real).parts)


def _normalized(source: str) -> str:
    """The token stream of ``source``: comments, blank lines and spacing do not count."""
    text = textwrap.dedent(source)
    out: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.ENDMARKER):
                continue
            if tok.type == tokenize.INDENT:
                out.append("\x01>")
            elif tok.type == tokenize.DEDENT:
                out.append("\x01<")
            else:
                out.append(tok.string)
    except (tokenize.TokenError, SyntaxError):  # e.g. a lambda cut out of a longer line
        return source
    return "\0".join(out)


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _const_text(const: Any) -> str:
    if isinstance(const, types.CodeType):
        return _bytecode_text(const)
    if isinstance(const, frozenset):
        return "frozenset(" + ",".join(sorted(map(_const_text, const))) + ")"
    if isinstance(const, tuple):
        return "(" + ",".join(map(_const_text, const)) + ")"
    return repr(const)


def _bytecode_text(code: types.CodeType) -> str:
    """Fallback when the source cannot be read (for example code built with ``exec``)."""
    parts = [code.co_code.hex(), repr(code.co_names), repr(code.co_varnames)]
    parts.extend(_const_text(c) for c in code.co_consts)
    return "\0".join(parts)


def _module_label(module: types.ModuleType | None, name: str) -> str:
    """A module's name for hashes; loaders of user files set ``__blase_code_name__`` to a
    location-free name (``scripts/transforms.py``) so a moved project hashes the same."""
    label = getattr(module, "__blase_code_name__", None) if module is not None else None
    return str(label) if label else name


def _name(obj: Any) -> str:
    if isinstance(obj, types.ModuleType):
        return _module_label(obj, obj.__name__)
    module = getattr(obj, "__module__", None) or "?"
    module = _module_label(sys.modules.get(module), module)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    return f"{module}.{qualname}" if qualname else f"{module}.<{type(obj).__qualname__}>"


_CODE_TYPES = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.MethodType,
    functools.partial,
    staticmethod,
    classmethod,
    property,
)


class _CodeWalker:
    def __init__(self, project_root: PathLike | None) -> None:
        self.is_local = _Locality(project_root)
        self.entries: dict[str, str] = {}
        self.queue: list[Any] = []
        self.seen: set[int] = set()
        self.alive: list[Any] = []  # keeps ids in `seen` from being reused

    def push(self, obj: Any) -> None:
        if id(obj) not in self.seen:
            self.seen.add(id(obj))
            self.alive.append(obj)
            self.queue.append(obj)

    def run(self, root: Any) -> None:
        self.push(root)
        while self.queue:
            self.visit(self.queue.pop())

    def consider(self, value: Any, label: str | None) -> None:
        """A value referenced by local code: code is walked; data is hashed under ``label``."""
        if isinstance(value, _CODE_TYPES):
            self.push(value)
            return
        if callable(value):
            if not isinstance(value, (types.BuiltinFunctionType, types.BuiltinMethodType)):
                self.push(type(value))  # a callable instance: its class holds the code
            return
        if label is None:
            return
        try:
            self.entries[label] = hash_config(value)
        except (HashError, TypeError, ValueError):
            pass  # a logger, a lock, a compiled regex...: not data we can compare

    def visit(self, obj: Any) -> None:
        if isinstance(obj, types.MethodType):
            self.push(obj.__func__)
            owner = obj.__self__
            self.push(owner if isinstance(owner, type) else type(owner))
        elif isinstance(obj, (staticmethod, classmethod)):
            self.push(obj.__func__)
        elif isinstance(obj, property):
            for f in (obj.fget, obj.fset, obj.fdel):
                if f is not None:
                    self.push(f)
        elif isinstance(obj, functools.partial):
            self.push(obj.func)
            self.consider((obj.args, obj.keywords), f"{_name(obj.func)}.<partial arguments>")
        elif isinstance(obj, types.FunctionType):
            self.visit_function(obj)
        elif isinstance(obj, type):
            self.visit_class(obj)
        elif isinstance(obj, types.ModuleType):
            self.visit_module(obj)

    def function_refs(self, fn: types.FunctionType, *, data: bool) -> None:
        module = fn.__module__ or "?"
        for name in sorted(_code_names(fn.__code__)):
            if name in fn.__globals__:
                value = fn.__globals__[name]
                self.consider(value, f"{module}.{name}" if data else None)
        cells = zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True)
        for var, cell in cells:
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            self.consider(value, f"{_name(fn)}.<closure {var}>" if data else None)
        defaults = list(fn.__defaults__ or ()) + list((fn.__kwdefaults__ or {}).values())
        for i, value in enumerate(defaults):
            if not _is_plain_data(value):  # plain defaults are in the source text already
                self.consider(value, f"{_name(fn)}.<default {i}>")

    def visit_function(self, fn: types.FunctionType) -> None:
        wrapped = getattr(fn, "__wrapped__", None)
        if wrapped is not None:
            self.push(wrapped)
        if not self.is_local(fn.__code__.co_filename):
            # Third-party wrappers (decorators) may hold the user's code in their closure.
            for cell in fn.__closure__ or ():
                try:
                    value = cell.cell_contents
                except ValueError:
                    continue
                self.consider(value, None)
            return
        try:
            text = _normalized(inspect.getsource(fn))
        except (OSError, TypeError):
            text = _bytecode_text(fn.__code__)
        self.entries[_name(fn)] = hash_bytes(text.encode("utf-8", "surrogateescape"))
        self.function_refs(fn, data=True)

    def visit_class(self, cls: type) -> None:
        module = sys.modules.get(cls.__module__)
        try:
            filename = inspect.getsourcefile(cls)
        except TypeError:  # a builtin class
            return
        if not self.is_local(filename):
            return
        try:
            text = _normalized(inspect.getsource(cls))
        except (OSError, TypeError):
            if module is None:
                return
            self.push(module)
            text = ""
        self.entries[_name(cls)] = hash_bytes(text.encode("utf-8", "surrogateescape"))
        for base in cls.__mro__[1:]:
            self.push(base)
        for member in vars(cls).values():
            for fn in _functions_of(member):
                if fn.__code__.co_filename == filename:
                    self.function_refs(fn, data=True)
                else:
                    self.push(fn)

    def visit_module(self, module: types.ModuleType) -> None:
        filename = getattr(module, "__file__", None)
        if filename is None or not self.is_local(filename):
            return
        try:
            raw = Path(filename).read_bytes()
        except OSError:
            return
        if filename.endswith(".py"):
            try:
                source = raw.decode(tokenize.detect_encoding(io.BytesIO(raw).readline)[0])
                raw = _normalized(source).encode("utf-8", "surrogateescape")
            except (SyntaxError, LookupError, UnicodeDecodeError):
                pass
        self.entries[module.__name__] = hash_bytes(raw)
        # What the module defines is in its file; what it imports must be walked.
        for name, value in vars(module).items():
            if name.startswith("__"):
                continue
            if isinstance(value, types.ModuleType):
                self.push(value)
            elif isinstance(value, (types.FunctionType, type)):
                if getattr(value, "__module__", None) != module.__name__:
                    self.push(value)
                elif isinstance(value, types.FunctionType):
                    self.function_refs(value, data=False)


def _functions_of(member: Any) -> list[types.FunctionType]:
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, property):
        return [
            f for f in (member.fget, member.fset, member.fdel) if isinstance(f, types.FunctionType)
        ]
    return [member] if isinstance(member, types.FunctionType) else []


def _is_plain_data(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, bytes, PurePath, enum.Enum))


def code_hash(obj: Any, *, project_root: PathLike | None = None) -> CodeHash:
    """The digest of a function, method, class, module or callable, and what it covers.

    Covered: the object's own source (a module's whole file), then recursively the
    project-local functions, classes and modules it references through names in its code
    objects (nested functions, lambdas and comprehensions included) resolved in its
    globals, its closure cells and non-literal default values, and the values of the
    plain-data globals it reads (``THRESHOLD = 0.5``). A local module reached through an
    attribute chain (``helpers.clean``) is covered as a whole file, along with the local
    code it imports. "Local" means a file under ``project_root``, or when that is ``None``,
    any real file outside the interpreter's prefixes, site-packages, the standard library
    and Blase itself. Sources compare as token streams, so comment and spacing edits do not
    change the digest. The digest also includes the object's qualified name, so two
    third-party callables never share one.
    """
    walker = _CodeWalker(project_root)
    walker.run(obj)
    h = xxhash.xxh3_128(_CODE_TAG)
    h.update(f"root:{_name(obj)}\0".encode("utf-8", "surrogateescape"))
    for label, digest in sorted(walker.entries.items()):
        h.update(f"{label}\0{digest}\0".encode("utf-8", "surrogateescape"))
    return CodeHash(digest=h.hexdigest(), sources=tuple(sorted(walker.entries)))


