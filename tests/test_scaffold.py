"""`blase create`, and commands that find the project from any subfolder."""

from __future__ import annotations

import os

import pytest

from blase.errors import ProjectError
from blase.project import find_project
from blase.scaffold import create_project


def test_create_makes_the_layout_and_a_valid_config(tmp_path):
    project = create_project(tmp_path / "churn")
    root = project.root
    for folder in ("scripts", "data", "models", "outputs", "runs", ".blase"):
        assert (root / folder).is_dir(), folder
    assert (root / "scripts" / "train.py").is_file()
    assert (root / "scripts" / "transforms.py").is_file()
    assert (root / "data" / "penguins.csv").is_file()
    assert (root / "README.md").read_text().startswith("# churn")
    gitignore = (root / ".gitignore").read_text()
    for ignored in ("/data/", "/runs/", "/.blase/"):
        assert ignored in gitignore
    config = project.config()
    assert config.project == "churn"
    assert config.data.source == "data/penguins.csv"
    assert "#" in (root / "blase.yaml").read_text()  # commented
    # no staging folder left behind
    assert [p.name for p in tmp_path.iterdir()] == ["churn"]


def test_create_without_example_data(tmp_path):
    project = create_project(tmp_path / "empty", example=False)
    assert list((project.root / "data").iterdir()) == []
    assert project.config().data.source == "data/train.csv"


def test_create_refuses_a_non_empty_folder_and_leaves_it_alone(tmp_path):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ProjectError, match="not empty") as info:
        create_project(target)
    assert "notes.txt" in str(info.value)
    assert os.listdir(target) == ["notes.txt"]


def test_create_into_an_empty_existing_folder(tmp_path):
    (tmp_path / "ready").mkdir()
    project = create_project(tmp_path / "ready")
    assert project.config_path.is_file()


def test_create_refuses_a_nested_project_and_a_bad_name(tmp_path, project):
    with pytest.raises(ProjectError, match="inside the project"):
        create_project(project.root / "scripts" / "inner")
    with pytest.raises(ProjectError, match="not a usable project name"):
        create_project(tmp_path / "bad name!")
    with pytest.raises(ProjectError, match="unknown template"):
        create_project(tmp_path / "x", template="vision")


def test_find_project_walks_up_from_a_subfolder(project, monkeypatch):
    deep = project.root / "scripts" / "sub" / "deeper"
    deep.mkdir(parents=True)
    assert find_project(deep).root == project.root
    monkeypatch.chdir(deep)
    assert find_project().root == project.root


def test_find_project_outside_any_project(tmp_path):
    with pytest.raises(ProjectError, match="not inside a Blase project"):
        find_project(tmp_path)
    with pytest.raises(ProjectError, match="does not exist"):
        find_project(tmp_path / "nope")
