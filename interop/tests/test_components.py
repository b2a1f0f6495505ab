"""Smoke tests of the interop tier's components: each proves that one real
component works on this machine, so a failure in a product interop test is
about protolake, not about the harness."""

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest


def active_files(table, facts):
    """Absolute paths of the table's active data files, from EXPECTED.json."""
    return [table / urllib.parse.unquote(f) for f in facts["files"]]


# Kafka ---------------------------------------------------------------------

def test_kafka_kcat_round_trip(kafka_brokers):
    topic = f"smoke-kcat-{uuid.uuid4().hex[:8]}"
    records = [f"k{i % 5}:value-{i}" for i in range(50)]
    subprocess.run(["kcat", "-b", kafka_brokers, "-P", "-t", topic, "-K:"],
                   input="\n".join(records) + "\n", text=True, check=True, timeout=60)
    out = subprocess.run(["kcat", "-b", kafka_brokers, "-C", "-t", topic, "-o", "beginning",
                          "-e", "-q", "-f", "%k:%s\\n"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert sorted(out.split()) == sorted(records)
    meta = json.loads(subprocess.run(["kcat", "-b", kafka_brokers, "-L", "-J", "-t", topic],
                                     capture_output=True, text=True, check=True, timeout=60).stdout)
    assert len(meta["topics"][0]["partitions"]) == 3  # num.partitions=3 in the broker config


def test_kafka_tool_creates_topic(kafka_brokers):
    import protolake_interop

    topic = f"smoke-tool-{uuid.uuid4().hex[:8]}"
    subprocess.run([str(protolake_interop.INTEROP_DIR / "kafka-tool.sh"), "topics", "--bootstrap-server",
                    kafka_brokers, "--create", "--topic", topic, "--partitions", "6"],
                   check=True, capture_output=True, timeout=120)
    meta = json.loads(subprocess.run(["kcat", "-b", kafka_brokers, "-L", "-J", "-t", topic],
                                     capture_output=True, text=True, check=True, timeout=60).stdout)
    assert len(meta["topics"][0]["partitions"]) == 6


# HDFS (WebHDFS; the Go client is exercised by interop/smoke) ---------------

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def webhdfs(base, method, path, op, data=None, **params):
    """One WebHDFS call; CREATE follows the namenode's redirect to the datanode."""
    params.update(op=op, **{"user.name": "protolake"})
    url = f"{base}/webhdfs/v1{path}?{urllib.parse.urlencode(params)}"
    if op == "CREATE":
        try:
            urllib.request.build_opener(NoRedirect).open(urllib.request.Request(url, method="PUT"), timeout=30)
            raise AssertionError("CREATE did not redirect to a datanode")
        except urllib.error.HTTPError as e:
            if e.code != 307:
                raise
            url = e.headers["Location"]
    req = urllib.request.Request(url, method=method, data=data if data is not None else (b"" if method == "PUT" else None))
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = resp.read()
        return json.loads(body) if body and op != "OPEN" else body


def test_webhdfs_rename_does_not_overwrite(webhdfs_url):
    d = f"/smoke/py-{uuid.uuid4().hex[:8]}"
    webhdfs(webhdfs_url, "PUT", f"{d}/a", "CREATE", data=b"first", overwrite="false")
    webhdfs(webhdfs_url, "PUT", f"{d}/b", "CREATE", data=b"second", overwrite="false")
    # RENAME onto an existing file: false, both files unchanged.
    assert webhdfs(webhdfs_url, "PUT", f"{d}/a", "RENAME", destination=f"{d}/b") == {"boolean": False}
    assert webhdfs(webhdfs_url, "GET", f"{d}/b", "OPEN") == b"second"
    assert webhdfs(webhdfs_url, "GET", f"{d}/a", "OPEN") == b"first"
    # RENAME onto a free name: true.
    assert webhdfs(webhdfs_url, "PUT", f"{d}/a", "RENAME", destination=f"{d}/c") == {"boolean": True}
    names = [s["pathSuffix"] for s in webhdfs(webhdfs_url, "GET", d, "LISTSTATUS")["FileStatuses"]["FileStatus"]]
    assert names == ["b", "c"]
    # Beware: RENAME onto an existing *directory* moves the source into it.
    webhdfs(webhdfs_url, "PUT", f"{d}/dir", "MKDIRS")
    assert webhdfs(webhdfs_url, "PUT", f"{d}/c", "RENAME", destination=f"{d}/dir") == {"boolean": True}
    assert webhdfs(webhdfs_url, "GET", f"{d}/dir/c", "OPEN") == b"first"


# Spark + delta-spark --------------------------------------------------------

def test_spark_reads_shared_delta_tables(spark, shared_tables, expected):
    import duckdb

    name = "spark-data-reader-partition-values"
    table = shared_tables / name
    df = spark.read.format("delta").load(table.as_uri())
    facts = expected[name]["latest"]
    assert set(df.columns) == set(facts["metadata"]["schemaFieldNames"])
    # DuckDB over the same files (partition columns live in the paths only).
    files = [str(p) for p in active_files(table, facts)]
    want = duckdb.sql("select count(*) from read_parquet($files)", params={"files": files}).fetchone()[0]
    assert df.count() == want > 0

    name = "spark-basic-with-inserts-deletes-checkpoint"
    uri = (shared_tables / name).as_uri()
    assert spark.read.format("delta").load(uri).count() == expected[name]["latest"]["numRecords"]
    # Time travel to a version before the checkpoint.
    v3 = spark.read.format("delta").option("versionAsOf", 3).load(uri).count()
    assert v3 == expected[name]["v3"]["numRecords"]


def test_spark_delta_on_hdfs(spark, hdfs_url):
    path = f"{hdfs_url}/smoke/spark-delta-{uuid.uuid4().hex[:8]}"
    spark.range(0, 100).write.format("delta").save(path)
    spark.range(100, 150).write.format("delta").mode("append").save(path)
    assert spark.read.format("delta").load(path).count() == 150
    assert spark.read.format("delta").option("versionAsOf", 0).load(path).count() == 100


# delta-rs --------------------------------------------------------------------

def test_deltalake_opens_shared_tables(shared_tables, expected):
    import duckdb
    from deltalake import DeltaTable

    name = "deltars-delta-0.2.0"
    facts = expected[name]["latest"]
    dt = DeltaTable(str(shared_tables / name))
    assert dt.version() == facts["version"]
    assert sorted(u.rsplit("/", 1)[-1] for u in dt.file_uris()) == sorted(facts["files"])
    for app_id, version in facts["txns"].items():  # the streaming txn watermark
        assert dt.transaction_version(app_id) == version
    files = [str(p) for p in active_files(shared_tables / name, facts)]
    want = duckdb.sql("select count(*) from read_parquet($files)", params={"files": files}).fetchone()[0]
    assert dt.to_pyarrow_table().num_rows == want > 0

    name = "spark-data-reader-partition-values"
    facts = expected[name]["latest"]
    dt = DeltaTable(str(shared_tables / name))
    assert dt.version() == facts["version"]
    assert len(dt.file_uris()) == facts["numFiles"]
    files = [str(p) for p in active_files(shared_tables / name, facts)]
    want = duckdb.sql("select count(*) from read_parquet($files)", params={"files": files}).fetchone()[0]
    assert dt.to_pyarrow_table().num_rows == want > 0


# DuckDB --------------------------------------------------------------------

def test_duckdb_reads_parquet(tmp_path):
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": list(range(10)), "s": [f"r{i}" for i in range(10)]}), path)
    assert duckdb.sql(f"select count(*), sum(id), max(s) from read_parquet('{path}')").fetchone() == (10, 45, "r9")


# MinIO (S3) ----------------------------------------------------------------

def s3_bucket(s3):
    from pyarrow import fs

    s3fs = fs.S3FileSystem(access_key=s3["access_key"], secret_key=s3["secret_key"], region=s3["region"],
                           endpoint_override=s3["endpoint"], scheme="http", allow_bucket_creation=True)
    bucket = f"smoke-{uuid.uuid4().hex[:8]}"
    s3fs.create_dir(bucket)
    return s3fs, bucket


def test_minio_s3_round_trip(s3):
    s3fs, bucket = s3_bucket(s3)
    with s3fs.open_output_stream(f"{bucket}/a.txt") as f:
        f.write(b"hello")
    with s3fs.open_input_stream(f"{bucket}/a.txt") as f:
        assert f.read() == b"hello"


def test_spark_and_deltalake_on_minio(spark, s3):
    import protolake_interop
    from deltalake import DeltaTable

    _, bucket = s3_bucket(s3)
    path = f"s3a://{bucket}/t"
    spark.range(0, 42).write.format("delta").save(path)
    assert spark.read.format("delta").load(path).count() == 42
    dt = DeltaTable(f"s3://{bucket}/t", storage_options=protolake_interop.s3_storage_options())
    assert dt.version() == 0
    assert dt.to_pyarrow_table().num_rows == 42


# Schema registry -----------------------------------------------------------

def test_apicurio_registry_answers():
    """The registry at PLTEST_INTEROP_REGISTRY_URL is Apicurio's server (not
    a stand-in) and its Confluent-compatible API knows protobuf."""
    import protolake_interop

    url = protolake_interop.env("PLTEST_INTEROP_REGISTRY_URL")
    base = url.removesuffix("/apis/ccompat/v7")
    assert base != url, url
    with urllib.request.urlopen(f"{base}/apis/registry/v2/system/info", timeout=30) as r:
        info = json.load(r)
    assert info["name"] == "apicurio-registry", info
    with urllib.request.urlopen(f"{url}/schemas/types", timeout=30) as r:
        assert "PROTOBUF" in json.load(r)


# The protolake binary under the harness ------------------------------------

def test_protolake_binary_with_harness_env(protolake_bin):
    import protolake_interop

    out = subprocess.run([str(protolake_bin), "help"], env=protolake_interop.protolake_env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "run" in out.stdout + out.stderr
    # The harness's variables must not reach `protolake run`'s config parser.
    out = subprocess.run([str(protolake_bin), "run", "--config", "/dev/null"],
                         env=protolake_interop.protolake_env(), capture_output=True, text=True, timeout=60)
    assert "PLTEST_INTEROP" not in out.stderr, out.stderr
