"""Blase's exceptions.

Every error a person can cause derives from :class:`BlaseError`. A message says what was
wrong, where (file, line, row, column or key) and what to do about it; the CLI prints it
without a traceback and exits non-zero (``--debug`` shows the traceback).
"""

from __future__ import annotations

__all__ = [
    "BlaseError",
    "ConfigError",
    "ConfigProblem",
    "DataError",
    "ExtractError",
    "HashError",
    "MonitorError",
    "PrepareError",
    "ProjectError",
    "ResourceError",
    "RunNotFoundError",
    "TrackError",
    "TransformError",
]

from dataclasses import dataclass


class BlaseError(Exception):
    """Root of every error Blase raises on purpose.

    Parameters
    ----------
    message:
        What went wrong and where.
    hint:
        What to do about it, shown on its own line.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ProjectError(BlaseError):
    """The folder is not a Blase project, or a project cannot be created there."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration file."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


class ConfigError(BlaseError):
    """``blase.yaml`` (or a config built in Python) is invalid. One entry per problem."""

    def __init__(self, problems: list[ConfigProblem], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in configuration:"
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head}\n{body}", hint=hint)


class TrackError(BlaseError):
    """Recording or reading a run failed."""


class RunNotFoundError(TrackError):
    """No run matches an id or prefix, or a prefix matches several runs."""


class HashError(BlaseError):
    """A file or object could not be hashed."""


class ResourceError(BlaseError):
    """A memory budget or other resource setting is invalid."""


class DataError(BlaseError):
    """Data does not match what a step needs (root of the data-step errors)."""


class ExtractError(DataError):
    """A source cannot be read: missing file, wrong delimiter, bad rows, mismatched schemas."""


class TransformError(DataError):
    """A transform cannot be fitted or applied: unknown column, unseen category, bad function."""


class PrepareError(DataError):
    """Shards cannot be made: label with nulls, non-numeric features, a full disk."""


class MonitorError(BlaseError):
    """New data cannot be checked against a model: no reference profile, missing or retyped
    columns, unreadable data."""
