"""Issue 10, case 4: Spark with its DEFAULT configuration
(spark.sql.parquet.datetimeRebaseModeInRead=EXCEPTION) reads every Timestamp
the mapping allows, years 1 to 9999, from a protolake table: the data files'
footers say (org.apache.spark.version without org.apache.spark.legacyDateTime)
that they use the proleptic Gregorian calendar. Before the fix Spark failed
with INCONSISTENT_BEHAVIOR_CROSS_VERSION.READ_ANCIENT_DATETIME. Checked on
the files `run` writes and again on the files `compact` writes.
"""

import datetime
import json
import uuid

import plcheck

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def micros(text):
    """Microseconds since the epoch of an RFC 3339 UTC timestamp (sub-µs cut)."""
    date, _, frac = text.rstrip("Z").partition(".")
    dt = datetime.datetime.strptime(date, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    delta = dt - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + int((frac + "000000")[:6])


TIMESTAMPS = [
    "0001-01-01T00:00:00Z",              # Go's zero time
    "0001-01-01T00:00:00.000001Z",
    "1000-06-15T12:00:00Z",
    "1582-10-10T00:00:00Z",              # inside the Julian→Gregorian gap
    "1899-12-31T23:59:59.999999Z",
    "2026-11-23T10:00:00Z",
    "9999-12-31T23:59:59.999999999Z",    # the last the mapping allows
]


def test_spark_default_config_reads_ancient_and_far_timestamps(spark, protolake_bin, kafka_brokers, tmp_path):
    assert spark.conf.get("spark.sql.parquet.datetimeRebaseModeInRead", "EXCEPTION") == "EXCEPTION"
    pl = plcheck.Protolake(protolake_bin)
    plgen = plcheck.build_plgen()
    run_id = uuid.uuid4().hex[:8]
    message = "edge.WellKnown"
    schema = pl.schema(plcheck.EDGE_DESC, message)
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    msgs = [{"ts": ts, "r_ts": [ts, TIMESTAMPS[0]], "m_ts": {"k": ts}} for ts in TIMESTAMPS]
    topic = f"ts-{run_id}"
    plcheck.sh([plgen, "json", "--brokers", kafka_brokers, "--topic", topic, "--partitions", 1,
                "--descriptor-set", plcheck.EDGE_DESC, "--message", message,
                "--expect", tmp_path / "expect.jsonl", "--schema", tmp_path / "schema.json"],
               input="\n".join(json.dumps(m) for m in msgs) + "\n")
    uri = f"file://{tmp_path}/lake/ts"
    cfg = plcheck.write_config(tmp_path / "ts.yaml", kafka_brokers, f"g-ts-{run_id}", [
        {"name": "ts", "uri": uri, "topics": [topic], "message": message,
         "descriptor_set": plcheck.EDGE_DESC, "flush": {"max_rows": 2}}])
    pl.run_until_caught_up(cfg)
    want = [(micros(ts), [micros(ts), micros(TIMESTAMPS[0])], micros(ts)) for ts in TIMESTAMPS]

    def spark_rows():
        df = spark.read.format("delta").load(uri)
        rows = df.selectExpr("_kafka.offset AS o", "unix_micros(ts) AS ts",
                             "transform(r_ts, x -> unix_micros(x)) AS r_ts",
                             "unix_micros(m_ts['k']) AS m").orderBy("o").collect()
        # Every column, rendered by Spark itself (PySpark cannot turn a
        # year-1 timestamp into a Python datetime in every time zone).
        every = [json.loads(r[0]) for r in df.selectExpr("to_json(struct(*))").collect()]
        assert len(every) == len(TIMESTAMPS)
        assert {e["ts"][:4] for e in every} == {ts[:4] for ts in TIMESTAMPS}
        return [(r["ts"], list(r["r_ts"]), r["m"]) for r in rows]

    assert spark_rows() == want
    inspect = pl.inspect(uri)
    assert inspect["numFiles"] >= 2, inspect["numFiles"]
    pl("compact", uri, "--min-files", "2")
    assert pl.inspect(uri)["numFiles"] == 1
    assert spark_rows() == want
