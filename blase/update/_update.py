"""``Update(model).run(new_data)``: retrain a deployed model on new data, and promote it only
when it is better.

1. The new rows are extracted and split (by a hash of the row's position and the seed) into
   a training part and a holdout (``update.holdout``, 20%).
2. ``replay``: a share of the training mix is drawn from the original run's extracted data
   (when that folder still exists), so the model does not forget what it knew.
3. ``finetune`` applies the package's fitted transform and trains from the deployed weights;
   ``retrain`` refits the transform and trains the same architecture from scratch. The label
   keeps the package's classes and codes.
4. The candidate and the current model are evaluated on the same new holdout, and (finetune)
   on the original run's test shards when they still exist.
5. The candidate becomes ``models/NAME/vN`` with its parent in ``package.json`` lineage
   (``parent_version``, ``update_run_id``) and its own reference profile; it is promoted only
   when asked to and when it wins on the new holdout's primary metric (accuracy, or RMSE for
   regression) by ``update.margin`` without losing more than ``update.tolerance`` on the
   original test set. Otherwise it stays a candidate and the result says why.

The whole update is one Track run (kind ``update``, parent = the model's run); a failure
(e.g. training diverges) is recorded there and leaves the current model current.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase._fs import write_json_atomic
from blase.errors import BlaseError
from blase.project import Project, find_project

__all__ = ["Update", "UpdateError", "UpdateResult"]

logger = logging.getLogger(__name__)

#: Train/val shares of the training mix (val picks the best epoch).
_FIT_SPLIT = (0.85, 0.15, 0.0)


class _Quiet:
    """A track that records nothing: the comparisons are logged once, by the update run."""

    def log_metrics(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log_artifact(self, *args: Any, **kwargs: Any) -> None:
        pass


class UpdateError(BlaseError):
    """A model cannot be updated: unlabelled or mismatched data, or the candidate failed."""


@dataclass
class UpdateResult:
    """What an update did (``to_json`` is what ``blase update --json`` prints)."""

    model: str
    parent_version: str
    mode: str
    run_id: str
    candidate_version: str | None = None
    promoted: bool = False
    current_version: str | None = None
    primary_metric: str = "accuracy"
    holdout: dict[str, dict[str, Any]] = field(default_factory=dict)
    original_test: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    wins: bool = False
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class Update:
    """Fine-tune or retrain a deployed model on new data; promote it only when it wins.

    Parameters
    ----------
    model:
        ``"NAME"``, ``"NAME@vN"``, a package folder or a :class:`~blase.deploy.ModelPackage`.
    project:
        The project (default: the one around the current folder).
    config:
        An :class:`~blase.config._models.UpdateConfig` (default: ``update:`` of ``blase.yaml``).
    memory:
        Memory budget of the data steps (default ``memory:`` of ``blase.yaml``).
    bad_rows:
        Malformed CSV rows: ``"error"`` (default), ``"skip"`` or ``"quarantine"``.

    Examples
    --------
    >>> result = Update("churn").run("data/march.csv", promote_if_better=True)  # doctest: +SKIP
    >>> result.promoted, result.reasons  # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any,
        *,
        project: Project | str | os.PathLike[str] | None = None,
        config: Any = None,
        memory: int | str | None = None,
        bad_rows: str = "error",
    ) -> None:
        self.model = model
        self.project = project
        self.config = config
        self.memory = memory
        self.bad_rows = bad_rows

    def run(
        self,
        new_data: Any,
        *,
        mode: str | None = None,
        replay: float | None = None,
        epochs: int | None = None,
        promote_if_better: bool = False,
    ) -> UpdateResult:
        """Build, evaluate and package a candidate from ``new_data`` (path, frame or table).

        Parameters
        ----------
        new_data:
            New raw rows with the model's input columns and its label.
        mode:
            ``"finetune"`` (from the deployed weights, with the saved transform) or
            ``"retrain"`` (refit the transform, train from scratch); default ``update.mode``.
        replay:
            Share of the training mix drawn from the original training data; default
            ``update.replay``.
        epochs:
            Training epochs; default ``update.epochs``, else ``train.epochs``.
        promote_if_better:
            Make the candidate current when it wins (see the module docstring).

        Raises
        ------
        UpdateError
            New data without the label, or a candidate whose training failed (the current
            model stays current; the failure is in the update's Track run).
        """
        from blase.config import UpdateConfig
        from blase.deploy import resolve_model
        from blase.track import Track

        project = self.project if isinstance(self.project, Project) else find_project(self.project)
        from blase.deploy import ModelPackage

        package = self.model if isinstance(self.model, ModelPackage) else resolve_model(project, str(self.model))
        project_config = project.config()
        cfg = self.config if self.config is not None else project_config.update
        cfg = UpdateConfig.model_validate({**cfg.model_dump(), **{k: v for k, v in
                                          {"mode": mode, "replay": replay, "epochs": epochs}.items() if v is not None}})
        memory = self.memory if self.memory is not None else project_config.memory
        started = time.perf_counter()
        with Track(f"update-{package.name}", project=project, parent=package.run_id, kind="update",
                   params={"model": package.name, "version": package.version, **cfg.model_dump(),
                           "data": new_data if isinstance(new_data, (str, os.PathLike)) else "in-memory table",
                           "promote_if_better": promote_if_better},
                   tags={"model": package.name}, sample_resources=False) as track:
            result = UpdateResult(package.name, package.version, cfg.mode, track.run_id)
            work = project.state_dir / "work" / track.run_id / "update"
            try:
                self._run(project, project_config, package, cfg, memory, new_data, work, track, result,
                          promote_if_better)
            except BaseException as exc:
                track.log_event("update_failed", error=f"{type(exc).__name__}: {exc}",
                                current_version=package.version)
                raise
            finally:
                shutil.rmtree(work / "scratch", ignore_errors=True)
            result.seconds = time.perf_counter() - started
            track.log_event("update", **result.to_json())
        return result

    # -- steps -------------------------------------------------------------------------------

    def _run(self, project: Project, pconfig: Any, package: Any, cfg: Any, memory: Any, new_data: Any,
             work: Path, track: Any, result: UpdateResult, promote_if_better: bool) -> None:
        from blase.deploy import current_version, promote
        from blase.monitor import primary_metric

        raw = self._extract(project, package, new_data, work / "extract", memory)
        fit_raw, holdout_raw = self._split(project, package, cfg, raw, work, memory, result, pconfig.seed)
        name, higher = primary_metric(package.task)
        result.primary_metric = name
        refit = cfg.mode == "retrain"
        transform = package.load_transform()
        fit_t = work / "transform-fit"
        transform.run(fit_raw, fit_t, memory=memory, fit=refit)
        cand_hold = self._prepare(package, pconfig, self._apply(transform, holdout_raw, work / "transform-holdout",
                                                                memory), work / "shards-holdout", memory, refit,
                                  split=(1.0, 0.0, 0.0))
        shards = self._prepare(package, pconfig, fit_t, work / "shards-fit", memory, refit, split=_FIT_SPLIT)
        if refit:
            cur_hold = self._prepare(package, pconfig, self._apply(package.load_transform(), holdout_raw,
                                                                   work / "transform-holdout-current", memory),
                                     work / "shards-holdout-current", memory, False, split=(1.0, 0.0, 0.0))
        else:
            cur_hold = cand_hold
        train_dir = work / "train"
        try:
            self._train(project, pconfig, package, cfg, shards, train_dir, track, result.notes)
        except BaseException as exc:
            raise UpdateError(
                f"training the candidate for {package.name} failed ({type(exc).__name__}: "
                f"{getattr(exc, 'message', exc)}); {package.name} {package.version} stays current",
                hint=f"see `blase inspect {track.run_id}`; try fewer epochs or a lower train.lr",
            ) from exc
        from blase.train import load_model

        candidate = load_model(train_dir)
        current = package.load_model()
        result.holdout = {
            "current": self._evaluate(current, cur_hold, work / "eval-holdout-current", "train"),
            "candidate": self._evaluate(candidate, cand_hold, work / "eval-holdout-candidate", "train"),
        }
        original = self._original_shards(project, package)
        if original is None:
            result.notes.append("original test set: the original run's shards no longer exist; not checked")
        elif refit:
            result.notes.append("original test set: not checked in retrain mode (the candidate refit its "
                                "transform, so the original shards do not fit it)")
        else:
            result.original_test = {
                "current": self._evaluate(current, original, work / "eval-original-current", "test"),
                "candidate": self._evaluate(candidate, original, work / "eval-original-candidate", "test"),
            }
        self._decide(result, cfg, name, higher)
        version = self._package(project, pconfig, package, cfg, train_dir, fit_t, shards, fit_raw, result, track,
                                work / "eval-holdout-candidate")
        result.candidate_version = version
        metrics = {f"holdout.{who}.{k}": v for who, m in result.holdout.items() for k, v in m.items()}
        metrics |= {f"original.{who}.{k}": v for who, m in result.original_test.items() for k, v in m.items()}
        track.log_metrics({k: v for k, v in metrics.items() if k.endswith((".accuracy", ".rmse", ".f1_macro",
                                                                               ".mae", ".r2", ".log_loss"))})
        if result.wins and promote_if_better:
            promote(project, package.name, version,
                    reason=f"update {track.run_id}: " + "; ".join(result.reasons))
            result.promoted = True
        elif result.wins:
            result.reasons.append("not promoted: pass promote_if_better (--promote-if-better) to promote it")
        result.current_version = current_version(project, package.name)

    def _extract(self, project: Project, package: Any, data: Any, out: Path, memory: Any) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from blase.deploy import DeployError, check_input_schema

        if isinstance(data, (str, os.PathLike)):
            from blase.extract import CSVOptions, Extract

            path = Path(data)
            if not path.is_absolute() and not path.exists():
                path = project.root / path
            csv = path.suffix.lower() in (".csv", ".tsv", ".txt")
            extract = Extract.like_training(str(path), package.info.get("extract_options"),
                                            CSVOptions(bad_rows=self.bad_rows) if csv else None, project=project)
            schema, shown = extract.schema(), str(data)
        else:
            table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
            schema, shown = table.schema, "in-memory table"
        try:
            check_input_schema(package.input_schema, schema, source=shown, label=package.label)
        except DeployError as exc:
            raise UpdateError(exc.message, hint=exc.hint) from None
        if package.label not in schema.names:
            raise UpdateError(f"{shown} has no label column {package.label!r}; an update learns from labelled rows",
                              hint=f"add the true {package.label!r} of the new rows, or use `blase monitor` "
                              "to check unlabelled data")
        if isinstance(data, (str, os.PathLike)):
            extract.to_parquet(out, memory=memory)
        else:
            out.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, out / "part-00000.parquet")
        return out

    def _split(self, project: Project, package: Any, cfg: Any, raw: Path, work: Path, memory: Any,
               result: UpdateResult, seed: int) -> tuple[Path, Path]:
        """``(training mix, holdout)`` Parquet files of raw columns."""
        from blase._duck import connect, sql_ident, sql_quote

        work.mkdir(parents=True, exist_ok=True)
        files = sorted(str(p) for p in raw.rglob("*.parquet"))
        cols = [*package.input_schema, package.label]
        if package.key and package.key not in cols and files and package.key in _names(files[0]):
            cols.append(package.key)  # the transform passes the key through (the split uses it)
        select = ", ".join(sql_ident(c) for c in cols)
        src = f"read_parquet([{', '.join(sql_quote(f) for f in files)}], file_row_number = true, filename = true)"
        # the file's name, not its path: the extract lives in a temporary folder, and a split
        # that depended on where it lies would change from one update to the next
        bucket = f"hash(parse_filename(filename), file_row_number, {int(seed)}) % 10000"
        cut = round(cfg.holdout * 10000)
        fit_raw, holdout_raw = work / "fit.parquet", work / "holdout.parquet"
        con = connect(memory, tmp_dir=project.tmp_dir)
        try:
            con.execute(f"COPY (SELECT {select} FROM {src} WHERE {bucket} >= {cut} ORDER BY filename, "
                        f"file_row_number) TO {sql_quote(str(work / 'new.parquet'))} (FORMAT parquet)")
            con.execute(f"COPY (SELECT {select} FROM {src} WHERE {bucket} < {cut} ORDER BY filename, "
                        f"file_row_number) TO {sql_quote(str(holdout_raw))} (FORMAT parquet)")
            n_new = con.execute(f"SELECT count(*) FROM read_parquet({sql_quote(str(work / 'new.parquet'))})").fetchone()[0]
            n_hold = con.execute(f"SELECT count(*) FROM read_parquet({sql_quote(str(holdout_raw))})").fetchone()[0]
            if n_new == 0 or n_hold == 0:
                raise UpdateError(f"too few new rows to train and hold out ({n_new} + {n_hold})",
                                  hint="give more labelled rows, or change update.holdout")
            original = self._original_extract(project, package)
            parts = [f"SELECT * FROM read_parquet({sql_quote(str(work / 'new.parquet'))})"]
            n_old = 0
            if cfg.replay > 0 and original is None:
                result.notes.append("replay skipped: the original run's extracted data no longer exists "
                                    "(re-run its extract step to enable replay)")
            elif cfg.replay > 0:
                want = round(cfg.replay / (1 - cfg.replay) * n_new)
                old = ", ".join(f"{sql_quote(str(p))}" for p in sorted(original.rglob("*.parquet")))
                con.execute("SET threads = 1")  # a repeatable reservoir sample needs one thread
                con.execute(f"COPY (SELECT {select} FROM read_parquet([{old}]) USING SAMPLE reservoir({want} ROWS) "
                            f"REPEATABLE ({int(seed)})) TO {sql_quote(str(work / 'replay.parquet'))} (FORMAT parquet)")
                con.execute("RESET threads")
                n_old = con.execute(f"SELECT count(*) FROM read_parquet({sql_quote(str(work / 'replay.parquet'))})").fetchone()[0]
                parts.append(f"SELECT * FROM read_parquet({sql_quote(str(work / 'replay.parquet'))})")
            con.execute(f"COPY ({' UNION ALL BY NAME '.join(parts)}) TO {sql_quote(str(fit_raw))} (FORMAT parquet)")
        finally:
            con.close()
        result.rows = {"new_train": int(n_new), "holdout": int(n_hold), "replay": int(n_old)}
        return fit_raw, holdout_raw

    @staticmethod
    def _apply(transform: Any, source: Path, out: Path, memory: Any) -> Path:
        transform.run(source, out, memory=memory, fit=False)
        return out

    @staticmethod
    def _prepare(package: Any, pconfig: Any, source: Path, out: Path, memory: Any, refit: bool, *,
                 split: tuple[float, float, float]) -> Path:
        from blase.prepare import Prepare

        classes = package.classes if package.task != "regression" else None
        Prepare(package.label, features=None if refit else package.features, split=split, seed=pconfig.seed,
                task=package.task, classes=classes, drop_null_label=True).run(source, out, memory=memory)
        return out

    @staticmethod
    def _train(project: Project, pconfig: Any, package: Any, cfg: Any, shards: Path, out: Path, track: Any,
               notes: list[str]) -> None:
        spec = json.loads((package.path / "model.json").read_text())
        if spec.get("kind") == "plugin":
            Update._train_plugin(project, pconfig, package, cfg, shards, out, track, notes)
            return
        from blase.train import Train

        train_cfg = pconfig.train.model_copy(update={"epochs": cfg.epochs or pconfig.train.epochs})
        if cfg.mode == "finetune":
            trainer = Train(train_cfg, seed=pconfig.seed, project_root=project.root).set_model(package.load_model())
            trainer.fit(shards, out, track=track)
            shutil.copyfile(package.path / "model.json", out / "model.json")  # same network as its parent
            return
        if spec.get("kind") == "builtin":
            train_cfg = train_cfg.model_copy(update={"hidden": spec.get("hidden") or [], "dropout": spec.get("dropout", 0.0),
                                                     "batch_norm": spec.get("batch_norm", False),
                                                     "linear_skip": spec.get("linear_skip", False)})
            model = spec["name"]
        else:
            model = spec.get("ref") or pconfig.train.model
        Train(train_cfg, seed=pconfig.seed, project_root=project.root).set_model(model).fit(shards, out, track=track)

    @staticmethod
    def _train_plugin(project: Project, pconfig: Any, package: Any, cfg: Any, shards: Path, out: Path,
                      track: Any, notes: list[str]) -> None:
        """A model plugin's kind (found by the name the package records), with the package's
        options: finetune continues from the deployed model where the kind can (more boosting
        rounds, more epochs), else it trains from scratch on the new mix. ``update.epochs``
        sets the option the kind counts its epochs or rounds with
        (:attr:`~blase.model.ModelKind.epochs_option`)."""
        from blase.model import FitContext, fit_model, kind_class, options_for, read_spec
        from blase.resources import memory_budget

        spec = read_spec(package.path)
        cls = kind_class(spec, root=project.root, entries=pconfig.plugins)
        options = dict(spec.options)
        if cfg.epochs is not None and cls.epochs_option:
            options[cls.epochs_option] = cfg.epochs
        elif cfg.epochs is not None:
            notes.append(f"update.epochs: the {spec.name} model kind counts no epochs or rounds; ignored")
        kind = cls(options_for(cls, options, file=str(package.path / "model.json"), key="options"))
        init = None
        if cfg.mode == "finetune" and cls.can_continue:
            init = package.load_trained()
            if cfg.epochs is not None and cls.epochs_option:
                notes.append(f"finetune: up to {cfg.epochs} more epochs or rounds on the deployed {spec.name} "
                             f"model (update.epochs, as train.options.{cls.epochs_option})")
        elif cfg.mode == "finetune":
            notes.append(f"finetune: the {spec.name} model kind cannot continue from a fitted model; "
                         "the candidate was trained from scratch on the new mix")
        project.tmp_dir.mkdir(parents=True, exist_ok=True)
        fit_model(kind, shards, FitContext(out_dir=out, seed=pconfig.seed, train=pconfig.train, init=init,
                                           memory=memory_budget(pconfig.memory), tmp_dir=project.tmp_dir,
                                           project_root=project.root, track=track,
                                           plugins=list(pconfig.plugins)))

    @staticmethod
    def _evaluate(model: Any, shards: Path, out: Path, split: str) -> dict[str, float]:
        from blase.evaluate import evaluate_live

        result = evaluate_live(model, shards, out, split=split, plots=False, track=_Quiet())
        return _scalars(result.details.get("metrics", {}))

    @staticmethod
    def _finished(project: Project, package: Any) -> dict[str, Any]:
        from blase.deploy import resolve_model
        from blase.steps import finished_steps

        # an updated version has no pipeline run of its own: follow its lineage to the root
        for _ in range(100):
            lineage = package.info.get("lineage", {})
            if package.run_id and not lineage.get("update_run_id"):
                try:
                    return finished_steps(project, package.run_id)[1]
                except BlaseError:
                    return {}
            parent = lineage.get("parent_version")
            if not parent:
                return {}
            try:
                package = resolve_model(project, f"{package.name}@{parent}")
            except BlaseError:
                return {}
        return {}

    def _original_extract(self, project: Project, package: Any) -> Path | None:
        from blase.steps import Extracted

        step = self._finished(project, package).get("extract")
        path = step.output.data_dir if step and isinstance(step.output, Extracted) else None
        return path if path is not None and path.is_dir() else None

    def _original_shards(self, project: Project, package: Any) -> Path | None:
        from blase.steps import Shards

        step = self._finished(project, package).get("prepare")
        path = step.output.shards_dir if step and isinstance(step.output, Shards) else None
        return path if path is not None and (path / "manifest.json").is_file() else None

    @staticmethod
    def _decide(result: UpdateResult, cfg: Any, name: str, higher: bool) -> None:
        cur, cand = result.holdout["current"].get(name), result.holdout["candidate"].get(name)
        if cur is None or cand is None:
            result.reasons.append(f"no {name} on the holdout; the candidate is kept, not promoted")
            return
        gain = (cand - cur) if higher else ((cur - cand) / cur if cur else 0.0)
        unit = "points" if higher else "relative"
        needed = cfg.margin
        n = result.holdout["current"].get("n") or result.holdout["candidate"].get("n")
        if higher and n and 0 <= cur <= 1 and 0 <= cand <= 1:
            # A proportion measured on n rows is noisy: on a small holdout a useless candidate
            # can "win" by chance. Ask for more than the noise (one-sided 95%) as well.
            noise = 1.645 * ((cur * (1 - cur) + cand * (1 - cand)) / n) ** 0.5
            needed = max(needed, noise)
        wins = gain >= needed
        floor = "" if needed == cfg.margin else f", noise floor {needed:.3g} on {n} rows"
        result.reasons.append(
            f"new holdout {name}: candidate {cand:.4g} vs current {cur:.4g} (gain {gain:+.3g} {unit}; "
            f"margin {cfg.margin:g}{floor}) -> {'wins' if wins else 'does not win'}")
        if result.original_test:
            o_cur, o_cand = result.original_test["current"].get(name), result.original_test["candidate"].get(name)
            if o_cur is not None and o_cand is not None:
                loss = (o_cur - o_cand) if higher else ((o_cand - o_cur) / o_cur if o_cur else 0.0)
                ok = loss <= cfg.tolerance
                result.reasons.append(
                    f"original test {name}: candidate {o_cand:.4g} vs current {o_cur:.4g} (loss {loss:+.3g} {unit}; "
                    f"tolerance {cfg.tolerance:g}) -> {'ok' if ok else 'forgets too much'}")
                wins = wins and ok
        result.wins = wins

    @staticmethod
    def _package(project: Project, pconfig: Any, package: Any, cfg: Any, train_dir: Path, fit_t: Path,
                 shards: Path, fit_raw: Path, result: UpdateResult, track: Any, evaluation: Path) -> str:
        from blase.deploy import build_package, seal_package
        from blase.hashing import environment_fingerprint, hash_config, hash_file
        from blase.profile import PROFILE_FILE, ReferenceProfile

        hashes = {"data:new": hash_file(fit_raw), "config": hash_config(cfg.model_dump())}
        candidate = build_package(
            project, name=package.name, run_id=track.run_id, train_dir=train_dir,
            transform_file=fit_t / "transform.json", manifest_file=shards / "manifest.json",
            input_schema=package.input_schema, extract_options=package.info.get("extract_options", {}),
            metrics=result.holdout["candidate"], baseline={}, hashes=hashes,
            environment=environment_fingerprint(), onnx=pconfig.deploy.onnx,
        )
        info = dict(candidate.info)
        info["lineage"] = {**info["lineage"], "parent_version": package.version, "parent_run_id": package.run_id,
                           "update_run_id": track.run_id, "mode": cfg.mode, "replay": cfg.replay}
        meta = candidate.path / "package.json"
        write_json_atomic(meta, info, default=str, newline=False)
        predictions = evaluation / "predictions-train.parquet"
        profile = ReferenceProfile.build(
            fit_raw, package.input_schema, label=package.label, task=package.task, classes=package.classes,
            predictions=predictions if predictions.is_file() else None, metrics=result.holdout["candidate"],
            memory=pconfig.memory, tmp_dir=project.tmp_dir, seed=pconfig.seed)
        profile.save(candidate.path / PROFILE_FILE)
        seal_package(candidate.path)  # record the hashes of the rewritten package.json and the profile
        return candidate.version


def _names(parquet_file: str) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(parquet_file).names
