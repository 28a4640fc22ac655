"""A real S3 protocol server for tests: moto's server mode on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

#: Fake credentials moto accepts; passed explicitly, never through the environment.
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
#: The bucket the shared test server is created with.
BUCKET = "mlops-artifacts"
#: S3's smallest multipart part, and so s3fs's smallest write block.
MIN_PART_SIZE = 5 * 1024 * 1024


@contextmanager
def run_moto_server() -> Iterator[str]:
    """Run moto's S3 server on an ephemeral loopback port; yield its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint_url: str) -> Any:
    """Return a boto3 S3 client for the server at ``endpoint_url``."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )


def create_bucket(endpoint_url: str, name: str) -> None:
    """Create bucket ``name`` on the server at ``endpoint_url``."""
    s3_client(endpoint_url).create_bucket(Bucket=name)


def s3_storage_options(endpoint_url: str) -> dict[str, Any]:
    """Return fsspec/s3fs storage options that reach the server at ``endpoint_url``."""
    return {
        "key": ACCESS_KEY,
        "secret": SECRET_KEY,
        "client_kwargs": {"endpoint_url": endpoint_url, "region_name": REGION},
    }
