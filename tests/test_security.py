"""A model package and a tool argument are data, never code (issue [1/7] part 2).

Through the CLI, the tools and the engine, with real projects, real DuckDB and real
packages: SQL fragments are one expression, model names are names, a package from outside
models/ needs a person's trust.
"""

from __future__ import annotations

import json
import shutil

import pytest
from blase.tools import ToolContext, ToolError, call_tool

from blase.config import config_from_dict
from blase.deploy import DeployError, resolve_model
from blase.errors import ConfigError, TransformError
from blase.pipeline import Pipeline

INJECTION = "1=1); COPY (SELECT 42 AS x) TO '{target}'; SELECT 1 WHERE (1=1"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A project with one deployed model (a short training run)."""
    from blase.scaffold import create_project

    project = create_project(tmp_path_factory.mktemp("security") / "peng")
    Pipeline(project, overrides=["train.epochs=3"]).run()
    return project


def _with_step(project, text: str) -> None:
    cfg = project.root / "blase.yaml"
    cfg.write_text(cfg.read_text().replace("  - op: impute\n", text + "  - op: impute\n", 1))


# ---------------------------------------------------------------------- SQL fragments


@pytest.mark.parametrize("key,extra", [("where", ""), ("expr", "    name: x2\n")])
def test_stacked_statement_in_blase_yaml_is_refused_at_load(project, cli, tmp_path, key, extra):
    target = tmp_path / "pwned.csv"
    op = "filter" if key == "where" else "sql"
    _with_step(project, f'  - op: {op}\n    {key}: "{INJECTION.format(target=target)}"\n{extra}')
    r = cli("check", "--project", str(project.root))
    assert r.exit_code != 0
    assert f"transform[1].{key} (line" in r.stdout + r.stderr
    assert "not one SQL expression" in r.stdout + r.stderr
    r = cli("run", "--to", "transform", "--project", str(project.root))
    assert r.exit_code != 0
    assert not target.exists()


@pytest.mark.parametrize("expr", [
    "(SELECT count(*) FROM read_csv('/etc/passwd')) > 0",
    "island IN (SELECT 'Biscoe')",
    "bill_length_mm > 1; SELECT 2",
    "",
])
def test_only_a_single_row_expression_is_accepted(expr):
    with pytest.raises(ConfigError):
        config_from_dict({"project": "p", "transform": [{"op": "filter", "where": expr}]})
    from blase.transform import Filter

    with pytest.raises(TransformError):
        Filter(expr)


def test_good_expressions_still_work():
    from blase.transform import Filter

    cfg = config_from_dict({"project": "p", "transform": [
        {"op": "filter", "where": "island = 'Biscoe' AND bill_length_mm > 40 -- big ones"},
        {"op": "sql", "expr": "bill_length_mm / bill_depth_mm", "name": "ratio"}]})
    assert cfg.transform[0].where.startswith("island")
    assert Filter("\"bill length\" > 1").where == "\"bill length\" > 1"


def test_stacked_statement_in_a_saved_transform_is_refused(deployed, tmp_path):
    """A package's transform.json is data: loading it never runs a second statement."""
    from blase.transform import Transform

    package = resolve_model(deployed, "peng")
    state = json.loads((package.path / "transform.json").read_text())
    target = tmp_path / "pwned.csv"
    state["operations"].insert(0, {"op": "filter", "params": {"where": INJECTION.format(target=target)}})
    bad = tmp_path / "transform.json"
    bad.write_text(json.dumps(state))
    with pytest.raises(TransformError, match="not one SQL expression"):
        Transform.load(bad, project_root=tmp_path)
    assert not target.exists()


# ---------------------------------------------------------------------- model names


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs", "a/b", "..", ".hidden", "a..b"])
def test_model_names_are_identifiers_in_config(name):
    with pytest.raises(ConfigError, match=r"deploy\.name"):
        config_from_dict({"project": "p", "deploy": {"name": name}})


def test_cli_deploy_promote_rollback_refuse_paths_as_names(deployed, cli, tmp_path):
    root = deployed.root
    before = sorted(p.name for p in root.parent.iterdir())
    for args in (("deploy", "latest", "--name", "../../escaped"),
                 ("deploy", "latest", "--name", str(tmp_path / "abs")),
                 ("promote", "../peng", "v1"),
                 ("rollback", "../../x"),
                 ("predict", "../peng", "data/penguins.csv", "--out", "outputs/p.csv")):
        r = cli(*args, "--project", str(root))
        assert r.exit_code != 0, args
        assert "is not a name" in r.stdout + r.stderr, args
    assert sorted(p.name for p in root.parent.iterdir()) == before
    assert not (tmp_path / "abs").exists()
    r = cli("run", "--from", "deploy", "--set", "deploy.name=../../up", "--project", str(root))
    assert r.exit_code != 0 and "deploy.name" in r.stdout + r.stderr
    assert sorted(p.name for p in root.parent.iterdir()) == before


@pytest.mark.parametrize("tool,args", [
    ("deploy", {"run": "latest", "name": "../../x"}),
    ("promote", {"name": "../peng", "version": "v1"}),
    ("rollback", {"name": "/abs/peng"}),
    ("predict", {"model": "../peng", "data": "data/penguins.csv", "out": "outputs/p.csv"}),
    ("check_drift", {"model": "peng@../../v1", "data": "data/penguins.csv"}),
])
def test_tools_refuse_paths_as_model_names(deployed, tool, args):
    with pytest.raises(ToolError, match=r"not a name|not a version"):
        call_tool(tool, args, ToolContext.for_project(deployed))


# ---------------------------------------------------------------------- packages from outside


def test_a_package_outside_models_needs_trust(deployed, cli, tmp_path):
    outside = tmp_path / "downloaded"
    shutil.copytree(resolve_model(deployed, "peng").path, outside)
    root = str(deployed.root)
    for command in (("predict", str(outside), "data/penguins.csv", "--out", str(tmp_path / "p.csv")),
                    ("monitor", str(outside), "data/penguins.csv")):
        r = cli(*command, "--project", root)
        assert r.exit_code != 0
        assert "outside this project's" in r.stdout + r.stderr and "--trust-package" in r.stdout + r.stderr
    assert not (tmp_path / "p.csv").exists()
    r = cli("predict", str(outside), "data/penguins.csv", "--out", str(tmp_path / "p.csv"),
            "--trust-package", "--project", root)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert (tmp_path / "p.csv").is_file()


def test_a_symlink_in_models_to_an_outside_package_is_outside(deployed, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.copytree(resolve_model(deployed, "peng").path, outside)
    link = deployed.models_dir / "linked"
    link.symlink_to(outside, target_is_directory=True)
    try:
        with pytest.raises(DeployError, match="outside this project's"):
            resolve_model(deployed, str(link))
        assert resolve_model(deployed, str(resolve_model(deployed, "peng").path)).name == "peng"
    finally:
        link.unlink()


def test_check_drift_tool_never_takes_a_package_folder(deployed, tmp_path):
    outside = tmp_path / "pkg"
    shutil.copytree(resolve_model(deployed, "peng").path, outside)
    with pytest.raises(ToolError, match="not a name"):
        call_tool("check_drift", {"model": str(outside), "data": "data/penguins.csv"},
                  ToolContext.for_project(deployed))
