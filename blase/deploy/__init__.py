"""Deploy: versioned, self-contained model packages; promotion, rollback and prediction.

``blase deploy RUN`` packages the outputs of a pipeline run as ``models/NAME/vN/``;
``blase models`` lists them; ``blase rollback NAME`` moves ``current`` back; ``blase predict
MODEL DATA --out FILE`` scores new raw data under the memory budget; ``blase serve MODEL``
answers prediction requests over HTTP through the same transform and model.
"""

from __future__ import annotations

from blase.deploy._decide import DeployDecision, decide_deploy
from blase.deploy._http import make_model_server, serve_model
from blase.deploy._package import (
    DeployError,
    ModelPackage,
    build_package,
    load_package,
    seal_package,
)
from blase.deploy._predict import (
    BatchNotes,
    BatchScorer,
    PredictResult,
    check_input_schema,
    features_matrix,
    fill_unimputed,
    package_features,
    predict,
    scores_to_columns,
    training_means,
)
from blase.deploy._registry import (
    ModelInfo,
    current_version,
    list_models,
    model_folder,
    promote,
    resolve_model,
    rollback,
)
from blase.deploy._runner import EMBEDDINGS_FILE, embedding_model, model_runner
from blase.deploy._serve import ModelService, Prediction, ServeError
from blase.deploy._step import deploy_outputs, deploy_run, deployed_already
from blase.deploy._versions import reserve_version, stale_staging

__all__ = [
    "EMBEDDINGS_FILE",
    "BatchNotes",
    "BatchScorer",
    "DeployDecision",
    "DeployError",
    "ModelInfo",
    "ModelPackage",
    "ModelService",
    "PredictResult",
    "Prediction",
    "ServeError",
    "build_package",
    "check_input_schema",
    "current_version",
    "decide_deploy",
    "deploy_outputs",
    "deploy_run",
    "deployed_already",
    "embedding_model",
    "features_matrix",
    "fill_unimputed",
    "list_models",
    "load_package",
    "make_model_server",
    "model_folder",
    "model_runner",
    "package_features",
    "predict",
    "promote",
    "reserve_version",
    "resolve_model",
    "rollback",
    "scores_to_columns",
    "seal_package",
    "serve_model",
    "stale_staging",
    "training_means",
]
