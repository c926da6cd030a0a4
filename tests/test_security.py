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
from tests.conftest import pin_mlp

INJECTION = "1=1); COPY (SELECT 42 AS x) TO '{target}'; SELECT 1 WHERE (1=1"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A project with one deployed model (a short training run)."""
    from blase.scaffold import create_project

    project = pin_mlp(create_project(tmp_path_factory.mktemp("security") / "peng"))
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


# ---------------------------------------------------------------------- package integrity


def _copy_package(project, name: str):
    """A copy of the deployed package as ``models/NAME/v1`` (inside the project: no trust needed)."""
    target = project.models_dir / name / "v1"
    if target.parent.exists():
        shutil.rmtree(target.parent)
    shutil.copytree(resolve_model(project, "peng").path, target)
    return target


def _predict(cli, project, model, out):
    return cli("predict", model, "data/penguins.csv", "--out", str(out), "--project", str(project.root))


def test_deploy_records_a_hash_of_every_package_file(deployed):
    package = resolve_model(deployed, "peng")
    files = package.info["integrity"]["files"]
    assert {"model.safetensors", "model.json", "transform.json", "manifest.json",
            "reference_profile.json", "README.md", "scripts/transforms.py"} <= set(files)
    assert all(len(d) == 64 for d in files.values())


def test_a_flipped_weight_byte_is_refused_naming_the_file(deployed, cli, tmp_path):
    folder = _copy_package(deployed, "flipped")
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    r = _predict(cli, deployed, "flipped", tmp_path / "p.csv")
    assert r.exit_code != 0
    assert "model.safetensors was changed after deploy" in r.stderr and "blase deploy RUN" in r.stderr
    assert not (tmp_path / "p.csv").exists()
    r = cli("monitor", "flipped", "data/penguins.csv", "--project", str(deployed.root))
    assert r.exit_code != 0 and "model.safetensors was changed" in r.stderr


def test_a_reordered_class_list_is_refused(deployed, cli, tmp_path):
    folder = _copy_package(deployed, "relabelled")
    meta = folder / "package.json"
    info = json.loads(meta.read_text())
    info["classes"] = list(reversed(info["classes"]))
    meta.write_text(json.dumps(info, indent=2))
    r = _predict(cli, deployed, "relabelled", tmp_path / "p.csv")
    assert r.exit_code != 0 and "package.json was changed after deploy" in r.stderr
    manifest_pkg = _copy_package(deployed, "relabelled2")
    manifest = manifest_pkg / "manifest.json"
    m = json.loads(manifest.read_text())
    m["classes"] = list(reversed(m["classes"]))
    manifest.write_text(json.dumps(m))
    r = _predict(cli, deployed, "relabelled2", tmp_path / "p.csv")
    assert r.exit_code != 0 and "manifest.json was changed after deploy" in r.stderr


def test_an_added_file_and_a_missing_file_are_refused(deployed):
    folder = _copy_package(deployed, "extra")
    (folder / "scripts" / "sneaky.py").write_text("print('hi')\n")
    with pytest.raises(DeployError, match=r"sneaky\.py was added"):
        resolve_model(deployed, "extra")
    (folder / "scripts" / "sneaky.py").unlink()
    (folder / "model.onnx").unlink(missing_ok=True)
    (folder / "README.md").unlink()
    with pytest.raises(DeployError, match=r"README\.md is missing"):
        resolve_model(deployed, "extra")


def test_a_package_without_hashes_still_loads_with_a_warning(deployed, tmp_path, caplog):
    folder = _copy_package(deployed, "older")
    meta = folder / "package.json"
    info = json.loads(meta.read_text())
    del info["integrity"]
    meta.write_text(json.dumps(info, indent=2))
    with caplog.at_level("WARNING"):
        package = resolve_model(deployed, "older")
    assert "records no file hashes" in caplog.text
    from blase.deploy import predict

    assert predict(deployed, package, deployed.root / "data" / "penguins.csv", tmp_path / "p.csv").rows == 344


# ---------------------------------------------------------------------- a package names no code


def _crafted(project, name: str, edit) -> None:
    """A package someone edited and re-sealed (hashes prove integrity, not good intent)."""
    from blase.deploy import seal_package

    folder = _copy_package(project, name)
    edit(folder)
    seal_package(folder)


def test_a_module_model_naming_popen_is_never_imported(deployed, cli, tmp_path):
    marker = tmp_path / "popen-ran"

    def edit(folder):
        spec = json.loads((folder / "model.json").read_text())
        spec.update(kind="module", class_path="subprocess:Popen",
                    init_kwargs={"args": ["touch", str(marker)]})
        (folder / "model.json").write_text(json.dumps(spec))
        (folder / "model.onnx").unlink(missing_ok=True)

    _crafted(deployed, "popen", edit)
    r = _predict(cli, deployed, "popen", tmp_path / "p.csv")
    assert r.exit_code != 0
    assert "names a Python class to import ('subprocess:Popen')" in r.stderr
    assert not marker.exists()


@pytest.mark.parametrize("ref", ["{evil}:f", "pyarrow.csv:write_csv", "../outside.py:f"])
def test_a_transform_calling_code_outside_the_package_is_refused(deployed, cli, tmp_path, ref):
    marker = tmp_path / "evil-ran"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('x')\ndef f(t):\n    return t\n")
    ref = ref.format(evil=evil)

    def edit(folder):
        if ref.startswith("../"):
            shutil.copyfile(evil, folder.parent / "outside.py")
        state = json.loads((folder / "transform.json").read_text())
        call = next(op for op in state["operations"] if op["op"] == "call")
        call["ref"] = call["params"]["func"] = ref
        (folder / "transform.json").write_text(json.dumps(state))

    _crafted(deployed, "evilcall", edit)
    r = _predict(cli, deployed, "evilcall", tmp_path / "p.csv")
    assert r.exit_code != 0
    assert "is outside" in r.stderr
    assert not marker.exists() and not (tmp_path / "p.csv").exists()


def test_a_script_model_is_rebuilt_from_the_package_copy(tmp_path, cli):
    from blase.deploy import predict
    from blase.scaffold import create_project

    project = create_project(tmp_path / "scripted")
    (project.root / "scripts" / "model.py").write_text(
        "import torch.nn as nn\n\n"
        "def build_model(n_features, n_outputs, task):\n"
        "    return nn.Sequential(nn.Linear(n_features, 8), nn.ReLU(), nn.Linear(8, n_outputs))\n")
    Pipeline(project, overrides=["train.epochs=2", "train.model=scripts/model.py:build_model"]).run()
    package = resolve_model(project, "scripted")
    assert (package.path / "scripts" / "model.py").is_file()
    assert "scripts/model.py" in package.info["integrity"]["files"]
    before = predict(project, "scripted", project.root / "data" / "penguins.csv", tmp_path / "a.csv")
    # the project's script changes (or goes) after deploy: the package keeps its own copy
    marker = tmp_path / "evil-ran"
    (project.root / "scripts" / "model.py").write_text(f"open({str(marker)!r}, 'w')\n")
    after = predict(project, "scripted", project.root / "data" / "penguins.csv", tmp_path / "b.csv")
    assert before.rows == after.rows == 344
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert not marker.exists()
    # an edited copy is refused by its hash, before it is imported
    (package.path / "scripts" / "model.py").write_text(f"open({str(marker)!r}, 'w')\n")
    r = cli("predict", "scripted", "data/penguins.csv", "--out", str(tmp_path / "c.csv"),
            "--project", str(project.root))
    assert r.exit_code != 0 and "scripts/model.py was changed after deploy" in r.stderr
    assert not marker.exists()


# ---------------------------------------------------------------------- whole-section overrides


@pytest.fixture
def evil(tmp_path):
    """A script outside the project that leaves a marker when imported."""
    marker = tmp_path / "evil-ran"
    path = tmp_path / "evil.py"
    path.write_text(f"open({str(marker)!r}, 'w').write('x')\n"
                    "def f(t):\n    return t\n"
                    "def build(n_features, n_outputs, task):\n    raise SystemExit\n")
    return path, marker


def _outside_csv(project, tmp_path):
    outside = tmp_path / "outside.csv"
    shutil.copyfile(project.root / "data" / "penguins.csv", outside)
    return outside


@pytest.mark.parametrize("shape", ["transform_call", "data_section", "train_model", "symlinked_source",
                                   "glob_source", "module_call"])
def test_tool_overrides_are_checked_on_the_resulting_config(project, tmp_path, evil, shape):
    path, marker = evil
    outside = _outside_csv(project, tmp_path)
    link = project.root / "data" / "elsewhere"
    link.symlink_to(tmp_path, target_is_directory=True)
    override = {
        "transform_call": f"transform=[{{call: {path}:f}}]",
        "data_section": f"data={{source: {outside}, label: species}}",
        "train_model": f"train={{model: '{path}:build', epochs: 1}}",
        "symlinked_source": "data={source: data/elsewhere/outside.csv, label: species}",
        "glob_source": "data={source: 'data/elsewhere/*.csv', label: species}",
        "module_call": "transform=[{call: 'pyarrow.csv:write_csv'}]",
    }[shape]
    ctx = ToolContext.for_project(project)
    for tool, args in (("run_pipeline", {"overrides": [override]}),
                       ("run_step", {"step": "extract", "overrides": [override]})):
        with pytest.raises(ToolError, match=r"outside the project|not a file of the project"):
            call_tool(tool, args, ctx)
    assert not marker.exists()
    assert not list(project.runs_dir.glob("*"))  # refused before any run started


def test_cli_set_of_a_whole_section_is_checked(project, cli, tmp_path, evil):
    path, marker = evil
    r = cli("run", "--to", "transform", "--set", f"transform=[{{call: {path}:f}}]",
            "--project", str(project.root))
    assert r.exit_code != 0
    assert "transform[0].call" in r.stderr and "outside the project" in r.stderr
    assert not marker.exists()
    # what blase.yaml itself says stays the person's choice; an inside override is fine
    r = cli("run", "--to", "extract", "--set", "data={source: data/penguins.csv, label: species}",
            "--project", str(project.root))
    assert r.exit_code == 0, r.stderr


def test_autopilot_config_change_to_outside_code_is_refused(project, evil):
    pytest.importorskip("langgraph")
    from blase.agent import Autopilot
    from blase.agent._fake import ScriptedChatModel, call
    from langchain_core.messages import HumanMessage

    path, marker = evil
    bad = [call("propose_config_change", {"key": "train.model", "value": f"{path}:build", "reason": "x"}),
           call("propose_config_change", {"key": "transform", "value": f"[{{call: '{path}:f'}}]", "reason": "x"})]

    def respond(messages):
        human = next(m for m in reversed(messages) if isinstance(m, HumanMessage))
        if "Decide for step train" in human.content and bad:
            return bad.pop(0)
        return call("accept_step", {"reason": "fine"})

    llm = ScriptedChatModel(repeat=respond)
    with Autopilot(project, autonomy="auto", llm=llm, overrides=["train.epochs=1"]) as pilot:
        pilot.start()
    errors = [m.content for request in llm.seen for m in request if getattr(m, "type", "") == "tool"]
    assert len({e for e in errors if "outside the project" in e}) == 2, errors
    assert not marker.exists()


# ---------------------------------------------------------------------- chat --yes


def test_chat_yes_approves_writes_but_a_destructive_call_still_waits(project, cli):
    """`blase chat --yes` is a blanket approval of write calls only, as `blase run --autonomy --yes`."""
    pytest.importorskip("langgraph")
    from blase.agent import Session
    from blase.agent._fake import ScriptedChatModel, call

    r = cli("run", "--set", "train.epochs=1", "--project", str(project.root))
    assert r.exit_code == 0, r.stderr
    llm = ScriptedChatModel(responses=[
        call("run_step", {"step": "evaluate"}), "evaluated.",
        call("gc", {"dry_run": False}), "cleaned.",
    ])
    with Session(project, autonomy="semi", llm=llm, auto_approve=True) as s:
        turn = s.send("evaluate again")
        assert turn.pending is None and turn.answer == "evaluated."  # the write call ran unasked
        turn = s.send("free disk space")
        assert turn.pending is not None and turn.pending.tool == "gc" and turn.pending.risk == "destructive"
        assert turn.answer is None  # nothing was deleted: the person decides
