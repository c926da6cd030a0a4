"""Check the import contracts of pyproject.toml ([tool.importlinter]) on the installed layout.

``python .ci/lint_imports.py`` prints import-linter's report and exits non-zero on a broken
contract. Plain ``lint-imports`` cannot see ``blase.agent`` and ``blase.tools``: they live in
agent/ and tools/ (a package-dir mapping), and grimp only walks a top-level package's own
folder. Here every root package is walked where the import system finds it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import grimp
from grimp.adaptors.packagefinder import ImportLibPackageFinder
from grimp.application.config import settings as grimp_settings
from importlinter.adapters.building import GraphBuilder
from importlinter.application import use_cases
from importlinter.application.app_config import settings as linter_settings
from importlinter.configuration import configure

ROOT = Path(__file__).resolve().parents[1]


class MappedPackageFinder(ImportLibPackageFinder):
    """Find any listed package, top-level or not, where ``importlib`` finds it."""

    def determine_package_directories(self, package_name, file_system):  # type: ignore[override]
        spec = importlib.util.find_spec(package_name)
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(f"Could not find package {package_name!r} in your Python path.")
        return set(spec.submodule_search_locations)


class MappedGraphBuilder(GraphBuilder):
    def build(self, root_package_names, cache_dir, include_external_packages=False,
              exclude_type_checking_imports=False):  # type: ignore[override]
        return grimp.build_graph(
            *root_package_names,
            include_external_packages=include_external_packages,
            exclude_type_checking_imports=exclude_type_checking_imports,
            cache_dir=None,
        )


def lint(config: str | Path = ROOT / "pyproject.toml", *, sys_path: list[str] | None = None) -> bool:
    """Run every contract of ``config``; True when all are kept. ``sys_path`` entries are put
    first on the import path (a test's temporary packages)."""
    configure()
    grimp_settings.configure(PACKAGE_FINDER=MappedPackageFinder())
    linter_settings.configure(GRAPH_BUILDER=MappedGraphBuilder())
    sys.path[:0] = sys_path or []
    try:
        passed = use_cases.lint_imports(config_filename=str(config), cache_dir=None, no_logo=True)
    finally:
        for entry in sys_path or []:
            sys.path.remove(entry)
    return passed is use_cases.SUCCESS


if __name__ == "__main__":
    sys.exit(0 if lint() else 1)
