"""Operation, source and drift_test plugins: from a project file and from an installed package.

The plugins are real: a transform operation that centres numbers (fitted in one streaming
pass), a reader of pipe-delimited files (pyarrow's streaming CSV reader), and a mean-shift
drift test. They run through the whole pipeline, `blase predict` and `blase monitor`, and
every way they can fail is a clear error naming the plugin, never a traceback.
"""

from __future__ import annotations

import json

import pytest
import yaml

from blase.pipeline import Pipeline
from tests.test_plugins import install_plugin_package

KINDS = '''
import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pydantic import BaseModel, ConfigDict

from blase.extract import SourceReader
from blase.monitor import DriftOutcome, DriftTest
from blase.plugins import Plugin
from blase.transform import Operation


def _fail(where):
    if os.environ.get("KINDS_FAIL") == where:
        raise ValueError(f"{where} broke")


class Center(Operation):
    op_name = "center"
    default_kind = "numeric"

    def __init__(self, columns: list[str] | None = None, scale: float = 1.0):
        self.columns = columns
        self.scale = scale

    def fit(self, batches, *, exclude=()):
        _fail("fit")
        sums = {}
        for batch in batches:
            if not sums:
                sums = {c: [0, 0.0] for c in self.resolve_columns(batch.schema, exclude)}
            for c, acc in sums.items():
                values = batch.column(c).drop_null().cast(pa.float64())
                acc[0] += len(values)
                acc[1] += pc.sum(values).as_py() or 0.0
        self.means_ = {c: (s / n if n else 0.0) for c, (n, s) in sums.items()}
        return self

    def apply(self, table):
        self.check_fitted()
        for c, mean in self.means_.items():
            if c in table.column_names:
                centred = pc.multiply(pc.subtract(table[c].cast(pa.float64()), mean), self.scale)
                table = table.set_column(table.column_names.index(c), c, centred)
        return table


class PipeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    delimiter: str = "|"


class Pipes(SourceReader):
    name = "pipes"
    config_model = PipeOptions

    def read(self, path, *, batch_rows):
        _fail("read")
        options = pacsv.ParseOptions(delimiter=self.options.delimiter)
        with pacsv.open_csv(path, parse_options=options) as reader:
            for batch in reader:
                for start in range(0, batch.num_rows, batch_rows):
                    yield batch.slice(start, batch_rows)

    def write_example(self, folder):
        path = folder / "example.pipes"
        path.write_text("a|b\\n" + "".join(f"{i}|x{i % 3}\\n" for i in range(10)))
        return path


class ShiftOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    limit: float = 0.5


class MeanShift(DriftTest):
    name = "meanshift"
    kinds = ("numeric",)
    config_model = ShiftOptions

    def test(self, reference, current, *, seed):
        _fail("test")
        scale = float(reference.values.std()) or 1.0
        shift = abs(float(current.values.mean()) - float(reference.values.mean())) / scale
        return DriftOutcome(statistic=shift, drifted=shift >= self.options.limit, threshold=self.options.limit)


plugins = [
    Plugin(name="center", kind="operation", target="MODULE:Center", version="1.0"),
    Plugin(name="pipes", kind="source", target="MODULE:Pipes", version="1.0", suffixes=(".pipes",)),
    Plugin(name="meanshift", kind="drift_test", target="MODULE:MeanShift", version="1.0"),
]
'''


def _pipes(project, name: str = "penguins.pipes", *, shift: float = 0.0) -> str:
    """The penguins data as a pipe-delimited file (body mass shifted by ``shift`` grams)."""
    import pandas as pd

    frame = pd.read_csv(project.root / "data" / "penguins.csv")
    frame["body_mass_g"] = frame["body_mass_g"] + shift
    frame.to_csv(project.root / "data" / name, sep="|", index=False)
    return f"data/{name}"


def _configure(project, *, plugins=("scripts/kinds.py",), options=None, scale: object = 0.5, body=KINDS) -> None:
    (project.root / "scripts" / "kinds.py").write_text(body.replace("MODULE", ""))
    config = yaml.safe_load(project.config_path.read_text())
    config["data"] = {"source": _pipes(project), "label": "species", **({"options": options} if options else {})}
    config["transform"] = [{"op": "impute", "strategy": "median"}, {"op": "center", "scale": scale},
                           {"op": "onehot"}]
    config["train"] = {**config.get("train", {}), "epochs": 2}
    config["monitor"] = {"tests": {"numeric": {"test": "meanshift", "limit": 0.5}}}
    config["plugins"] = list(plugins)
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_project_plugins_of_each_kind_run_the_pipeline_predict_and_monitor(project, tmp_path):
    from blase.deploy import predict
    from blase.monitor import Monitor

    _configure(project)
    first = Pipeline(project).run()
    assert first.status == "finished"
    assert first.steps["extract"].details["plugin"]["name"] == "pipes"
    package = project.models_dir / project.name / "v1"
    saved = json.loads((package / "transform.json").read_text())["operations"][1]
    assert saved["op"] == "center" and saved["plugin"]["version"] == "1.0"
    assert "ref" not in saved and "class" not in saved  # found again by name, never by a path
    assert set(saved["state"]["means_"]) >= {"bill_length_mm", "body_mass_g"}

    again = Pipeline(project).run()
    assert set(again.cached) >= {"extract", "transform", "prepare"}
    _configure(project, scale=0.25)
    changed = Pipeline(project).run()
    assert changed.reasons["transform"] == ["transform[1].scale 0.5 -> 0.25"]
    assert "extract" in changed.cached

    new = _pipes(project, "new.pipes", shift=900.0)
    scored = predict(project, project.name, project.root / new, tmp_path / "scores.parquet")
    assert scored.rows == 344
    result = Monitor(project.name, project=project, plots=False, track=False).check(new)
    tests = {c.column: c for c in result.columns}
    assert tests["body_mass_g"].test == "meanshift" and tests["body_mass_g"].drifted
    assert not tests["bill_length_mm"].drifted and tests["island"].test != "meanshift"  # categorical: built-in


def test_each_kind_failing_is_a_clear_error_naming_the_plugin(project, cli, monkeypatch):
    _configure(project)
    for where, message in (("read", "source plugin 'pipes' (scripts/kinds.py) failed reading data/penguins.pipes: "
                                    "ValueError: read broke"),
                           ("fit", "(operation plugin 'center' (scripts/kinds.py)): ValueError: fit broke")):
        monkeypatch.setenv("KINDS_FAIL", where)
        result = cli("run", cwd=project.root)
        assert result.exit_code != 0 and "Traceback" not in result.stdout + result.stderr
        assert message in result.stderr, result.stderr
    monkeypatch.delenv("KINDS_FAIL")
    assert cli("run", cwd=project.root).exit_code == 0
    monkeypatch.setenv("KINDS_FAIL", "test")
    result = cli("monitor", project.name, "data/penguins.pipes", cwd=project.root)
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert "drift_test plugin 'meanshift' (scripts/kinds.py) failed on column" in result.stderr
    monkeypatch.delenv("KINDS_FAIL")

    # a plugin's model gone: the saved transform names the plugin and how to get it back
    config = yaml.safe_load(project.config_path.read_text())
    config["plugins"] = []
    config["monitor"] = {}
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = cli("predict", project.name, "data/penguins.csv", "--out", "outputs/s.parquet", cwd=project.root)
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert "uses the operation plugin 'center' (version 1.0, from scripts/kinds.py), which is not installed" \
        in result.stderr
    assert "list scripts/kinds.py" in result.stderr


def test_wrong_options_name_the_line_and_key(project, cli):
    _configure(project, scale=0.5)
    text = project.config_path.read_text().replace("scale: 0.5", "scal: 0.5")
    project.config_path.write_text(text)
    line = text.splitlines().index("  scal: 0.5") + 1
    result = cli("run", cwd=project.root)
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    expected = (f"unknown key 'scal' at transform[1].scal (line {line}) for operation plugin 'center' "
                "(scripts/kinds.py); did you mean 'scale'?")
    assert expected in result.stderr
    checked = cli("check", cwd=project.root)  # found before anything runs
    assert checked.exit_code != 0 and expected in checked.stderr

    _configure(project, options={"delimitr": ","})
    result = cli("run", cwd=project.root)
    assert "unknown key 'delimitr' at data.options.delimitr" in result.stderr and "did you mean 'delimiter'" \
        in result.stderr

    _configure(project, scale="lots")
    result = cli("run", cwd=project.root)
    assert "transform[1].scale" in result.stderr and "'lots'" in result.stderr


def test_a_built_in_name_two_plugins_with_one_name_and_an_unknown_op_are_refused(project, cli):
    _configure(project, body=KINDS.replace('name="center"', 'name="impute"'))
    result = cli("run", cwd=project.root)
    assert "operation plugin 'impute' (scripts/kinds.py) takes the name of Blase's built-in operation 'impute'" \
        in result.stderr
    _configure(project, body=KINDS.replace('suffixes=(".pipes",)', 'suffixes=(".csv",)'))
    result = cli("run", cwd=project.root)
    assert "claims .csv, which Blase's built-in readers own" in result.stderr

    _configure(project, plugins=("scripts/kinds.py", "scripts/other.py"))
    (project.root / "scripts" / "other.py").write_text(KINDS.replace("MODULE", ""))
    result = cli("run", cwd=project.root)
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert "two operation plugins are named 'center': scripts/kinds.py and scripts/other.py" in result.stderr

    _configure(project)
    project.config_path.write_text(project.config_path.read_text().replace("op: center", "op: centre"))
    result = cli("run", cwd=project.root)
    assert ("blase.yaml transform[1].op names the operation 'centre', which is neither built in nor an "
            "installed operation plugin; did you mean 'center'?") in result.stderr


# -- an installed package -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``blase-kinds`` (one plugin of each kind), built by pip and installed into a folder."""
    src = tmp_path_factory.mktemp("src")
    (src / "blase_kinds").mkdir()
    (src / "blase_kinds" / "_impl.py").write_text(KINDS.split("plugins = [")[0])
    manifest = "from blase.plugins import Plugin\n\nplugins = [" + KINDS.split("plugins = [")[1]
    (src / "blase_kinds" / "__init__.py").write_text(manifest.replace("MODULE", "blase_kinds._impl"))
    return install_plugin_package(src, "blase-kinds", "1.0", "blase_kinds", "kinds = \"blase_kinds:plugins\"",
                                  tmp_path_factory.mktemp("site"))


def test_installed_plugins_of_each_kind_are_used_by_name(installed, project, blase_exe):
    env = {"PYTHONPATH": str(installed)}
    listed = {p["name"]: p for p in json.loads(blase_exe("plugins", "--json", cwd=project.root, env=env).stdout)}
    assert {listed[n]["kind"] for n in ("center", "pipes", "meanshift")} == {"operation", "source", "drift_test"}
    assert listed["pipes"]["suffixes"] == [".pipes"] and listed["center"]["origin"].startswith("package blase-kinds 1.0")
    _configure(project, plugins=())
    ran = blase_exe("run", cwd=project.root, env=env, timeout=300)
    assert ran.exit_code == 0, ran.stderr
    new = _pipes(project, "new.pipes", shift=900.0)
    scored = blase_exe("predict", project.name, new, "--out", "outputs/s.parquet", cwd=project.root, env=env)
    assert scored.exit_code == 0, scored.stderr
    checked = blase_exe("monitor", project.name, new, "--json", cwd=project.root, env=env, timeout=300)
    assert checked.exit_code == 0, checked.stderr
    columns = {c["column"]: c for c in json.loads(checked.stdout)["columns"]}
    assert columns["body_mass_g"]["test"] == "meanshift" and columns["body_mass_g"]["drifted"]
    # without the package: the saved transform says which package to install
    gone = blase_exe("predict", project.name, "data/penguins.csv", "--out", "outputs/t.parquet", cwd=project.root)
    assert gone.exit_code != 0 and "Traceback" not in gone.stderr
    assert "uses the operation plugin 'center' (version 1.0, from package blase-kinds 1.0" in gone.stderr
    assert "pip install blase-kinds" in gone.stderr
