"""Product interop: delta-rs as a second writer of a protolake table (the
delta-rs counterpart of test_product_mixed's Spark appends). delta-rs's
append must leave the table usable by protolake: inspect, a restarted
`protolake run` that streams on, and compaction.
"""

import json
import uuid

import pytest

import plcheck


@pytest.fixture
def rs_table(tmp_path, protolake_bin, kafka_brokers):
    pl = plcheck.Protolake(protolake_bin)
    plgen = plcheck.build_plgen()
    topic = f"deltars-{uuid.uuid4().hex[:8]}"
    schema = pl.schema(plcheck.ADTRACK_DESC, "adtrack.v1.AdImpression", "--partition", "day(event_time)")
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    uri = f"file://{tmp_path}/lake/ads"
    cfg = plcheck.write_config(tmp_path / "pl.yaml", kafka_brokers, f"g-{topic}", [{
        "name": "ads", "uri": uri, "topics": [topic], "message": "adtrack.v1.AdImpression",
        "descriptor_set": plcheck.ADTRACK_DESC, "partition_by": ["day(event_time)"], "flush": {"max_rows": 100},
    }])

    def produce(first, n):
        plcheck.sh([plgen, "adtrack", "--brokers", kafka_brokers, "--topic", topic, "--from", first, "--n", n,
                    "--expect", tmp_path / "expected.jsonl", "--schema", tmp_path / "schema.json"])

    produce(0, 300)
    pl.run_until_caught_up(cfg)
    return {"pl": pl, "uri": uri, "path": str(tmp_path / "lake/ads"), "cfg": cfg, "produce": produce,
            "schema": schema, "expected": lambda: plcheck.expected_rows(
                plcheck.add_day(plcheck.read_expected(tmp_path / "expected.jsonl")), schema)}


def deltars_append(path, n):
    """Appends n rows of the table itself (renamed ids, no Kafka lineage)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable, write_deltalake

    t = DeltaTable(path).to_pyarrow_table().slice(0, n)
    t = t.set_column(t.schema.get_field_index("impression_id"), "impression_id",
                     pc.binary_join_element_wise(pa.scalar("rs-"), t["impression_id"], ""))
    kafka = t.schema.field("_kafka")
    t = t.set_column(t.schema.get_field_index("_kafka"), kafka, pa.nulls(n, kafka.type))
    write_deltalake(path, t, mode="append")


def test_deltars_append_is_read_by_deltars(rs_table):
    from deltalake import DeltaTable

    deltars_append(rs_table["path"], 10)
    dt = DeltaTable(rs_table["path"])
    assert dt.to_pyarrow_table().num_rows == 310
    # Our rows are untouched, Kafka coordinates and values.
    rows = [r for r in plcheck.arrow_rows(dt.to_pyarrow_table(), plcheck.protojson_columns(rs_table["schema"]))
            if r["_kafka"] is not None]
    plcheck.assert_rows_equal(rows, rs_table["expected"](), "delta-rs after its own append")


def test_protolake_continues_after_deltars_append(rs_table):
    from deltalake import DeltaTable

    pl = rs_table["pl"]
    deltars_append(rs_table["path"], 10)
    assert pl.inspect(rs_table["uri"])["numRecords"] == 310
    rs_table["produce"](300, 200)
    pl.run_until_caught_up(rs_table["cfg"])
    assert pl.inspect(rs_table["uri"])["numRecords"] == 510
    pl("compact", rs_table["uri"], "--min-files", "2")
    assert pl.inspect(rs_table["uri"])["numRecords"] == 510
    assert DeltaTable(rs_table["path"]).to_pyarrow_table().num_rows == 510
