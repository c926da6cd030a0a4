"""`blase schema` from the command line: report, JSON, and --write into blase.yaml."""

from __future__ import annotations

import json

from blase.config import load_config


def test_schema_json_on_the_penguins_data(cli, project):
    r = cli("schema", "data/penguins.csv", "--label", "species", "--json", cwd=project.root)
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    kinds = {c["name"]: c["kind"] for c in report["columns"]}
    assert kinds["island"].startswith("categorical")
    assert kinds["bill_length_mm"] == "continuous"
    sex = next(c for c in report["columns"] if c["name"] == "sex")
    assert 0 < sex["null_share"] < 0.1  # 11 of 344 penguins have no recorded sex


def test_schema_write_puts_a_valid_transform_into_blase_yaml(cli, project):
    before = project.config_path.read_text()
    r = cli("schema", "data/penguins.csv", "--label", "species", "--write", cwd=project.root)
    assert r.exit_code == 0, r.stderr
    assert "wrote the suggested transform" in r.stdout
    after = project.config_path.read_text()
    assert after != before
    config = load_config(project.config_path)
    assert config.data.label == "species"
    ops = [step.op for step in config.transform]
    assert "impute" in ops and "onehot" in ops
    assert "# Blase project" in after  # comments outside the transform block survive


def test_schema_of_a_missing_file(cli, project):
    r = cli("schema", "data/nope.csv", cwd=project.root)
    assert r.exit_code == 1
    assert "nope.csv" in r.stderr and "Traceback" not in r.stderr


def test_schema_write_points_data_source_at_the_profiled_file(cli, project):
    # the template names the bundled penguins; profiling another file must switch to it
    (project.root / "data" / "birds.csv").write_text(
        "wing,beak,kind\n" + "".join(f"{i % 7},{i % 5}.5,{'ab'[i % 2]}\n" for i in range(60))
    )
    r = cli("schema", "data/birds.csv", "--label", "kind", "--write", cwd=project.root / "scripts")
    assert r.exit_code == 0, r.stderr
    config = load_config(project.config_path)
    assert config.data.source == "data/birds.csv" and config.data.label == "kind"
    assert "# CSV, Parquet" in project.config_path.read_text()  # the line's comment is kept
