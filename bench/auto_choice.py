"""Why ``train.model: auto`` keeps what it keeps on small data: a diagnosis, split by split.

Run from the repository root (needs the ``bench`` extra)::

    python bench/auto_choice.py --only wine,penguins --seeds 42,1,2,3 --repeats 3
    python bench/auto_choice.py --only wine --seeds 42 --save wine.npz

For each data set and seed, the default path runs through the real CLI as in
``bench/quality.py`` (``create``, ``schema --write``, ``run``), then, in this process, on the
run's own prepared shards and ``train:`` section:

- each candidate ``auto`` compares there (glm, kernel, mlp, lightgbm) is scored out of fold by ``auto``'s own folds
  (``--repeats`` times, each repeat another seeded partition of train + val), and
- each candidate is fitted as its own kind would be (refit on train + val) and scored on the
  test rows no model saw;

then every selection rule in :data:`RULES` picks from the same out-of-fold scores, and its
pick is scored on the test rows. So one run compares the rules side by side on the same
splits, the same fits and the same test rows: the old rule (one 5-fold partition, accuracy,
the blend kept whenever it scores better) against the candidate remedies. scikit-learn's
``LogisticRegression(C=1)`` / ``RidgeCV`` and ``HistGradientBoosting`` are fitted on the same
rows, as in ``bench/quality.py``.

Prints tables; nothing here is a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality

from blase.config import load_config
from blase.model import FitContext, TrainingData, fit_model, load_trained, model_kind
from blase.model._auto import AutoOptions, _folds, _val_scores, repeat_count
from blase.model._ensemble import blend_scores
from blase.model._select import Choice, choose, row_losses

CANDIDATES = AutoOptions().candidates


@dataclasses.dataclass
class Split:
    """One split's material: each candidate's out-of-fold scores per repeat (rows of train +
    val, in order), their labels, each candidate's test scores and the test labels."""

    task: str
    oof: dict[str, list[np.ndarray]]
    y: np.ndarray
    test: dict[str, np.ndarray]
    y_test: np.ndarray
    linear: float
    hgb: float
    seed: int = 0


def _oof(data: TrainingData, ctx: FitContext, seed: int, repeats: int, scratch: Path) -> dict[str, list[np.ndarray]]:
    o = AutoOptions()
    quiet = ctx.train.model_copy(update={"refit": False})
    rows = data.rows("train") + data.rows("val")
    out: dict[str, list[np.ndarray]] = {n: [] for n in _candidates(rows)}
    for r in range(repeats):
        folds = _folds(data, o, seed + 1000 * r, scratch / f"r{r}")
        for name in out:
            z_all: np.ndarray | None = None
            for i, (fold, at) in enumerate(folds):
                sub = dataclasses.replace(ctx, out_dir=scratch / f"r{r}" / name / f"fold{i}", train=quiet, track=False)
                Path(sub.out_dir).mkdir(parents=True, exist_ok=True)
                kind = model_kind(name, {})
                kind.fit(fold, sub)
                z, _ = _val_scores(kind, fold, "test")
                if z_all is None:
                    z_all = np.empty((rows, *z.shape[1:]))
                z_all[at] = z
            out[name].append(z_all)
    return out


def _candidates(rows: int) -> list[str]:
    """The candidates ``auto`` compares on ``rows`` rows of train + val."""
    o = AutoOptions()
    return [n for n in o.candidates if n not in o.small_only or rows <= o.small_rows]


def _test(shards: Path, ctx: FitContext, scratch: Path) -> dict[str, np.ndarray]:
    data = TrainingData(shards)
    out = {}
    for name in _candidates(data.rows("train") + data.rows("val")):
        folder = scratch / "full" / name
        fit_model(model_kind(name, {}), shards, dataclasses.replace(ctx, out_dir=folder, track=None))
        out[name], _ = _val_scores(load_trained(folder), data, "test")
    return out


def measure(ds: quality.DataSet, seed: int, repeats: int, args: argparse.Namespace) -> Split:
    frame = ds.load(args)
    with tempfile.TemporaryDirectory(prefix=f"blase-choice-{ds.name}-") as tmp:
        # glm alone through the CLI: the split, the transform and the train: section are what
        # auto would get; the rules below replay auto's choice on the same folds
        result = quality.run_blase(ds, frame, Path(tmp), [f"seed={seed}", "train.model=glm"])
        project = Path(tmp) / "proj"
        config = load_config(project / "blase.yaml")
        shards = quality._step_out(project, "prepare")
        data = TrainingData(shards)
        ctx = FitContext(out_dir=Path(tmp) / "x", seed=seed, train=config.train)
        oof = _oof(data, ctx, seed, repeats, Path(tmp) / "oof")
        test = _test(shards, ctx, Path(tmp))
        y = np.concatenate([data.matrix("train")[1], data.matrix("val")[1]])
        y_test = data.matrix("test")[1]
    linear, hgb = quality.run_sklearn(ds, frame, result.train_ids, result.test_ids)
    return Split(data.task, oof, y, test, y_test, linear, hgb, seed)


def test_score(split: Split, weights: dict[str, float]) -> float:
    """Accuracy or R2 on the test rows of the blend ``weights`` of candidates refit on train + val."""
    names = list(weights)
    z = blend_scores([split.test[n] for n in names], np.array([weights[n] for n in names]), split.task)
    losses = row_losses(z, split.y_test, split.task)
    if split.task == "regression":
        y = split.y_test.astype(np.float64)
        return float(1.0 - losses["sq"].sum() / ((y - y.mean()) ** 2).sum())
    return float(1.0 - losses["err"].mean())


def _rule(repeats: int | None, **kw: object) -> Callable[[Split], Choice]:
    """A rule reading ``repeats`` partitions of the folds (None: as many as ``auto`` would)."""

    def pick(split: Split) -> Choice:
        n = repeats or repeat_count(len(split.y), AutoOptions())
        return choose({name: v[:n] for name, v in split.oof.items()}, split.y, split.task, order=CANDIDATES,
                      seed=split.seed, **kw)  # type: ignore[arg-type]

    return pick


#: name -> the rule: how many repeats of the folds it reads, and its options
RULES: dict[str, Callable[[Split], Choice]] = {
    "old (1x5, blend if better)": _rule(1, metric="accuracy", one_se_blend=False, bags=0),
    "default (auto's repeats, logloss, lowest single, bagged blend if 1 SE better)": _rule(None),
    "prefer_simpler (auto's repeats, logloss, 1-SE between all, bagged)": _rule(None, simpler=True),
    "1x5, 1-SE": _rule(1, metric="accuracy", one_se_blend=True, simpler=True, bags=0),
    "3x5, 1-SE": _rule(3, metric="accuracy", one_se_blend=True, simpler=True, bags=0),
    "3x5, 1-SE, bagged": _rule(3, metric="accuracy", one_se_blend=True, simpler=True, bags=20),
    "3x5, logloss, 1-SE": _rule(3, metric="logloss", one_se_blend=True, simpler=True, bags=0),
    "3x5, logloss, bagged, blend if better": _rule(3, metric="logloss", one_se_blend=False, bags=20),
    "3x5, accuracy, bagged, blend if better": _rule(3, metric="accuracy", one_se_blend=False, bags=20),
    "prefer_simpler within half an SE": _rule(None, simpler=True, margin=0.5),
}


def _short(c: Choice) -> str:
    if len(c.weights) == 1:
        return next(iter(c.weights))
    return "ens(" + " ".join(f"{n} {w:.2f}" for n, w in c.weights.items()) + ")"


def rules_table(splits: list[Split]) -> str:
    """Each rule's pick per split and its mean test score, beside scikit-learn's."""
    lines = ["", "| rule | mean test | per split: kept (test) |", "| --- | ---: | --- |"]
    for rule, pick in RULES.items():
        picks = [pick(s) for s in splits]
        scores = [test_score(s, c.weights) for s, c in zip(splits, picks, strict=True)]
        lines.append(f"| {rule} | {np.mean(scores):.3f} | "
                     + "; ".join(f"{_short(c)} ({t:.3f})" for c, t in zip(picks, scores, strict=True)) + " |")
    lines.append(f"| linear | {np.mean([s.linear for s in splits]):.3f} | |")
    lines.append(f"| HGB | {np.mean([s.hgb for s in splits]):.3f} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated data set names (see bench/quality.py)")
    parser.add_argument("--load", type=Path, default=None,
                        help="replay the rules on splits saved by --save, instead of measuring")
    parser.add_argument("--seeds", default="42,1,2,3")
    parser.add_argument("--repeats", type=int, default=3, help="partitions of the folds measured per split")
    parser.add_argument("--flights-rows", type=int, default=50_000)
    parser.add_argument("--save", type=Path, default=None, help="pickle the measured splits here")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if args.load:
        import pickle

        for name, saved in pickle.loads(args.load.read_bytes()).items():
            splits = [s if isinstance(s, Split) else Split(**s) for s in saved]
            for split, seed in zip(splits, seeds, strict=False):
                split.seed = split.seed or seed  # saved before splits kept their seed
            print(f"\n## {name}\n{rules_table(splits)}")
        return 0
    wanted = [n.strip() for n in args.only.split(",") if n.strip()]
    by_name = {d.name: d for d in quality.DATASETS}
    all_splits: dict[str, list[Split]] = {}
    for name in wanted:
        ds = by_name[name]
        splits = []
        print(f"\n## {name}\n", flush=True)
        print("| seed | " + " | ".join(f"{n} oof error / test" for n in CANDIDATES) + " | linear | HGB |")
        print("| --- | " + " | ".join("---" for _ in CANDIDATES) + " | ---: | ---: |")
        for seed in seeds:
            split = measure(ds, seed, args.repeats, args)
            splits.append(split)
            cells = []
            for n in CANDIDATES:
                if n not in split.oof:
                    cells.append("-")
                    continue
                oof = np.mean([row_losses(z, split.y, split.task)["sq" if split.task == "regression" else "err"].mean()
                               for z in split.oof[n]])
                cells.append(f"{oof:.4f} / {test_score(split, {n: 1.0}):.3f}")
            print(f"| {seed} | " + " | ".join(cells) + f" | {split.linear:.3f} | {split.hgb:.3f} |",
                  flush=True)
        all_splits[name] = splits
        print(rules_table(splits), flush=True)
    if args.save:
        import pickle

        args.save.write_bytes(pickle.dumps({k: [dataclasses.asdict(s) for s in v] for k, v in all_splits.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
