"""Product interop of issue 15: a topic whose records Confluent's own Python
serializer (confluent-kafka ProtobufSerializer) framed and registered, read by
`protolake run` with a schema registry URL and a subject and no descriptor
file. The producer moves from schema version 1 to a compatible version 2 in
the middle of the second run (the table evolves on its next commit) and
sends records of an incompatible version 3 (dead-lettered with the diff
while the table keeps committing); Spark + delta-spark and delta-rs read
every row of both versions, v1 rows null in v2's new column; `history`
shows the subject and version each commit was written with.

The registry is franz-go's srfake (an in-memory implementation of the
Confluent REST API) served by interop/registry: no registry server could be
installed here from the package registries (see docs/operations.md).
"""

import os
import subprocess
import uuid
from pathlib import Path

import pytest

import plcheck
import protolake_interop
import srserde

N1, N2, N3, N4 = 120, 80, 5, 40  # v1, v2, v3 (incompatible), v2 again


@pytest.fixture(scope="module")
def registry_url():
    binary = Path(os.environ.get("PLTEST_INTEROP_RUN", "/tmp/protolake-interop-run")) / "bin" / "registry"
    subprocess.run(["go", "build", "-o", str(binary), "./interop/registry"], cwd=protolake_interop.REPO_ROOT, check=True)
    proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on "), line
    yield line.removeprefix("listening on ")
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def payments(tmp_path_factory, protolake_bin, kafka_brokers, registry_url):
    pl = plcheck.Protolake(protolake_bin)
    work = tmp_path_factory.mktemp("payments")
    run_id = uuid.uuid4().hex[:8]
    topic = f"payments-{run_id}"
    uri = f"file://{work}/lake/payments"
    cfg = work / "protolake.yaml"
    cfg.write_text(f"""kafka:
  brokers: [{kafka_brokers}]
  group_id: g-{run_id}
tables:
  - name: payments
    uri: "{uri}"
    topics: [{topic}]
    schema_registry:
      url: {registry_url}
    flush:
      max_rows: 50
http:
  listen: "off"
log:
  format: text
  level: warn
""")
    ids = {1: srserde.produce(kafka_brokers, registry_url, topic, 1, range(0, N1))}
    pl.run_until_caught_up(cfg)
    ids[2] = srserde.produce(kafka_brokers, registry_url, topic, 2, range(N1, N1 + N2))
    ids[3] = srserde.produce(kafka_brokers, registry_url, topic, 3, range(N1 + N2, N1 + N2 + N3))
    ids[2] = srserde.produce(kafka_brokers, registry_url, topic, 2, range(N1 + N2 + N3, N1 + N2 + N3 + N4))
    pl.run_until_caught_up(cfg)
    return {"pl": pl, "uri": uri, "path": work / "lake/payments", "dlq": work / "lake/payments_dlq",
            "topic": topic, "ids": ids, "subject": f"{topic}-value"}


def want_row(i):
    method = None if i < N1 else "card"
    return (f"p-{i:05d}", "EUR", i, method)


def good():
    return [i for i in range(N1 + N2 + N3 + N4) if not N1 + N2 <= i < N1 + N2 + N3]


def test_table_follows_the_registry(payments):
    info = payments["pl"].inspect(payments["uri"])
    assert info["numRecords"] == len(good())
    assert info["proto"]["version"] == f"{payments['subject']}/2", info["proto"]
    conf = info["configuration"]
    assert conf["protolake.registry.subject"] == payments["subject"]
    assert conf["protolake.registry.version"] == "2"
    assert conf["protolake.registry.schema_id"] == str(payments["ids"][2])


def test_spark_reads_both_versions(spark, payments):
    df = spark.read.format("delta").load(f"file://{payments['path']}")
    assert [f.name for f in df.schema.fields] == ["id", "amount", "method", "_kafka", "_unknown"]
    rows = sorted((r["id"], r["amount"]["currency"], r["amount"]["units"], r["method"]) for r in df.collect())
    assert rows == [want_row(i) for i in good()]
    assert all(r["_unknown"] is None for r in df.collect())


def test_delta_rs_reads_both_versions(payments):
    from deltalake import DeltaTable

    t = DeltaTable(str(payments["path"])).to_pyarrow_table()
    rows = sorted((r["id"], r["amount"]["currency"], r["amount"]["units"], r["method"]) for r in t.to_pylist())
    assert rows == [want_row(i) for i in good()]


def test_incompatible_version_dead_lettered_with_the_diff(payments):
    from deltalake import DeltaTable

    dl = DeltaTable(str(payments["dlq"])).to_pyarrow_table().to_pylist()
    assert len(dl) == N3
    for d in dl:
        assert "incompatible schema" in d["error"], d["error"]
        assert "id (field 1) type changed (string → int64)" in d["error"], d["error"]
        assert f"schema id {payments['ids'][3]}" in d["error"]


def test_history_shows_subject_and_version(payments):
    out = payments["pl"]("history", payments["uri"])
    assert f"{payments['subject']}/1" in out and f"{payments['subject']}/2*" in out, out
