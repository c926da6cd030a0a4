"""Real local servers for the cloud tests: moto's S3 server and a GCS emulator, on 127.0.0.1.

The clients (s3fs, gcsfs) talk HTTP to them exactly as they do to the clouds; the endpoints
come from the standard variables (``AWS_ENDPOINT_URL``, ``STORAGE_EMULATOR_HOST``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator

import pytest


class RequestLog(logging.Handler):
    """Counts the HTTP requests the moto server logs (werkzeug's access log)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.lock_ = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self.lock_:
            self.lines.append(re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage()))  # werkzeug colours

    def object_gets(self, bucket: str) -> int:
        """GET requests of objects (not listings: those carry ``?list-type``)."""
        pattern = re.compile(rf'"GET /{re.escape(bucket)}/[^ ?]+ HTTP')
        with self.lock_:
            return sum(1 for line in self.lines if pattern.search(line))

    def clear(self) -> None:
        with self.lock_:
            self.lines.clear()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    pytest.importorskip("s3fs", reason="the cloud extra (pip install 'blase[cloud]')")
    server_mod = pytest.importorskip("moto.server", reason="moto[server] (the dev extra)")
    # werkzeug adds its own stderr handler when its logger has none; that handler would keep
    # the stderr of whichever test came first (closed later): give it one that stays
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(logging.NullHandler())
    werkzeug.setLevel(logging.INFO)
    werkzeug.propagate = False
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """An s3fs filesystem on the moto server, with the standard variables set for Blase, and
    the server's request log (cleared per test)."""
    import s3fs

    home = tmp_path_factory.mktemp("aws")
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto_endpoint,
                        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
                        "AWS_CONFIG_FILE": str(home / "config")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    log = RequestLog()
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(log)
    fs = s3fs.S3FileSystem(endpoint_url=moto_endpoint, skip_instance_cache=True)
    fs.requests = log
    try:
        yield fs
    finally:
        werkzeug.removeHandler(log)


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    import os

    # before gcsfs is imported: its gRPC probe of the bucket type waits 60 s on an HTTP emulator
    os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
    pytest.importorskip("gcsfs", reason="the cloud extra (pip install 'blase[cloud]')")
    emulator = pytest.importorskip("gcp_storage_emulator.server", reason="gcp-storage-emulator (the dev extra)")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = emulator.create_server("127.0.0.1", port, in_memory=True)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def gcs(gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    """A gcsfs filesystem on the storage emulator (``STORAGE_EMULATOR_HOST``, as gcloud sets it)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    from blase.cloud import filesystem

    return filesystem("gs://any")


#: Azurite's well-known development account (published in its README; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _azurite_command() -> str | None:
    """``azurite-blob`` on PATH, from $AZURITE_BLOB, or where .ci/run installs it (npm)."""
    import os
    import shutil
    from pathlib import Path

    for candidate in (os.environ.get("AZURITE_BLOB"), shutil.which("azurite-blob"),
                      str(Path.home() / ".cache" / "blase-node" / "node_modules" / ".bin" / "azurite-blob")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


class AzuriteLog:
    """Counts the object downloads Azurite's debug log records."""

    def __init__(self, path) -> None:
        self.path = path
        self.start = 0

    def _lines(self) -> list[str]:
        text = self.path.read_text(errors="replace") if self.path.is_file() else ""
        return text[self.start:].splitlines()

    def object_gets(self, container: str) -> int:
        pattern = re.compile(rf"RequestMethod=GET RequestURL=http://[^/]+/{AZURITE_ACCOUNT}/{re.escape(container)}/[^ ?]+ ")
        return sum(1 for line in self._lines() if pattern.search(line))

    def clear(self) -> None:
        self.start = len(self.path.read_text(errors="replace")) if self.path.is_file() else 0


@pytest.fixture(scope="session")
def azurite_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, AzuriteLog]]:
    """Azurite's blob service on 127.0.0.1 (a node process; skipped without node or azurite)."""
    import shutil
    import socket
    import subprocess
    import time

    pytest.importorskip("adlfs", reason="the cloud extra (pip install 'blase[cloud]')")
    command = _azurite_command()
    if shutil.which("node") is None or command is None:
        pytest.skip("Azurite needs node and `npm install azurite` (.ci/run installs it)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path_factory.mktemp("azurite")
    log = folder / "debug.log"
    proc = subprocess.Popen([command, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(folder),
                             "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--debug", str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.skip(f"Azurite did not start (exit code {proc.poll()})")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}", AzuriteLog(log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def azure(azurite_endpoint: tuple[str, AzuriteLog], monkeypatch: pytest.MonkeyPatch):
    """An adlfs filesystem on Azurite, Blase pointed at it the standard way
    (``AZURE_STORAGE_CONNECTION_STRING``); ``fs.requests`` counts object downloads."""
    endpoint, log = azurite_endpoint
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                       f"BlobEndpoint={endpoint};")
    from blase.cloud import filesystem

    fs = filesystem("az://any")
    log.clear()
    fs.requests = log
    return fs
