"""Plugins shipped with Blase, written only against the public plugin API.

- ``excel`` (source, ``pip install 'blase[excel]'``): Excel and OpenDocument sheets (``.xlsx``,
  ``.xlsm``, ``.xlsb``, ``.xls``, ``.ods``) read with python-calamine.
- ``mmd`` (drift_test): the maximum mean discrepancy between the reference and the new values,
  with a seeded permutation p-value; numeric and categorical columns; numpy only.
- ``xgboost`` (model, :mod:`blase.contrib.xgboost`, ``pip install 'blase[xgboost]'``):
  gradient-boosted trees trained out of core through XGBoost's external-memory ``DataIter``
  over the shards.
- ``lightgbm`` (model, :mod:`blase.contrib.lightgbm`, ``pip install 'blase[lightgbm]'``):
  LightGBM fed one ``lightgbm.Sequence`` per shard.
- ``keras`` (:mod:`blase.contrib.keras`, ``pip install 'blase[keras]'``, or
  ``'blase[tensorflow]'`` for the TensorFlow backend): a Keras 3 network fed the shards a batch
  at a time through a ``keras.utils.PyDataset``, saved as ``model.keras``.

Blase's own ``pyproject.toml`` publishes them through the ``blase.plugins`` entry points, as any
package would; :mod:`blase.contrib.plugins` holds the manifests and imports nothing heavy, so
``blase plugins`` lists them without importing their code or the libraries they need.
"""
