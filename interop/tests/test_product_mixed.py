"""Product interop, point 5 of issue 7: protolake and Spark writing the same
Delta table. Spark appends to a table protolake created, protolake keeps
streaming into it and compacts it (Spark's files included); then Spark runs
OPTIMIZE and VACUUM on it, and our exactly-once watermarks survive: inspect
and delta-rs still show them, and a restarted `protolake run` neither
duplicates nor skips a record.

One table on local disk, one on MinIO and one on HDFS, each driven through the steps in
file order.
"""

import os
import urllib.parse
import uuid

import pytest

import plcheck
import protolake_interop

SPARK_ROWS = 40


@pytest.fixture(scope="module", params=["local", "s3", "hdfs"])
def mixed(request, tmp_path_factory, protolake_bin, kafka_brokers, s3, hdfs_url):
    store = request.param
    pl = plcheck.Protolake(protolake_bin)
    plgen = plcheck.build_plgen()
    work = tmp_path_factory.mktemp(f"mixed-{store}")
    run_id = uuid.uuid4().hex[:8]
    topic = f"mixed-{store}-{run_id}"
    schema = pl.schema(plcheck.ADTRACK_DESC, "adtrack.v1.AdImpression", "--partition", "day(event_time)")
    (work / "schema.json").write_text(__import__("json").dumps(schema))
    if store == "local":
        uri = spark_uri = rs_uri = f"file://{work}/lake/ads"
        rs_uri, rs_opts, dlq = str(work / "lake/ads"), None, None
    elif store == "hdfs":
        uri = spark_uri = rs_uri = f"{hdfs_url}/mixed-{run_id}/ads"
        rs_opts, dlq = None, None
    else:
        from pyarrow import fs

        bucket = f"mixed-{run_id}"
        fs.S3FileSystem(access_key=s3["access_key"], secret_key=s3["secret_key"], region=s3["region"],
                        endpoint_override=s3["endpoint"], scheme="http", allow_bucket_creation=True).create_dir(bucket)
        q = urllib.parse.urlencode({"endpoint": s3["endpoint"], "path_style": "true"})
        uri, spark_uri, rs_uri = f"s3://{bucket}/ads?{q}", f"s3a://{bucket}/ads", f"s3://{bucket}/ads"
        rs_opts, dlq = protolake_interop.s3_storage_options(), f"s3://{bucket}/ads_dlq?{q}"
    group = f"g-mixed-{run_id}"

    def run_config(**flush):
        return plcheck.write_config(work / "pl.yaml", kafka_brokers, group, [{
            "name": "ads", "uri": uri, "topics": [topic], "message": "adtrack.v1.AdImpression",
            "descriptor_set": plcheck.ADTRACK_DESC, "partition_by": ["day(event_time)"],
            "flush": {"max_rows": 100, **flush}, "dead_letter_uri": dlq,
        }])
    cfg = run_config()
    state = {"next": 0}

    def produce(n):
        plcheck.sh([plgen, "adtrack", "--brokers", kafka_brokers, "--topic", topic, "--partitions", 3,
                    "--from", state["next"], "--n", n, "--expect", work / "expected.jsonl",
                    "--schema", work / "schema.json"])
        state["next"] += n

    def expected():
        if not (work / "expected.jsonl").exists():
            return []
        return plcheck.expected_rows(plcheck.add_day(plcheck.read_expected(work / "expected.jsonl")), schema)

    def delta_table():
        from deltalake import DeltaTable

        return DeltaTable(rs_uri, storage_options=rs_opts)

    return {"pl": pl, "uri": uri, "spark_uri": spark_uri, "produce": produce, "expected": expected,
            "run": lambda: pl.run_until_caught_up(cfg), "run_config": run_config, "group": group, "topic": topic, "schema": schema,
            "protojson": plcheck.protojson_columns(schema), "delta_table": delta_table, "store": store}


def kafka_rows(spark, m):
    """Spark's rows of the table that came from Kafka, normalized, and the
    number of rows without Kafka lineage (Spark's own appends)."""
    df = spark.read.format("delta").load(m["spark_uri"])
    rows = [plcheck.norm_spark_row(r, df.schema, m["protojson"]) for r in df.collect()]
    ours = [r for r in rows if r["_kafka"] is not None]
    return ours, len(rows) - len(ours)


def want_txns(m):
    out = {}
    for r in m["expected"]():
        k = r["_kafka"]
        app = f"protolake:{m['group']}:{m['topic']}:{k['partition']}"
        out[app] = max(out.get(app, -1), k["offset"])
    return out


def test_spark_appends_then_protolake_streams_and_compacts(spark, mixed):
    from pyspark.sql import functions as F

    m, pl = mixed, mixed["pl"]
    m["produce"](500)
    m["run"]()
    v_ours = pl.inspect(m["uri"])["version"]

    # Spark appends rows of its own (no Kafka lineage) with the table's schema.
    df = spark.read.format("delta").load(m["spark_uri"])
    extra = df.orderBy("impression_id").limit(SPARK_ROWS) \
        .withColumn("impression_id", F.concat(F.lit("spark-"), F.col("impression_id"))) \
        .withColumn("_kafka", F.lit(None).cast(df.schema["_kafka"].dataType))
    extra.write.format("delta").mode("append").save(m["spark_uri"])
    info = pl.inspect(m["uri"])
    assert info["version"] == v_ours + 1
    assert info["numRecords"] == 500 + SPARK_ROWS

    # protolake keeps streaming on top of Spark's commit.
    m["produce"](400)
    m["run"]()
    info = pl.inspect(m["uri"])
    assert info["numRecords"] == 900 + SPARK_ROWS
    assert info["txns"] == want_txns(m)
    ours, theirs = kafka_rows(spark, m)
    assert theirs == SPARK_ROWS
    plcheck.assert_rows_equal(ours, m["expected"](), f"Spark on the mixed {m['store']} table")

    # Our compaction rewrites Spark's files together with ours.
    before = pl.inspect(m["uri"])
    pl("compact", m["uri"], "--min-files", "2", "--target-size", "64MiB")
    after = pl.inspect(m["uri"])
    assert after["numFiles"] < before["numFiles"]
    assert after["numRecords"] == 900 + SPARK_ROWS
    assert after["txns"] == before["txns"]
    ours, theirs = kafka_rows(spark, m)
    assert theirs == SPARK_ROWS
    plcheck.assert_rows_equal(ours, m["expected"](), f"Spark after our compaction of the mixed {m['store']} table")
    dt = m["delta_table"]()
    assert dt.version() == after["version"]
    assert dt.to_pyarrow_table().num_rows == 900 + SPARK_ROWS


def test_spark_optimize_and_vacuum_keep_our_watermarks(spark, mixed):
    m, pl = mixed, mixed["pl"]
    before = pl.inspect(m["uri"])
    assert before["txns"] == want_txns(m)
    # More small files to optimize, then Spark's OPTIMIZE and VACUUM.
    m["produce"](300)
    m["run"]()
    txns = pl.inspect(m["uri"])["txns"]
    assert txns == want_txns(m)
    spark.sql(f"OPTIMIZE delta.`{m['spark_uri']}`").collect()
    spark.sql(f"VACUUM delta.`{m['spark_uri']}` RETAIN 0 HOURS").collect()
    from delta.tables import DeltaTable as SparkDeltaTable

    ops = [r["operation"] for r in SparkDeltaTable.forPath(spark, m["spark_uri"]).history().collect()]
    assert "OPTIMIZE" in ops[:3], ops
    info = pl.inspect(m["uri"])
    assert info["txns"] == txns, "Spark's OPTIMIZE/VACUUM changed our watermarks"
    assert info["numRecords"] == 1200 + SPARK_ROWS
    dt = m["delta_table"]()
    for app_id, version in txns.items():
        assert dt.transaction_version(app_id) == version, app_id

    # A restarted run: nothing new → no commit of data; new records → exactly them.
    m["run"]()
    assert pl.inspect(m["uri"])["numRecords"] == 1200 + SPARK_ROWS
    m["produce"](250)
    m["run"]()
    info = pl.inspect(m["uri"])
    assert info["numRecords"] == 1450 + SPARK_ROWS
    assert info["txns"] == want_txns(m)
    ours, theirs = kafka_rows(spark, m)
    assert theirs == SPARK_ROWS
    plcheck.assert_rows_equal(ours, m["expected"](), f"Spark after Spark's OPTIMIZE+VACUUM and a restart ({m['store']})")
    rs = plcheck.arrow_rows(m["delta_table"]().to_pyarrow_table(), m["protojson"])
    plcheck.assert_rows_equal([r for r in rs if r["_kafka"] is not None], m["expected"](),
                              f"delta-rs after Spark's OPTIMIZE+VACUUM and a restart ({m['store']})")


def test_resume_from_spark_and_deltars_checkpoints(spark, mixed):
    """Our watermarks read back from checkpoints others wrote: Spark's (after
    a Spark table-property change, a metaData action that is not ours) and
    delta-rs's; a restarted run resumes right after them each time."""
    m, pl = mixed, mixed["pl"]
    n0 = pl.inspect(m["uri"])["numRecords"]
    # Spark refuses the ALTER on our schema without this setting:
    # test_spark_alters_table_properties (xfail) below.
    spark.conf.set("spark.databricks.delta.constraints.allowUnenforcedNotNull.enabled", "true")
    try:
        spark.sql(f"ALTER TABLE delta.`{m['spark_uri']}` SET TBLPROPERTIES ('delta.logRetentionDuration' = 'interval 60 days')")
    finally:
        spark.conf.unset("spark.databricks.delta.constraints.allowUnenforcedNotNull.enabled")
    jvm = spark.sparkContext._jvm
    jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, m["spark_uri"]).checkpoint()
    info = pl.inspect(m["uri"])
    assert info["checkpointVersion"] == info["version"], "Spark's checkpoint is not the one loaded"
    assert info["txns"] == want_txns(m)
    assert info["configuration"]["delta.logRetentionDuration"] == "interval 60 days"
    assert info["configuration"]["protolake.proto.message"] == "adtrack.v1.AdImpression"
    m["run"]()
    assert pl.inspect(m["uri"])["numRecords"] == n0
    m["produce"](120)
    m["run"]()
    info = pl.inspect(m["uri"])
    assert info["numRecords"] == n0 + 120 and info["txns"] == want_txns(m)

    dt = m["delta_table"]()
    dt.create_checkpoint()
    info = pl.inspect(m["uri"])
    assert info["checkpointVersion"] == info["version"] == dt.version(), "delta-rs's checkpoint is not the one loaded"
    assert info["txns"] == want_txns(m)
    m["produce"](80)
    m["run"]()
    info = pl.inspect(m["uri"])
    assert info["numRecords"] == n0 + 200 and info["txns"] == want_txns(m)
    ours, theirs = kafka_rows(spark, m)
    assert theirs == SPARK_ROWS
    plcheck.assert_rows_equal(ours, m["expected"](), f"Spark after runs resumed from foreign checkpoints ({m['store']})")


NESTED_NOT_NULL = ("docs/type-mapping.md maps repeated fields to array<T> containsNull=false and maps to valueContainsNull=false; "
                   "delta-spark 3.3.2 treats those inside another array or map (e.g. bids[].deal_ids of "
                   "AdImpression) as NOT NULL constraints it does not support and refuses to change the table's "
                   "metadata: [DELTA_NESTED_NOT_NULL_CONSTRAINT] The element type of the field bids contains a NOT "
                   "NULL constraint, unless spark.databricks.delta.constraints.allowUnenforcedNotNull.enabled=true")


@pytest.mark.xfail(strict=True, reason=NESTED_NOT_NULL)
def test_spark_alters_table_properties(spark, mixed):
    spark.sql(f"ALTER TABLE delta.`{mixed['spark_uri']}` SET TBLPROPERTIES ('delta.appendOnly' = 'false')")


def test_spark_registers_table_in_catalog(spark, mixed):
    """What an analyst does first: name the table in Spark's catalog."""
    name = f"ads_{mixed['store']}_{uuid.uuid4().hex[:6]}"
    spark.sql(f"CREATE TABLE {name} USING delta LOCATION '{mixed['spark_uri']}'")
    try:
        n = spark.sql(f"SELECT count(*) FROM {name} WHERE _kafka IS NOT NULL").collect()[0][0]
        assert n == len(mixed["expected"]())
    finally:
        spark.sql(f"DROP TABLE {name}")  # external: the files stay
    assert mixed["pl"].inspect(mixed["uri"])["numRecords"] > 0


def test_streaming_while_spark_appends(spark, mixed):
    """protolake runs continuously (a commit a second) while Spark appends:
    the two writers' commits interleave, each one's put-if-absent of the next
    log entry can lose to the other, and both must land, once."""
    import signal
    import subprocess
    import time

    from pyspark.sql import functions as F

    m, pl = mixed, mixed["pl"]
    if m["store"] == "s3" and not os.environ.get("PLTEST_INTEROP_S3_CONCURRENT"):
        # Seen once in 8 runs: 60 records (one produce batch) missing while
        # our later txns covered them. In that table's log, versions 16 and
        # 17 were both Spark WRITEs and our watermarks jumped ~20 offsets per
        # partition from our commit 15 to our commit 18: consistent with
        # Spark overwriting our 17.json. delta-spark commits to s3a://
        # through S3SingleDriverLogStore, which checks for N.json and then
        # writes it without a conditional put: safe against writers in the
        # same JVM only. (Not confirmed: protolake's run log was not kept.)
        # PLTEST_INTEROP_S3_CONCURRENT=1 runs it anyway, keeping the log.
        pytest.skip("delta-spark's S3 log store does not support concurrent writers in other processes "
                    "(S3SingleDriverLogStore; needs S3DynamoDBLogStore): see the comment")
    if not m["expected"]():  # run alone (-k streaming): the table first
        m["produce"](300)
        m["run"]()
    _, theirs0 = kafka_rows(spark, m)
    cfg = m["run_config"](commit_interval="1s")
    proc = subprocess.Popen([str(pl.bin), "run", "--config", str(cfg), "--log.level=debug"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=protolake_interop.protolake_env(**plcheck.s3_env()))
    appended = 0
    try:
        # Rows in memory: an append of a DataFrame that reads the table itself
        # is not blind, and Spark rightly fails it (ConcurrentAppendException)
        # when our commit adds files to a partition it read.
        src = spark.read.format("delta").load(m["spark_uri"]).where("_kafka IS NOT NULL").limit(5)
        src = spark.createDataFrame(src.collect(), src.schema)
        for i in range(6):
            m["produce"](60)
            extra = src.withColumn("impression_id", F.concat(F.lit(f"spark{i}-"), F.col("impression_id"))) \
                .withColumn("_kafka", F.lit(None).cast(src.schema["_kafka"].dataType))
            extra.write.format("delta").mode("append").save(m["spark_uri"])
            appended += 5
        deadline = time.time() + 90
        while pl.inspect(m["uri"])["txns"] != want_txns(m):
            assert proc.poll() is None, f"protolake run exited {proc.returncode}:\n{proc.stdout.read()[-3000:]}"
            assert time.time() < deadline, "protolake did not catch up within 90 s"
            time.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    log = cfg.parent / "run-concurrent.log"
    log.write_text(out)
    assert proc.returncode == 0, out[-3000:]
    ours, theirs = kafka_rows(spark, m)
    assert theirs == theirs0 + appended
    plcheck.assert_rows_equal(ours, m["expected"](), f"Spark after protolake and Spark wrote concurrently "
                              f"({m['store']}; protolake's log: {log}, table: {m['uri']})")
    info = pl.inspect(m["uri"])
    assert info["numRecords"] == len(ours) + theirs
