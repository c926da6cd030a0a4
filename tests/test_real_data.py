"""The default path on real packaged data, through the CLI a user types.

``blase create``, ``blase schema DATA --label L --write``, ``blase run --json``: nothing is
tuned here. Whatever ``schema --write`` and the project template set is what trains, so a
change to the default model, the template or the schema suggestions that costs real-data
quality fails here. ``bench/quality.py`` has the full comparison against scikit-learn.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

vega_datasets = pytest.importorskip("vega_datasets")
palmerpenguins = pytest.importorskip("palmerpenguins")
sklearn_datasets = pytest.importorskip("sklearn.datasets")


def _default_run(cli, tmp_path: Path, frame, name: str, label: str) -> dict[str, float]:
    """The test metrics of the default path on ``frame`` written as ``data/NAME.csv`` (the
    project is ``tmp_path / "proj"``)."""
    r = cli("create", "proj", "--no-example", cwd=tmp_path)
    assert r.exit_code == 0, r.stderr
    root = tmp_path / "proj"
    frame.to_csv(root / "data" / f"{name}.csv", index=False)
    r = cli("schema", f"data/{name}.csv", "--label", label, "--write", cwd=root)
    assert r.exit_code == 0, r.stderr
    r = cli("run", "--json", cwd=root)
    assert r.exit_code == 0, r.stderr
    run = json.loads(r.stdout)
    assert run["status"] == "finished"
    return {k.removeprefix("test."): v for k, v in run["metrics"].items() if k.startswith("test.")}


@pytest.mark.filterwarnings("ignore:The 'convert_dates' keyword:DeprecationWarning")
def test_cars_regression_with_nulls_a_category_and_a_date(cli, tmp_path):
    # 406 cars: 8 without a label, 6 without horsepower, Origin a category, Year a date,
    # Name unique per car (schema drops it)
    metrics = _default_run(cli, tmp_path, vega_datasets.local_data.cars(), "cars",
                           "Miles_per_Gallon")
    assert metrics["r2"] > 0.7


@pytest.mark.filterwarnings("ignore:The 'convert_dates' keyword:DeprecationWarning")
def test_cars_predict_answers_in_miles_per_gallon(cli, tmp_path):
    # the built-in regression model learns the standardised label; `blase predict` (numpy
    # runner) once returned those z-scores (-1.1 for an 18 mpg car) instead of mpg
    cars = vega_datasets.local_data.cars()
    _default_run(cli, tmp_path, cars, "cars", "Miles_per_Gallon")
    root = tmp_path / "proj"
    known = cars.dropna(subset=["Miles_per_Gallon"])
    known.drop(columns=["Miles_per_Gallon"]).to_csv(root / "data" / "new.csv", index=False)
    r = cli("predict", "proj", "data/new.csv", "--out", "outputs/new.csv", cwd=root)
    assert r.exit_code == 0, r.stderr
    got = pd.read_csv(root / "outputs" / "new.csv")["prediction"].to_numpy()
    truth = known["Miles_per_Gallon"].to_numpy()
    assert got.min() > 5 and got.max() < 60  # cars do 9 to 47 mpg; z-scores lie within +-3
    assert 1 - ((got - truth) ** 2).sum() / ((truth - truth.mean()) ** 2).sum() > 0.7


def test_penguins_classification(cli, tmp_path):
    metrics = _default_run(cli, tmp_path, palmerpenguins.load_penguins(), "penguins", "species")
    assert metrics["accuracy"] > 0.9


def test_breast_cancer_classification(cli, tmp_path):
    bunch = sklearn_datasets.load_breast_cancer(as_frame=True)
    frame = bunch.frame.copy()
    frame["target"] = [str(bunch.target_names[i]) for i in frame["target"]]  # as a CSV has them
    frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
    metrics = _default_run(cli, tmp_path, frame, "breast_cancer", "target")
    assert metrics["accuracy"] > 0.93
