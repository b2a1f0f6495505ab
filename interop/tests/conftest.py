"""Fixtures of the interop tier's pytest suites (run by `make interop`).

Product interop tests (our tables read by Spark, delta-rs, DuckDB) go in this
directory as test_*.py and use these fixtures; the server addresses come from
the environment (see interop/python/protolake_interop.py for the names).
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

import protolake_interop  # noqa: E402


@pytest.fixture(scope="session")
def spark():
    """One Spark 3.5 + Delta session for the whole run (starting one costs ~10s)."""
    session = protolake_interop.spark_session()
    yield session
    session.stop()


@pytest.fixture(scope="session")
def protolake_bin():
    """The protolake binary, built once per run from this work tree. Run it
    with env=protolake_interop.protolake_env(...): the environment without
    the harness's PLTEST_* variables."""
    return protolake_interop.build_protolake()


@pytest.fixture(scope="session")
def shared_tables():
    """../shared/delta-tables: Delta tables written by Spark and delta-rs."""
    path = protolake_interop.shared_dir() / "delta-tables"
    if not path.is_dir():
        pytest.fail(f"{path} is missing: the interop tier needs shared/ beside the repository")
    return path


@pytest.fixture(scope="session")
def expected(shared_tables):
    """EXPECTED.json of the shared tables: snapshot facts per table."""
    import json

    return json.loads((shared_tables / "EXPECTED.json").read_text())


@pytest.fixture(scope="session")
def kafka_brokers():
    return protolake_interop.env("PLTEST_INTEROP_KAFKA_BROKERS")


@pytest.fixture(scope="session")
def hdfs_url():
    return protolake_interop.env("PLTEST_INTEROP_HDFS_URL")


@pytest.fixture(scope="session")
def webhdfs_url():
    return protolake_interop.env("PLTEST_INTEROP_WEBHDFS_URL")


@pytest.fixture(scope="session")
def s3():
    """MinIO's endpoint and credentials as a dict."""
    e = protolake_interop.env
    return {
        "endpoint": e("PLTEST_INTEROP_S3_ENDPOINT"),
        "access_key": e("PLTEST_INTEROP_S3_ACCESS_KEY"),
        "secret_key": e("PLTEST_INTEROP_S3_SECRET_KEY"),
        "region": e("PLTEST_INTEROP_S3_REGION"),
    }
