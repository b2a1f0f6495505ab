"""Product interop, points 1-4 of issue 7: `protolake run --until-caught-up`
consumes the ad-tracking topic from the real Kafka broker into tables on
local disk, MinIO and HDFS; Spark + delta-spark, delta-rs and DuckDB read
each table and must return exactly the rows interop/plgen derived from the
produced messages (docs/type-mapping.md), with the derived schema, at the
latest and an earlier version, and after our checkpoint and compaction.

The tests of one store run in file order against one table: the checkpoint
and compaction tests come last because they add versions.
"""

import json
import urllib.parse
import uuid
from pathlib import Path

import pytest

import plcheck
import protolake_interop

STORES = ["local", "s3", "hdfs"]
BATCH_A, BATCH_B = 1200, 800  # two runs: two sets of versions for time travel


class Table:
    """One protolake table and its addresses for each reader."""

    def __init__(self, store, uri, spark_uri, rs_uri, rs_options, group, dlq_uri=None):
        self.store, self.uri, self.spark_uri, self.dlq_uri = store, uri, spark_uri, dlq_uri
        self.rs_uri, self.rs_options, self.group = rs_uri, rs_options, group
        self.version_a = self.rows_a = None

    def delta_table(self, version=None):
        from deltalake import DeltaTable

        return DeltaTable(self.rs_uri, version=version, storage_options=self.rs_options)


@pytest.fixture(scope="module")
def ads(tmp_path_factory, protolake_bin, kafka_brokers, hdfs_url, s3):
    """Produces BATCH_A impressions, runs protolake into the three stores,
    then BATCH_B more and runs again."""
    pl = plcheck.Protolake(protolake_bin)
    plgen = plcheck.build_plgen()
    work = tmp_path_factory.mktemp("ads")
    run_id = uuid.uuid4().hex[:8]
    topic = f"ads-{run_id}"
    schema = pl.schema(plcheck.ADTRACK_DESC, "adtrack.v1.AdImpression", "--partition", "day(event_time)")
    (work / "schema.json").write_text(json.dumps(schema))
    expect = work / "expected.jsonl"

    bucket = f"lake-{run_id}"
    from pyarrow import fs
    fs.S3FileSystem(access_key=s3["access_key"], secret_key=s3["secret_key"], region=s3["region"],
                    endpoint_override=s3["endpoint"], scheme="http", allow_bucket_creation=True).create_dir(bucket)
    q = urllib.parse.urlencode({"endpoint": s3["endpoint"], "path_style": "true"})
    tables = {
        "local": Table("local", f"file://{work}/lake/ads", f"file://{work}/lake/ads", str(work / "lake/ads"), None,
                       f"g-local-{run_id}"),
        "s3": Table("s3", f"s3://{bucket}/ads?{q}", f"s3a://{bucket}/ads", f"s3://{bucket}/ads",
                    protolake_interop.s3_storage_options(), f"g-s3-{run_id}",
                    # The default (uri + "_dlq") breaks a URI with a query:
                    # test_default_dead_letter_uri_keeps_s3_query.
                    dlq_uri=f"s3://{bucket}/ads_dlq?{q}"),
        "hdfs": Table("hdfs", f"{hdfs_url}/lake-{run_id}/ads", f"{hdfs_url}/lake-{run_id}/ads",
                      f"{hdfs_url}/lake-{run_id}/ads", None, f"g-hdfs-{run_id}"),
    }

    def produce(first, n):
        plcheck.sh([plgen, "adtrack", "--brokers", kafka_brokers, "--topic", topic, "--partitions", 3,
                    "--from", first, "--n", n, "--expect", expect, "--schema", work / "schema.json"])

    def run_all():
        for t in tables.values():
            cfg = plcheck.write_config(work / f"{t.store}.yaml", kafka_brokers, t.group, [{
                "name": "ads", "uri": t.uri, "topics": [topic], "message": "adtrack.v1.AdImpression",
                "descriptor_set": plcheck.ADTRACK_DESC, "partition_by": ["day(event_time)"],
                # Small files: several per partition, for compaction.
                "flush": {"max_rows": 150}, "dead_letter_uri": t.dlq_uri,
            }])
            pl.run_until_caught_up(cfg)

    produce(0, BATCH_A)
    run_all()
    for t in tables.values():
        info = pl.inspect(t.uri)
        t.version_a, t.rows_a = info["version"], info["numRecords"]
    produce(BATCH_A, BATCH_B)
    run_all()

    rows = plcheck.add_day(plcheck.read_expected(expect))
    return {"pl": pl, "topic": topic, "schema": schema, "tables": tables, "work": work,
            "expected": plcheck.expected_rows(rows, schema), "protojson": plcheck.protojson_columns(schema)}


def last_offsets(rows):
    out = {}
    for r in rows:
        k = r["_kafka"]
        out[k["partition"]] = max(out.get(k["partition"], -1), k["offset"])
    return out


def spark_rows(spark, table_uri, protojson, **options):
    reader = spark.read.format("delta")
    for k, v in options.items():
        reader = reader.option(k, v)
    df = reader.load(table_uri)
    return df, [plcheck.norm_spark_row(r, df.schema, protojson) for r in df.collect()]


# 1. protolake run against the real broker ------------------------------------

@pytest.mark.parametrize("store", STORES)
def test_run_until_caught_up_writes_table(ads, store):
    t = ads["tables"][store]
    info = ads["pl"].inspect(t.uri)
    assert info["numRecords"] == BATCH_A + BATCH_B
    assert t.rows_a == BATCH_A and t.version_a < info["version"]
    want = {f"protolake:{t.group}:{ads['topic']}:{p}": o for p, o in last_offsets(ads["expected"]).items()}
    assert info["txns"] == want
    assert info["partitionColumns"] == ["event_time_day"]
    assert len(info["partitions"]) >= 3  # 2000 impressions 3 minutes apart: 5 days


# 2. Spark ----------------------------------------------------------------------

@pytest.mark.parametrize("store", STORES)
def test_spark_reads_rows_and_schema(spark, ads, store):
    t = ads["tables"][store]
    df, rows = spark_rows(spark, t.spark_uri, ads["protojson"])
    assert len(rows) == BATCH_A + BATCH_B
    # The schema, field by field: types, nullability, containsNull,
    # valueContainsNull, decimal(20,0), timestamps, nested structs; and each
    # field's metadata (proto origin) as Delta stored it.
    got = df.schema.jsonValue()
    assert plcheck.schema_differences(got, ads["schema"]) == []
    assert got == ads["schema"], "field metadata differs"
    plcheck.assert_rows_equal(rows, ads["expected"], f"Spark on {store}")


@pytest.mark.parametrize("store", STORES)
def test_spark_time_travel(spark, ads, store):
    t = ads["tables"][store]
    df, rows = spark_rows(spark, t.spark_uri, ads["protojson"], versionAsOf=t.version_a)
    assert len(rows) == BATCH_A
    first = [r for r in ads["expected"] if r["impression_id"] in {x["impression_id"] for x in rows}]
    assert len(first) == BATCH_A
    plcheck.assert_rows_equal(rows, first, f"Spark versionAsOf {t.version_a} on {store}")


# 3. delta-rs -----------------------------------------------------------------

def file_names(uris):
    return sorted(urllib.parse.unquote(u).split("/ads/", 1)[1] for u in uris)


@pytest.mark.parametrize("store", STORES)
def test_deltars_reads_snapshot(spark, ads, store):
    t = ads["tables"][store]
    info = ads["pl"].inspect(t.uri)
    dt = t.delta_table()
    assert dt.version() == info["version"]
    # Files: delta-rs, Spark and our inspect agree on the active set.
    rs_files = file_names(dt.file_uris())
    spark_files = file_names(spark.read.format("delta").load(t.spark_uri).inputFiles())
    assert rs_files == spark_files
    assert len(rs_files) == info["numFiles"]
    import pyarrow as pa
    import pyarrow.compute as pc

    actions = pa.table(dt.get_add_actions(flatten=True))
    assert pc.sum(actions.column("size_bytes")).as_py() == info["totalSize"]
    assert pc.sum(actions.column("num_records")).as_py() == info["numRecords"]
    per_partition = {}
    for v in actions.column("partition.event_time_day").to_pylist():
        per_partition[str(v)] = per_partition.get(str(v), 0) + 1
    assert per_partition == {p["values"]["event_time_day"]: p["numFiles"] for p in info["partitions"]}
    # Our exactly-once watermarks as delta-rs reports them.
    for app_id, version in info["txns"].items():
        assert dt.transaction_version(app_id) == version, app_id
    assert dt.metadata().partition_columns == ["event_time_day"]
    rows = plcheck.arrow_rows(dt.to_pyarrow_table(), ads["protojson"])
    plcheck.assert_rows_equal(rows, ads["expected"], f"delta-rs on {store}")
    # Time travel in delta-rs too.
    old = t.delta_table(version=t.version_a)
    assert old.to_pyarrow_table().num_rows == BATCH_A


# 4. DuckDB -------------------------------------------------------------------

@pytest.mark.parametrize("store", STORES)
def test_duckdb_reads_snapshot_files(ads, store, tmp_path):
    import duckdb

    t = ads["tables"][store]
    files = plcheck.fetch_files(t.delta_table().file_uris(), tmp_path)
    paths = [str(p) for p in files.values()]
    # The partition column lives in the paths (Hive style), not in the files.
    tbl = duckdb.sql("select * from read_parquet($files, hive_partitioning = false)", params={"files": paths}).arrow()
    if hasattr(tbl, "read_all"):
        tbl = tbl.read_all()
    rows = plcheck.arrow_rows(tbl, ads["protojson"])
    assert "event_time_day" not in tbl.column_names
    plcheck.assert_rows_equal(rows, ads["expected"], f"DuckDB on {store}", ignore=("event_time_day",))
    # An aggregate straight from DuckDB equals Spark's (decimal(20,0) sums).
    got = duckdb.sql("select count(*), sum(user_id_hash), sum(advertiser_id), count(distinct impression_id) "
                     "from read_parquet($files)", params={"files": paths}).fetchone()
    want_sum = sum(r["user_id_hash"] for r in ads["expected"])
    assert got == (BATCH_A + BATCH_B, want_sum, sum(r["advertiser_id"] for r in ads["expected"]), BATCH_A + BATCH_B)


# Statistics: readers skip files and row groups by our stats ------------------

def stat_predicates(rows):
    """(name, Spark SQL, DuckDB SQL or None, Python test) over the expected
    rows, with literals at the data's edges: a file whose min/max stats are
    off by one unit is skipped and its rows go missing."""
    import random

    rnd = random.Random(3)
    sample = rnd.sample(rows, 5)
    ts = sorted(r["event_time"] for r in rows)
    ua = max(r["device"]["user_agent"] for r in rows)
    kts = max(r["_kafka"]["timestamp"] for r in rows)
    big = max(r["user_id_hash"] for r in rows)
    out = [
        ("uint64 above int64", "user_id_hash > 9223372036854775807", "user_id_hash > 9223372036854775807",
         lambda r: r["user_id_hash"] > 9223372036854775807),
        ("uint64 max", f"user_id_hash >= {big}", f"user_id_hash >= {big}", lambda r: r["user_id_hash"] >= big),
        ("uint64 small", "user_id_hash < 1000000000000000000", "user_id_hash < 1000000000000000000",
         lambda r: r["user_id_hash"] < 10**18),
        ("timestamp max", f"event_time >= timestamp_micros({ts[-1]})", None, lambda r: r["event_time"] >= ts[-1]),
        ("timestamp min", f"event_time <= timestamp_micros({ts[0]})", None, lambda r: r["event_time"] <= ts[0]),
        ("kafka timestamp max", f"_kafka.timestamp >= timestamp_micros({kts})", None,
         lambda r: r["_kafka"]["timestamp"] >= kts),
        ("long string max", f"device.user_agent >= '{ua}'", f"device.user_agent >= '{ua}'",
         lambda r: r["device"]["user_agent"] >= ua),
        ("nested string", "geo.country = 'US'", "geo.country = 'US'", lambda r: r["geo"]["country"] == "US"),
        ("double", "geo.latitude < -89.5", "geo.latitude < -89.5", lambda r: r["geo"]["latitude"] < -89.5),
        ("float", "viewability_score > 0.99", "viewability_score > 0.99", lambda r: r["viewability_score"] > 0.99),
        ("negative sint64", "clock_skew_ms < -995", "clock_skew_ms < -995", lambda r: r["clock_skew_ms"] < -995),
        ("sint32", "placement.position = -2", "placement.position = -2", lambda r: r["placement"]["position"] == -2),
        ("null count", "viewable_ms IS NULL", "viewable_ms IS NULL", lambda r: r["viewable_ms"] is None),
        ("not null", "consent_string IS NOT NULL", "consent_string IS NOT NULL",
         lambda r: r["consent_string"] is not None),
        ("oneof decimal", "cpm_micros > 19000000", "cpm_micros > 19000000",
         lambda r: r["cpm_micros"] is not None and r["cpm_micros"] > 19000000),
        ("fixed32 as long", "sampling_rate_ppm >= 999000", "sampling_rate_ppm >= 999000",
         lambda r: r["sampling_rate_ppm"] >= 999000),
        ("sfixed64", "bid_floor_nanos < 5000000", "bid_floor_nanos < 5000000", lambda r: r["bid_floor_nanos"] < 5000000),
        ("partition", "event_time_day = DATE'2026-11-02'", None, lambda r: r["event_time_day"] == "2026-11-02"),
    ]
    for i, r in enumerate(sample):
        out += [
            (f"string eq {i}", f"impression_id = '{r['impression_id']}'", f"impression_id = '{r['impression_id']}'",
             lambda x, v=r["impression_id"]: x["impression_id"] == v),
            (f"fixed64 eq {i}", f"request_id = {r['request_id']}", f"request_id = {r['request_id']}",
             lambda x, v=r["request_id"]: x["request_id"] == v),
            (f"timestamp eq {i}", f"event_time = timestamp_micros({r['event_time']})", None,
             lambda x, v=r["event_time"]: x["event_time"] == v),
            (f"kafka offset {i}", f"_kafka.partition = {r['_kafka']['partition']} AND _kafka.offset = {r['_kafka']['offset']}",
             f"_kafka.partition = {r['_kafka']['partition']} AND _kafka.offset = {r['_kafka']['offset']}",
             lambda x, k=r["_kafka"]: x["_kafka"]["partition"] == k["partition"] and x["_kafka"]["offset"] == k["offset"]),
        ]
    return out


@pytest.mark.parametrize("store", STORES)
def test_filters_use_our_stats(spark, ads, store, tmp_path):
    """Spark's data skipping (Delta stats) and Parquet row-group filtering
    (Spark, DuckDB) return exactly the matching rows."""
    import duckdb

    t = ads["tables"][store]
    df = spark.read.format("delta").load(t.spark_uri)
    files = [str(p) for p in plcheck.fetch_files(t.delta_table().file_uris(), tmp_path).values()]
    nfiles = len(files)
    wrong = []
    for name, spark_sql, duck_sql, want_fn in stat_predicates(ads["expected"]):
        want = sum(1 for r in ads["expected"] if want_fn(r))
        got = df.where(spark_sql).count()
        if got != want:
            wrong.append(f"Spark {name}: WHERE {spark_sql}: {got} rows, want {want}")
        if duck_sql:
            got = duckdb.sql(f"select count(*) from read_parquet($f) where {duck_sql}", params={"f": files}).fetchone()[0]
            if got != want:
                wrong.append(f"DuckDB {name}: WHERE {duck_sql}: {got} rows, want {want}")
    assert not wrong, "\n".join(wrong)
    # The filters must have had something to skip.
    assert nfiles > 5


# 2 (end). After our checkpoint and our compaction -------------------------------

@pytest.mark.parametrize("store", STORES)
def test_readers_after_checkpoint(spark, ads, store):
    t = ads["tables"][store]
    pl = ads["pl"]
    pl("checkpoint", t.uri)
    info = pl.inspect(t.uri)
    assert info["checkpointVersion"] == info["version"]
    # Spark loads the snapshot from our checkpoint (a fresh DataFrame on the
    # path updates Spark's cached log).
    df, rows = spark_rows(spark, t.spark_uri, ads["protojson"])
    assert len(rows) == BATCH_A + BATCH_B
    plcheck.assert_rows_equal(rows, ads["expected"], f"Spark after checkpoint on {store}")
    from delta.tables import DeltaTable as SparkDeltaTable

    detail = SparkDeltaTable.forPath(spark, t.spark_uri).detail().collect()[0]
    assert detail["numFiles"] == info["numFiles"]
    # delta-rs too, including the txns, which now come from the checkpoint.
    dt = t.delta_table()
    assert dt.version() == info["version"]
    for app_id, version in info["txns"].items():
        assert dt.transaction_version(app_id) == version, app_id
    assert dt.to_pyarrow_table().num_rows == BATCH_A + BATCH_B


@pytest.mark.parametrize("store", STORES)
def test_readers_after_compaction(spark, ads, store):
    t = ads["tables"][store]
    pl = ads["pl"]
    before = pl.inspect(t.uri)
    pl("compact", t.uri, "--min-files", "2", "--target-size", "64MiB")
    after = pl.inspect(t.uri)
    assert after["version"] > before["version"]
    assert after["numFiles"] < before["numFiles"]
    assert after["numRecords"] == BATCH_A + BATCH_B
    assert after["txns"] == before["txns"]
    df, rows = spark_rows(spark, t.spark_uri, ads["protojson"])
    plcheck.assert_rows_equal(rows, ads["expected"], f"Spark after compaction on {store}")
    assert len(df.inputFiles()) == after["numFiles"]
    # The version before the compaction still reads the same rows.
    _, old = spark_rows(spark, t.spark_uri, ads["protojson"], versionAsOf=before["version"])
    assert len(old) == BATCH_A + BATCH_B
    dt = t.delta_table()
    assert dt.version() == after["version"]
    plcheck.assert_rows_equal(plcheck.arrow_rows(dt.to_pyarrow_table(), ads["protojson"]), ads["expected"],
                              f"delta-rs after compaction on {store}")
    # Spark's history shows our OPTIMIZE as such.
    from delta.tables import DeltaTable as SparkDeltaTable

    ops = [r["operation"] for r in SparkDeltaTable.forPath(spark, t.spark_uri).history().collect()]
    assert ops[0] == "OPTIMIZE", ops


# Regression tests for product bugs the interop tier found ---------------------

def test_default_dead_letter_uri_keeps_s3_query(ads, kafka_brokers, s3):
    pl = ads["pl"]
    work = ads["work"]
    bucket = ads["tables"]["s3"].spark_uri.split("/")[2]
    q = urllib.parse.urlencode({"endpoint": s3["endpoint"], "path_style": "true"})
    uri = f"s3://{bucket}/dlq-default?{q}"
    cfg = plcheck.write_config(work / "dlq-default.yaml", kafka_brokers, f"g-dlq-{uuid.uuid4().hex[:8]}", [{
        "name": "ads", "uri": uri, "topics": [ads["topic"]], "message": "adtrack.v1.AdImpression",
        "descriptor_set": plcheck.ADTRACK_DESC, "partition_by": ["day(event_time)"],
    }])
    pl.run_until_caught_up(cfg)
    assert pl.inspect(uri)["numRecords"] == BATCH_A + BATCH_B
