"""The deprecation helper: a warning that names the replacement and the removal, for one minor
version; and no deprecation outlives the version that removes it."""

from __future__ import annotations

import importlib
import warnings

import pytest

from blase import __version__, deprecated
from blase._deprecation import overdue, registered, removal_version, warn_deprecated
from tests.test_public_api import PACKAGES


def test_removal_is_the_next_minor_version():
    assert removal_version("1.3") == "1.4.0"
    assert removal_version("0.9.2") == "0.10.0"
    with pytest.raises(ValueError, match="not a version"):
        removal_version("soon")


def test_a_deprecated_function_and_class_warn_and_still_work():
    @deprecated(since="1.3", replacement="blase.deploy.predict", name="tests.score")
    def score(x: int) -> int:
        return x * 2

    @deprecated(since="1.3", replacement="blase.deploy.ModelService", name="tests.Server")
    class Server:
        def __init__(self, port: int) -> None:
            self.port = port

    with pytest.warns(DeprecationWarning, match=r"tests.score is deprecated since Blase 1.3 and is removed "
                      r"in 1.4.0; use blase.deploy.predict instead") as caught:
        assert score(2) == 4
    assert caught[0].filename == __file__  # the warning points at the caller's line
    with pytest.warns(DeprecationWarning, match="use blase.deploy.ModelService instead"):
        assert Server(8000).port == 8000
    with pytest.warns(DeprecationWarning, match="--memory-limit is deprecated"):
        warn_deprecated("--memory-limit", since="1.3", replacement="--memory")
    assert overdue("1.3.9") == [] and {d.name for d in overdue("1.4.0")} >= {"tests.score", "tests.Server"}


def test_no_public_name_outlives_its_removal_version():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for package in PACKAGES:
            importlib.import_module(package)
    late = [d for d in overdue(__version__) if not d.name.startswith("tests.")]
    assert late == [], f"Blase {__version__} should have removed: {[d.message() for d in late]}"
    assert all(d.removed_in == removal_version(d.since) for d in registered())
