"""Helpers for the interop tier's Python tests: where the servers are, and a
Spark session with Delta Lake configured the same way everywhere.

The servers are started by interop/start.sh, which writes their addresses to
$PLTEST_INTEROP_RUN/env; `make interop` exports that file's variables
before it runs pytest. Names (all on 127.0.0.1):

  PLTEST_INTEROP_KAFKA_BROKERS    host:port of the Kafka broker (PLAINTEXT)
  PLTEST_INTEROP_HDFS_URL         hdfs://127.0.0.1:PORT (namenode RPC)
  PLTEST_INTEROP_HDFS_NAMENODE    127.0.0.1:PORT (the same, no scheme)
  PLTEST_INTEROP_WEBHDFS_URL      http://127.0.0.1:PORT (namenode HTTP)
  PLTEST_INTEROP_S3_ENDPOINT      http://127.0.0.1:PORT (MinIO)
  PLTEST_INTEROP_S3_ACCESS_KEY / PLTEST_INTEROP_S3_SECRET_KEY
  PLTEST_INTEROP_S3_REGION
  PLTEST_INTEROP_REGISTRY_URL     http://127.0.0.1:PORT/apis/ccompat/v7 (Apicurio Registry)
  PLTEST_INTEROP_SHARED           the shared/ directory beside the repo

Run `python protolake_interop.py warmup` once to have Spark's Ivy fetch the
delta-spark jars (interop/install.sh does).
"""

import os
import sys
from pathlib import Path

INTEROP_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = INTEROP_DIR.parent
CACHE = Path(os.environ.get("PLTEST_INTEROP_CACHE", Path.home() / ".cache" / "protolake-interop"))


def env(name):
    """Returns the environment variable name, or raises with a hint."""
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run through `make interop` "
                           f"or `set -a; . $PLTEST_INTEROP_RUN/env; set +a`")
    return value


def shared_dir():
    """The shared/ directory beside the repository (delta-tables, …)."""
    return Path(os.environ.get("PLTEST_INTEROP_SHARED", REPO_ROOT.parent / "shared"))


def protolake_env(**extra):
    """os.environ without the harness's PLTEST_* variables, plus extra: the
    environment to run the protolake binary with. `protolake run` reads only
    PROTOLAKE_* variables (as settings); the harness's are kept out of its
    environment all the same, so that a run sees what a user's would."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("PLTEST_")}
    out.update(extra)
    return out


def build_protolake():
    """Builds ./cmd/protolake into $PLTEST_INTEROP_RUN/bin and returns the path."""
    import subprocess

    run = Path(os.environ.get("PLTEST_INTEROP_RUN", "/tmp/protolake-interop-run"))
    out = run / "bin" / "protolake"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/protolake"], cwd=REPO_ROOT, check=True)
    return out


# S3A for Spark: must match pyspark's bundled hadoop-client jars (3.3.4 in
# pyspark 3.5); it brings com.amazonaws:aws-java-sdk-bundle.
HADOOP_AWS = "org.apache.hadoop:hadoop-aws:3.3.4"


def s3_storage_options():
    """deltalake (delta-rs) storage_options for MinIO."""
    return {
        "AWS_ENDPOINT_URL": env("PLTEST_INTEROP_S3_ENDPOINT"),
        "AWS_ACCESS_KEY_ID": env("PLTEST_INTEROP_S3_ACCESS_KEY"),
        "AWS_SECRET_ACCESS_KEY": env("PLTEST_INTEROP_S3_SECRET_KEY"),
        "AWS_REGION": env("PLTEST_INTEROP_S3_REGION"),
        "AWS_ALLOW_HTTP": "true",
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }


def spark_session(app="protolake-interop"):
    """A local Spark 3.5 session with Delta Lake, small enough for 2 cores.

    The delta-spark jars and hadoop-aws (S3A, the same Hadoop version as
    pyspark's own client jars) come from Maven Central through Spark's Ivy,
    cached under $PLTEST_INTEROP_CACHE/ivy. Everything binds to 127.0.0.1;
    the UI is off. Tables are addressed by full URI: file:///abs/path,
    hdfs://127.0.0.1:PORT/path (the MiniDFSCluster) or s3a://bucket/path
    (MinIO, when PLTEST_INTEROP_S3_ENDPOINT is set).
    """
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from delta import configure_spark_with_delta_pip
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.appName(app)
        .master("local[2]")
        .config("spark.driver.memory", "1g")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        # Delta replays the log in 50 partitions by default: far too many
        # tasks for tiny test tables on 2 cores.
        .config("spark.databricks.delta.snapshotPartitions", "2")
        # VACUUM lists files with this many tasks (10,000 by default): 70 s
        # for a tiny table on 2 cores, 3 s with 2.
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", "2")
        .config("spark.jars.ivy", str(CACHE / "ivy"))
        # Catalog tables (CREATE TABLE … LOCATION) without a spark-warehouse
        # directory in the work tree.
        .config("spark.sql.warehouse.dir",
                str(Path(os.environ.get("PLTEST_INTEROP_RUN", "/tmp/protolake-interop-run")) / "spark-warehouse"))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        # Delta's retention check would refuse VACUUM RETAIN 0 HOURS in tests.
        .config("spark.databricks.delta.retentionDurationCheck.enabled", "false")
        .config("spark.hadoop.dfs.client.use.datanode.hostname", "true")
        .config("spark.hadoop.dfs.replication", "1")
    )
    endpoint = os.environ.get("PLTEST_INTEROP_S3_ENDPOINT")
    if endpoint:
        builder = (
            builder.config("spark.hadoop.fs.s3a.endpoint", endpoint)
            .config("spark.hadoop.fs.s3a.access.key", os.environ["PLTEST_INTEROP_S3_ACCESS_KEY"])
            .config("spark.hadoop.fs.s3a.secret.key", os.environ["PLTEST_INTEROP_S3_SECRET_KEY"])
            .config("spark.hadoop.fs.s3a.endpoint.region", os.environ.get("PLTEST_INTEROP_S3_REGION", "us-east-1"))
            .config("spark.hadoop.fs.s3a.path.style.access", "true")
            .config("spark.hadoop.fs.s3a.connection.ssl.enabled", "false")
            .config("spark.hadoop.fs.s3a.aws.credentials.provider",
                    "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider")
        )
    spark = configure_spark_with_delta_pip(builder, extra_packages=[HADOOP_AWS]).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _warmup():
    spark = spark_session("protolake-interop-warmup")
    try:
        print("spark", spark.version, "delta jars:", spark.conf.get("spark.jars.packages"))
    finally:
        spark.stop()


if __name__ == "__main__":
    if sys.argv[1:] == ["warmup"]:
        _warmup()
    else:
        sys.exit("usage: protolake_interop.py warmup")
