"""az:// sources through adlfs against Azurite (the Azure storage emulator) on 127.0.0.1: a pipeline,
predict and monitor read a container; an unchanged container is a cache hit without one object
download; a missing container and a wrong key say so, naming the credentials tried."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from blase.cloud import CloudError, list_objects
from blase.pipeline import Pipeline
from tests import cloud_servers
from tests.test_cloud import (
    FAST,
    _upload_penguins,
    _use_source,
    missing_and_empty_are_clear_errors,
    pcsv_table,
    predict_and_monitor_from,
)

azurite_endpoint, azure = cloud_servers.azurite_endpoint, cloud_servers.azure  # the server's fixtures


def test_pipeline_reads_a_container_and_an_unchanged_one_downloads_nothing(project, azure):
    _upload_penguins(azure, project, "lab")
    _use_source(project, "az://lab/penguins/*.parquet")
    first = Pipeline(project, overrides=FAST).run()
    assert first.status == "finished" and first.steps["extract"].rows_out == 344
    assert azure.requests.object_gets("lab") >= 3  # the three blobs were read once

    azure.requests.clear()
    second = Pipeline(project, overrides=FAST).run()
    assert "extract" in second.cached
    assert azure.requests.object_gets("lab") == 0, "an unchanged container was downloaded again"

    pq.write_table(pcsv_table(project).slice(0, 10), project.root / "small.parquet")
    azure.put(str(project.root / "small.parquet"), "lab/penguins/part-2.parquet")
    third = Pipeline(project, overrides=FAST).run(to_step="extract")
    assert third.steps["extract"].rows_out == 2 * 115 + 10
    assert "az://lab/penguins/part-2.parquet changed" in third.reasons["extract"]


def test_predict_and_monitor_read_new_data_from_a_container(project, azure, cli):
    predict_and_monitor_from(azure, "az", project, cli)


def test_missing_container_empty_prefix_and_a_wrong_key_are_clear_errors(project, azure, monkeypatch, cli):
    missing_and_empty_are_clear_errors(azure, "az", project, cli)
    import os

    wrong = os.environ["AZURE_STORAGE_CONNECTION_STRING"].replace(cloud_servers.AZURITE_KEY, "d3Jvbmc=")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", wrong)
    with pytest.raises(CloudError, match=r"access denied to az://empty-bucket/.*AZURE_STORAGE_CONNECTION_STRING"):
        list_objects("az://empty-bucket/data/*.csv")
