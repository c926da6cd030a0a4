"""What a step does after a run goes through the Step contract: ``blase reproduce --verify``
asks each step to compare its outputs, ``blase restore`` asks it to write its data, and the
review under ``blase run --autonomy`` asks it for facts and signals. A plugin's step gets the
defaults, or its own behaviour when it overrides them, exactly as the built-in steps do.
"""

from __future__ import annotations

import json

import pytest
import yaml

from blase.pipeline import Pipeline, default_registry
from blase.reproduce import RestoreError, reproduce, restore
from blase.steps import ReviewContext, Step, StepResult, TrainedModel, Verification

FAST = ["train.model=mlp", "train.epochs=2", "evaluate.plots=false", "deploy.onnx=false"]

# A step after evaluate that writes a deterministic report and a stamp that differs per run.
# STAMPED makes the stamp random; OVERRIDES adds the step's own verify, restore and review.
PLUGIN = '''
import json
import secrets
from dataclasses import dataclass

from blase.plugins import Plugin
from blase.steps import Step, StepOutput, StepResult, StepReview, Verification


@dataclass(kw_only=True)
class Scorecard(StepOutput):
    file: str = "scorecard.json"
    accuracy: float = 0.0


class ScorecardStep(Step):
    name = "scorecard"
    needs = ("evaluate",)
    after = "evaluate"
    output_type = Scorecard
    restore_needs = RESTORE_NEEDS

    def run(self, inputs, out_dir, ctx):
        accuracy = inputs["evaluate"].metrics["accuracy"]
        (out_dir / "scorecard.json").write_text(json.dumps({"accuracy": accuracy}))
        (out_dir / "stamp.txt").write_text(STAMP)
        return StepResult(step=self.name, output=Scorecard(accuracy=accuracy))
OVERRIDES

plugin = Plugin(name="scorecard", kind="step", target=":ScorecardStep")
'''

OVERRIDES = '''
    def verify(self, original, again):
        same = {k: v for k, v in original.items() if k != "stamp.txt"}
        return Verification(differ=sorted(k for k in set(same) | set(again) - {"stamp.txt"}
                                          if same.get(k) != again.get(k)))

    def restore(self, output, out_dir, inputs, ctx):
        out_dir.mkdir()
        evaluation = inputs["evaluate"]
        (out_dir / "restored.json").write_text(json.dumps(
            {"accuracy": output.accuracy, "from_evaluate": sorted(p.name for p in evaluation.root.iterdir()),
             "code_root": str(ctx.code_root)}))

    def review(self, result, ctx):
        if result is None or not ctx.finished:
            return StepReview()
        return StepReview(lines=[f"Scorecard accuracy {result.output.accuracy:.3f}"],
                          signals=["the scorecard wants a look"])
'''


def _use_plugin(project, *, stamped: bool, overrides: bool) -> None:
    body = (PLUGIN.replace("STAMP", "secrets.token_hex(4)" if stamped else "'same'")
            .replace("RESTORE_NEEDS", '("evaluate",)' if overrides else "()")
            .replace("OVERRIDES", OVERRIDES if overrides else ""))
    (project.root / "scripts" / "scorecard.py").write_text(body)
    config = yaml.safe_load(project.config_path.read_text())
    config["plugins"] = [{"path": "scripts/scorecard.py"}]
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_the_default_verify_compares_every_file_and_reports_weights_only_for_a_weights_step():
    step = default_registry().get("train")
    assert step.weights_file == "model.safetensors"
    same = step.verify({"model.safetensors": "a", "model.json": "b"}, {"model.safetensors": "a", "model.json": "b"})
    assert same == Verification(differ=[], weights_identical=True)
    other = step.verify({"model.safetensors": "a"}, {"model.safetensors": "c", "history.json": "d"})
    assert other == Verification(differ=["history.json", "model.safetensors"], weights_identical=False)
    assert default_registry().get("prepare").verify({"x": "1"}, {"x": "2"}).weights_identical is None


def test_a_plugin_step_is_verified_restored_and_reviewed_with_the_defaults(project, tmp_path):
    _use_plugin(project, stamped=False, overrides=False)
    first = Pipeline(project, overrides=FAST).run()
    assert "scorecard" in first.steps

    again = reproduce(project, first.run_id, verify=True)
    assert again.steps[-1] == "scorecard"  # reproduced up to the step before deploy
    assert again.compared["scorecard"] is True and again.identical and again.weights_identical is True

    restored = restore(project, first.run_id, "scorecard", tmp_path / "card")
    assert restored.source == "store"
    assert json.loads((tmp_path / "card" / "scorecard.json").read_text())["accuracy"] > 0.5
    with pytest.raises(RestoreError, match="steps with data: extract, transform, prepare, train, evaluate, scorecard"):
        restore(project, first.run_id, "deploy", tmp_path / "nope")

    step = Pipeline(project).registry.get("scorecard")
    result = first.steps["scorecard"]
    review = step.review(result, ReviewContext(project=project, run_id=first.run_id, state="ran"))
    assert review.lines == [f"Output Scorecard: file scorecard.json, accuracy {result.output.accuracy}"]
    assert review.signals == []
    assert step.review(None, ReviewContext(project=project, run_id=first.run_id, state="failed")).lines == []
    assert step.review_tools == ("propose_config_change", "accept_step") and not step.review_inputs


def test_a_plugin_step_that_overrides_verify_restore_and_review_is_asked_for_them(project, tmp_path):
    _use_plugin(project, stamped=True, overrides=True)
    first = Pipeline(project, overrides=FAST).run()

    again = reproduce(project, first.run_id, verify=True)  # the stamp differs, the step says it does not matter
    assert again.compared["scorecard"] is True and again.identical, again.summary

    restored = restore(project, first.run_id, "scorecard", tmp_path / "card")
    data = json.loads((tmp_path / "card" / "restored.json").read_text())
    assert restored.source == "store" and data["accuracy"] == first.steps["scorecard"].output.accuracy
    assert "metrics.json" in data["from_evaluate"]  # the evaluate output it needs, restored first
    assert data["code_root"] == str(project.root)  # the run's recorded code (the project: unchanged)
    assert not list(tmp_path.glob(".card*"))  # the temporary folders are gone

    step = Pipeline(project).registry.get("scorecard")
    review = step.review(first.steps["scorecard"], ReviewContext(project=project, run_id=first.run_id, state="ran"))
    assert review.signals == ["the scorecard wants a look"]


def test_a_stamped_plugin_step_without_its_own_verify_diverges_and_names_the_file(project):
    _use_plugin(project, stamped=True, overrides=False)
    first = Pipeline(project, overrides=FAST).run(to_step="scorecard")
    again = reproduce(project, first.run_id, verify=True)
    assert again.compared["scorecard"] is False and not again.identical
    assert again.divergence.step == "scorecard" and again.divergence.files == ["stamp.txt"]
    assert again.summary.startswith("diverged at scorecard: nondeterministic op in scorecard")


def test_the_built_in_steps_review_through_the_contract(project):
    result = Pipeline(project, overrides=FAST).run(to_step="train")
    train = default_registry().get("train")
    ctx = ReviewContext(project=project, run_id=result.run_id, state="ran", config={"train": {"epochs": 2}})
    review = train.review(result.steps["train"], ctx)
    assert review.lines[0].startswith("Model mlp, epochs run 2 (train.epochs=2)")
    assert any("the best validation loss came at the last epoch" in s for s in review.signals)
    transform = default_registry().get("transform")
    missing = transform.review(None, ReviewContext(project=project, run_id=result.run_id, state="missing",
                                                   config={"transform": [{"op": "impute"}]}))
    assert missing.lines == ["Transform config now:", "  transform.0: {op: impute}"]
    assert isinstance(result.steps["train"].output, TrainedModel)


def test_a_step_record_knows_whether_it_came_from_the_cache():
    assert StepResult(step="x").cached_from is None and not StepResult(step="x").cache_hit
    hit = StepResult(step="x", details={"cache": {"hit": True, "from_run": "abc"}})
    assert hit.cache_hit and hit.cached_from == "abc"
    ran = StepResult(step="x", details={"cache": {"hit": False, "key": "k"}, "rejects_file": "outputs/r.csv"})
    assert not ran.cache_hit and ran.cached_from is None and ran.rejects_file == "outputs/r.csv"
    assert issubclass(type(default_registry().get("deploy")), Step)
