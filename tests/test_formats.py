"""Versioned on-disk formats: files written by every released Blase keep reading (the committed
fixtures under tests/fixtures/formats/), files from before formats were numbered read too and
`blase upgrade` migrates them after a dry run, and a file from a newer Blase is refused clearly."""

from __future__ import annotations

import csv
import io
import json
import shutil
from importlib import resources
from pathlib import Path

import pytest

from blase._formats import FORMATS, FormatError
from blase.config import load_config
from blase.deploy import load_package, predict, resolve_model
from blase.errors import ConfigError
from blase.profile import load_profile
from blase.project import find_project
from blase.track import list_runs, load_run
from blase.upgrade import plan_upgrade

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "formats").glob("blase-*"))


def _copy(fixture: Path, tmp_path: Path):
    root = tmp_path / fixture.name
    shutil.copytree(fixture, root)
    (root / "data").mkdir()
    (root / "data" / "penguins.csv").write_bytes((resources.files("blase.datasets") / "penguins.csv").read_bytes())
    return find_project(root)


def _reads_everything(project, expected: dict) -> None:
    load_config(project.config_path)
    (run,) = list_runs([project.root])
    assert run.id == expected["run_id"] and run.status == "finished" and not run.damage
    assert load_run(run.id, [project.root]).metrics["test.accuracy"] > 0
    package = resolve_model(project, "peng")  # verifies every file's recorded hash
    assert load_profile(package.path).columns
    out = predict(project, package, project.root / "data" / "penguins.csv", project.root / "p.csv")
    head = Path(out.output).read_text().splitlines()[:len(expected["predictions_csv_head"])]
    want = list(csv.reader(io.StringIO("\n".join(expected["predictions_csv_head"]))))
    got = list(csv.reader(io.StringIO("\n".join(head))))
    assert [r[:3] for r in got] == [r[:3] for r in want]  # row, truth, prediction
    for g, w in zip(got[1:], want[1:], strict=True):
        assert [float(x) for x in g[3:]] == pytest.approx([float(x) for x in w[3:]], abs=1e-6)


def test_there_is_a_fixture_of_this_blase_s_formats():
    from blase import __version__

    assert FIXTURES, "no fixture: run python tests/fixtures/formats/make_fixture.py and commit it"
    newest = json.loads((FIXTURES[-1] / "expected.json").read_text())["blase_version"]
    assert newest <= __version__


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_files_written_by_a_released_blase_keep_reading(fixture, tmp_path):
    project = _copy(fixture, tmp_path)
    expected = json.loads((fixture / "expected.json").read_text())
    _reads_everything(project, expected)
    if fixture == FIXTURES[-1]:  # the newest fixture is in this Blase's formats: nothing to upgrade
        assert plan_upgrade(project).changes == []


def _strip_versions(project) -> None:
    """Make the files look as Blase wrote them before formats were numbered (format 0)."""
    text = project.config_path.read_text()
    project.config_path.write_text("".join(line for line in text.splitlines(keepends=True)
                                           if not line.startswith("version:")))
    for meta in project.runs_dir.glob("*/meta.json"):
        data = json.loads(meta.read_text())
        data.pop("format", None)
        meta.write_text(json.dumps(data, indent=1) + "\n")


def test_format_0_files_read_and_upgrade_after_a_dry_run(tmp_path, cli):
    project = _copy(FIXTURES[-1], tmp_path)
    expected = json.loads((FIXTURES[-1] / "expected.json").read_text())
    _strip_versions(project)
    _reads_everything(project, expected)
    before = {p: p.read_bytes() for p in (project.config_path, *project.runs_dir.glob("*/meta.json"))}

    dry = cli("upgrade", "--dry-run", "--project", str(project.root))
    assert dry.exit_code == 0, dry.stderr
    assert "+version: 1" in dry.stdout and '+ "format": 1,' in dry.stdout
    assert "would upgrade blase.yaml: format 0 -> 1" in dry.stdout
    assert {p: p.read_bytes() for p in before} == before  # a dry run writes nothing

    done = cli("upgrade", "--json", "--project", str(project.root))
    report = json.loads(done.stdout)
    assert report["applied"] and sorted(c["what"] for c in report["changes"]) == [
        "blase.yaml: format 0 -> 1", "run record: format 0 -> 1"]
    assert load_config(project.config_path).version == FORMATS["config"].current
    assert project.config_path.read_text().startswith("# Blase project")  # comments kept
    _reads_everything(project, expected)
    again = cli("upgrade", "--project", str(project.root))
    assert "nothing to upgrade" in again.stdout


def test_an_unnumbered_package_and_profile_are_upgraded_and_sealed_again(tmp_path):
    from blase.deploy import seal_package
    from blase.upgrade import upgrade

    project = _copy(FIXTURES[-1], tmp_path)
    folder = project.models_dir / "peng" / "v1"
    for name, key in (("package.json", "package_version"), ("reference_profile.json", "version")):
        data = json.loads((folder / name).read_text())
        del data[key]
        (folder / name).write_text(json.dumps(data))
    seal_package(folder)  # a consistent package as a Blase before numbered formats left it
    assert load_package(folder).info.get("package_version") is None
    plan = upgrade(project)
    assert sorted(c.what for c in plan.changes) == ["model package: format 0 -> 1", "model profile: format 0 -> 1"]
    package = load_package(folder)  # its hashes match again after the rewrite
    assert package.info["package_version"] == 1 and load_profile(folder).version == 1
    assert plan_upgrade(project).changes == []


def test_files_of_a_newer_blase_are_refused_with_the_fix(tmp_path, cli):
    project = _copy(FIXTURES[-1], tmp_path)
    config = project.config_path.read_text()
    project.config_path.write_text(config.replace("version: 1", "version: 7", 1))
    with pytest.raises(ConfigError, match=r"version \(line \d+\): blase.yaml is in config format 7, written by a newer Blase"):
        load_config(project.config_path)
    refused = cli("upgrade", "--dry-run", "--project", str(project.root))
    assert refused.exit_code == 1 and "pip install -U blase" in refused.stderr
    assert project.config_path.read_text() == config.replace("version: 1", "version: 7", 1)  # untouched
    project.config_path.write_text(config)

    (meta,) = project.runs_dir.glob("*/meta.json")
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "format": 9}))
    (run,) = list_runs([project.root])
    assert any("run format 9, written by a newer Blase" in d for d in run.damage)

    package = project.models_dir / "peng" / "v1" / "package.json"
    package.write_text(json.dumps({**json.loads(package.read_text()), "package_version": 5}))
    with pytest.raises(FormatError, match="package format 5, written by a newer Blase; this one reads up to 1"):
        load_package(package.parent)
