"""Embedding drift: the MMD of a model's penultimate layer, reference (deploy) against new data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from blase.monitor import embedding_drift


def _kernel_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """MMD² (biased) written out from its definition, standardised by x, median bandwidth."""
    mean, std = x.mean(axis=0), x.std(axis=0)
    z = (np.concatenate([x, y]) - mean) / std
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=2)
    width = np.median(d2[np.triu_indices(len(z), k=1)])
    k = np.exp(-d2 / width)
    n = len(x)
    return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())


def test_the_mmd_is_its_definition_and_a_shift_is_found():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, (200, 8))
    same = embedding_drift(reference, rng.normal(0, 1, (60, 8)), seed=1)
    moved = embedding_drift(reference, rng.normal(0.8, 1, (60, 8)), seed=1)
    assert not same["drifted"] and same["p_value"] > 0.05
    assert moved["drifted"] and moved["p_value"] < 0.01 and moved["mean_shift"] > 0.6 > same["mean_shift"]
    y = rng.normal(0.8, 1, (60, 8))
    assert embedding_drift(reference, y, seed=2)["statistic"] == pytest.approx(_kernel_mmd(reference, y), rel=1e-9)
    # seeded: the same check gives the same p-value
    assert embedding_drift(reference, y, seed=2) == embedding_drift(reference, y, seed=2)


@pytest.mark.slow
def test_monitor_reports_the_cnn_embedding_drift_of_inverted_images(tmp_path, cli):
    from PIL import Image, ImageOps

    from blase.pipeline import Pipeline
    from blase.scaffold import create_project

    project = create_project(tmp_path / "digits", template="images")
    run = Pipeline(project, overrides=["train.epochs=4"]).run()
    assert run.run_id
    (package,) = (project.root / "models").glob("*/v1")
    reference = np.load(package / "reference_embeddings.npy")
    assert reference.shape == (500, 32)  # 500 training images, the last conv block's 32 channels
    images = sorted((project.root / "data" / "images").rglob("*.png"))
    for path in images[::3]:  # a third of the training images, black on white instead of white on black
        out = project.root / "data" / "inverted" / path.parent.name / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        ImageOps.invert(Image.open(path).convert("L")).save(out)
    checked = cli("monitor", package.parent.name, "data/inverted", "--json", cwd=project.root)
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["embedding"]["drifted"] and report["embedding"]["dimensions"] == 32
    assert any(n.startswith("embedding drift (32 dimensions") for n in report["notes"])
    new = json.loads(cli("monitor", package.parent.name, "data/new", "--json", cwd=project.root).stdout)
    assert new["embedding"]["current_rows"] > 0 and new["embedding"]["reference_rows"] == 500
