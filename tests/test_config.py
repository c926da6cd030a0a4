"""blase.yaml validation: one problem per mistake, each naming line and key."""

from __future__ import annotations

import pytest

from blase.config import config_from_dict, config_from_text, load_config, parse_overrides
from blase.errors import ConfigError

VALID = """\
project: demo
seed: 7
data:
  source: data/x.csv
  label: y
train:
  epochs: 3
"""


def test_minimal_file_gets_defaults():
    cfg = config_from_text("project: p\n")
    assert cfg.seed == 42
    assert cfg.train.epochs == 10
    assert cfg.prepare.split.train == pytest.approx(0.8)


def test_valid_file_round_trips_through_python():
    cfg = config_from_text(VALID)
    again = config_from_dict(cfg.model_dump(mode="json"))
    assert again == cfg
    assert cfg.train.epochs == 3 and cfg.data.label == "y"


def test_misspelt_key_names_line_path_and_suggestion():
    text = "\n".join(["project: demo"] + ["# filler"] * 11 + ["train:", "  epoch: 5", ""])
    with pytest.raises(ConfigError) as info:
        config_from_text(text)
    (problem,) = info.value.problems
    assert problem.line == 14
    assert problem.key == "train.epoch"
    assert "unknown key 'epoch' at train.epoch (line 14); did you mean 'epochs'?" in str(info.value)


def test_every_problem_is_reported_once_in_line_order():
    text = """\
project: demo
data:
  lable: y
transform:
  - op: impute
    strategy: middle
train:
  lr: -1
  optimizer: adamz
memory: lots
"""
    with pytest.raises(ConfigError) as info:
        config_from_text(text)
    problems = info.value.problems
    assert [p.line for p in problems] == [3, 6, 8, 9, 10]
    text_out = str(info.value)
    assert "did you mean 'label'" in text_out
    assert "transform[0].strategy (line 6)" in text_out
    assert "train.lr (line 8)" in text_out and "greater than 0" in text_out
    assert "'adam', 'adamw' or 'sgd'" in text_out
    assert "memory (line 10)" in text_out


def test_missing_required_key_and_unknown_key_without_close_match():
    with pytest.raises(ConfigError) as info:
        config_from_text("seed: 3\nzebra: 1\n")
    text = str(info.value)
    assert "missing required key project" in text
    assert "unknown key 'zebra' at zebra (line 2); valid keys here:" in text


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(ConfigError) as info:
        config_from_text("project: p\ntrain:\n  epochs: [1, 2\n")
    assert "YAML syntax error" in str(info.value)
    assert info.value.problems[0].line is not None


def test_top_level_must_be_a_mapping():
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        config_from_text("- a\n- b\n")


def test_split_must_sum_to_one_and_transform_needs_op_or_call():
    text = "project: p\nprepare:\n  split: {train: 0.5, val: 0.1, test: 0.1}\ntransform:\n  - columns: [a]\n"
    with pytest.raises(ConfigError) as info:
        config_from_text(text)
    text_out = str(info.value)
    assert "add up to 1" in text_out
    assert "exactly one of 'op'" in text_out


def test_load_config_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "blase.yaml")


def test_overrides_parse_values_as_yaml():
    assert parse_overrides(["train.epochs=5", "train.hidden=[8, 4]", "seed=1", "data.label=y"]) == {
        "train": {"epochs": 5, "hidden": [8, 4]},
        "seed": 1,
        "data": {"label": "y"},
    }
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        parse_overrides(["train.epochs"])
