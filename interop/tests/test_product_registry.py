"""Product interop of issue 15: a topic whose records Confluent's own Python
serializer (confluent-kafka ProtobufSerializer) framed and registered, read by
`protolake run` with a schema registry URL and a subject and no descriptor
file. The producer moves from schema version 1 to a compatible version 2 in
the middle of the second run (the table evolves on its next commit) and
sends records of an incompatible version 3 (dead-lettered with the diff
while the table keeps committing) and records framed with a schema id the
registry does not know (dead-lettered with the reason); Spark + delta-spark
and delta-rs read every row of both versions, v1 rows null in v2's new
column; `history` shows the subject and version each commit was written
with. Payment imports Money from its own file, which the serializer
registers as a reference under its own subject.

The registry is a real Apicurio Registry server (in-memory storage; its
Confluent-compatible API, /apis/ccompat/v7), assembled from Maven Central
by interop/install.sh and started by interop/start.sh.
"""

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import plcheck
import protolake_interop
import srserde

N1, N2, N3, N4 = 120, 80, 5, 40  # v1, v2, v3 (incompatible), v2 again
NU = 3  # records framed with a schema id the registry does not know
UNKNOWN_ID = 2**31 - 1


@pytest.fixture(scope="module")
def registry():
    """The Apicurio Registry server's pid (for SIGSTOP) and its
    Confluent-compatible URL."""
    url = protolake_interop.env("PLTEST_INTEROP_REGISTRY_URL")
    pid = int((Path(protolake_interop.env("PLTEST_INTEROP_RUN")) / "apicurio.pid").read_text())
    yield pid, url
    os.kill(pid, signal.SIGCONT)  # never leave it stopped


def registry_config(path, brokers, run_id, name, uri, topic, registry_url, registry="", flush="", level="warn"):
    """A protolake.yaml with one registry-fed table (no descriptor file)."""
    extra = f"\n      {registry}" if registry else ""
    path.write_text(f"""kafka:
  brokers: [{brokers}]
  group_id: g-{run_id}
tables:
  - name: {name}
    uri: "{uri}"
    topics: [{topic}]
    schema_registry:
      url: {registry_url}{extra}
    flush:
      {flush or "max_rows: 100000"}
http:
  listen: "off"
log:
  format: text
  level: {level}
""")
    return path


@pytest.fixture(scope="module")
def payments(tmp_path_factory, protolake_bin, kafka_brokers, registry):
    registry_url = registry[1]
    pl = plcheck.Protolake(protolake_bin)
    work = tmp_path_factory.mktemp("payments")
    run_id = uuid.uuid4().hex[:8]
    topic = f"payments-{run_id}"
    uri = f"file://{work}/lake/payments"
    cfg = registry_config(work / "protolake.yaml", kafka_brokers, run_id, "payments", uri, topic, registry_url,
                          flush="max_rows: 50")
    ids = {1: srserde.produce(kafka_brokers, registry_url, topic, 1, range(0, N1))}
    pl.run_until_caught_up(cfg)
    ids[2] = srserde.produce(kafka_brokers, registry_url, topic, 2, range(N1, N1 + N2))
    ids[3] = srserde.produce(kafka_brokers, registry_url, topic, 3, range(N1 + N2, N1 + N2 + N3))
    ids[2] = srserde.produce(kafka_brokers, registry_url, topic, 2, range(N1 + N2 + N3, N1 + N2 + N3 + N4))
    srserde.produce(kafka_brokers, registry_url, topic, 2, range(N1 + N2 + N3 + N4, N1 + N2 + N3 + N4 + NU),
                    schema_id=UNKNOWN_ID)
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


def dead_letters(payments):
    from deltalake import DeltaTable

    return DeltaTable(str(payments["dlq"])).to_pyarrow_table().to_pylist()


def test_incompatible_version_dead_lettered_with_the_diff(payments):
    dl = [d for d in dead_letters(payments) if "incompatible schema" in d["error"]]
    assert len(dl) == N3, dead_letters(payments)
    for d in dl:
        assert "id (field 1) type changed (string → int64)" in d["error"], d["error"]
        assert f"schema id {payments['ids'][3]}" in d["error"]


def test_unknown_schema_id_dead_lettered(payments):
    dl = dead_letters(payments)
    unknown = [d for d in dl if "schema id unknown to the registry" in d["error"]]
    assert len(unknown) == NU and len(dl) == N3 + NU, dl
    for d in unknown:
        assert str(UNKNOWN_ID) in d["error"], d["error"]


def test_history_shows_subject_and_version(payments):
    out = payments["pl"]("history", payments["uri"])
    assert f"{payments['subject']}/1" in out and f"{payments['subject']}/2*" in out, out


def test_registry_outage_is_backpressure(tmp_path, protolake_bin, kafka_brokers, registry):
    """The registry hangs (SIGSTOP) for 30 s while records with a schema id
    protolake has not seen wait in the topic: nothing is dead-lettered,
    nothing is committed past the first of them, and once the registry
    answers again every record lands exactly once."""
    pid, registry_url = registry
    run_id = uuid.uuid4().hex[:8]
    topic = f"outage-{run_id}"
    uri = f"file://{tmp_path}/lake/outage"
    cfg = registry_config(tmp_path / "protolake.yaml", kafka_brokers, run_id, "outage", uri, topic, registry_url,
                          registry="timeout: 2s\n      max_backoff: 1s", flush="commit_interval: 1s", level="debug")
    pl = plcheck.Protolake(protolake_bin)
    srserde.produce(kafka_brokers, registry_url, topic, 1, range(0, 50))
    pl.run_until_caught_up(cfg)
    assert pl.inspect(uri)["numRecords"] == 50
    # A new schema id, registered before the outage: protolake meets it
    # only after the registry hangs.
    srserde.produce(kafka_brokers, registry_url, topic, 2, range(50, 150))
    os.kill(pid, signal.SIGSTOP)
    try:
        log = open(tmp_path / "run.log", "w")
        run = subprocess.Popen([str(protolake_bin), "run", "--config", str(cfg), "--until-caught-up"],
                               env=protolake_interop.protolake_env(**plcheck.s3_env()),
                               stdout=log, stderr=subprocess.STDOUT, text=True)
        time.sleep(30)
        assert run.poll() is None, (tmp_path / "run.log").read_text()
        info = pl.inspect(uri)
        assert info["numRecords"] == 50, "rows committed past an undecoded record"
        from deltalake import DeltaTable
        dlq = tmp_path / "lake/outage_dlq"
        assert not (dlq / "_delta_log").exists() or DeltaTable(str(dlq)).to_pyarrow_table().num_rows == 0
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        run.wait(timeout=90)
    finally:
        run.kill()
        log.close()
        out = (tmp_path / "run.log").read_text()
        (Path(os.environ.get("PLTEST_INTEROP_RUN", "/tmp")) / "outage-run.log").write_text(out)
    assert run.returncode == 0, out[-5000:]
    assert "schema registry unavailable" in out, out
    from deltalake import DeltaTable
    rows = sorted(r["id"] for r in DeltaTable(str(tmp_path / "lake/outage")).to_pyarrow_table().to_pylist())
    assert rows == [f"p-{i:05d}" for i in range(150)]
    dlq = tmp_path / "lake/outage_dlq"
    assert not (dlq / "_delta_log").exists() or DeltaTable(str(dlq)).to_pyarrow_table().num_rows == 0
