"""Product interop, point 6 of issue 7: the edge-case protos of
testdata/proto/edge (unsigned, enums, oneofs, maps of messages, recursion cut
into bytes, wrappers, Any, Struct, proto2 groups and defaults) go through the
real Kafka broker and `protolake run` into local Delta tables, and Spark reads
them back as docs/type-mapping.md says: the derived schema field by field, every value
equal to what interop/plgen derives from the message, and spot checks of the
mapping's rules spelled out here.
"""

import datetime
import decimal
import json
import uuid

import pytest

import plcheck

U64 = "18446744073709551615"
I64MIN, I64MAX = "-9223372036854775808", "9223372036854775807"

# protojson, one message per entry.
MESSAGES = {
    "edge.Scalars": [
        {},
        {"f_int32": 2147483647, "f_int64": I64MAX, "f_uint32": 4294967295, "f_uint64": U64,
         "f_sint32": -2147483648, "f_sint64": I64MIN, "f_fixed32": 4294967295, "f_fixed64": U64,
         "f_sfixed32": -2147483648, "f_sfixed64": I64MIN, "f_float": 3.4028235e38,
         "f_double": 1.7976931348623157e308, "f_bool": True, "f_string": "héllo ✓ 😀",
         "f_bytes": "AAEC/w==", "f_enum": "COLOR_BLUE"},
        {"f_float": "NaN", "f_double": "-Infinity", "f_enum": 3, "f_uint64": "1", "f_int64": "-1"},
        {"f_float": "Infinity", "f_double": 0.1, "f_enum": "COLOR_RED", "f_uint32": 1},
    ],
    "edge.OptionalScalars": [
        {},
        {"o_int32": 0, "o_int64": "0", "o_uint32": 0, "o_uint64": "0", "o_sint32": 0, "o_sint64": "0",
         "o_fixed32": 0, "o_fixed64": "0", "o_sfixed32": 0, "o_sfixed64": "0", "o_float": 0, "o_double": 0,
         "o_bool": False, "o_string": "", "o_bytes": "", "o_enum": "COLOR_UNSPECIFIED"},
        {"o_uint64": U64, "o_fixed32": 4294967295, "o_enum": 9, "o_string": "x"},
    ],
    "edge.RepeatedScalars": [
        {},
        {"r_int32": [1, -1, 0], "r_int64": [I64MIN, I64MAX], "r_uint32": [4294967295, 0],
         "r_uint64": [U64, "0", "1"], "r_sint32": [-5, 5], "r_sint64": ["-7"], "r_fixed32": [1],
         "r_fixed64": [U64], "r_sfixed32": [-1], "r_sfixed64": ["-2"], "r_float": [1.5, "NaN"],
         "r_double": [-0.5, "Infinity"], "r_bool": [True, False, True], "r_string": ["", "a", "ß"],
         "r_bytes": ["", "AQ=="], "r_enum": ["COLOR_RED", 7, "COLOR_UNSPECIFIED"],
         "u_int32": [3, 2, 1], "u_sint64": ["-3"], "u_double": [2.25], "u_enum": ["COLOR_GREEN", 5]},
    ],
    "edge.WellKnown": [
        {},
        {"ts": "2026-11-20T12:34:56.123456789Z", "dur": "-1.500001500s", "w_double": 2.5, "w_float": 0.25,
         "w_int64": I64MIN, "w_uint64": U64, "w_int32": -3, "w_uint32": 4294967295, "w_bool": False,
         "w_string": "", "w_bytes": "AP8=",
         "any": {"@type": "type.googleapis.com/edge.Point", "x": 1, "y": -2, "label": "p"},
         "struct": {"zeta": [1, "x", None, True], "alpha": {"inner": 2.5}, "mid": "m"},
         "value": "just a string", "list": [1, "two", {"b": 1, "a": 2}], "empty": {},
         "r_ts": ["1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999999Z"], "r_w_int32": [1, 0, -1],
         "m_ts": {"k": "2000-01-01T00:00:00.000001Z"}, "m_value": {"n": None, "s": "v", "o": {"y": 1, "x": [2]}},
         "r_dur": ["0.000001999s", "-0.000000999s", "315576000000s"]},
        {"value": None, "w_double": 0, "w_string": "set", "struct": {}},
    ],
    "edge.Oneofs": [
        {"id": "1"},
        {"id": "2", "c_int": 0},
        {"id": "3", "c_string": "s", "o_bool": False},
        {"id": "4", "c_point": {"x": 1}},
        {"id": "5", "c_color": "COLOR_GREEN", "o_double": 1.5},
        {"id": "6", "c_bytes": ""},
    ],
    "edge.Maps": [
        {},
        {"m_int32": {"-1": "minus one", "2147483647": "max"}, "m_int64": {I64MIN: I64MAX},
         "m_uint32": {"4294967295": 0.5}, "m_uint64": {U64: True, "0": False}, "m_sint32": {"-7": "AQI="},
         "m_sint64": {"-8": 1.25}, "m_fixed32": {"7": "COLOR_RED", "8": 3}, "m_fixed64": {U64: "big"},
         "m_sfixed32": {"-9": "n"}, "m_sfixed64": {"-10": "m"}, "m_bool": {"true": "t", "false": "f"},
         "m_point": {"a": {"x": 1, "y": 2, "label": "l"}, "empty": {}},
         "m_polygon": {"p": {"points": [{"x": 1}, {"x": 2, "y": 3}], "tags": {"k": "v"}}, "q": {}}},
    ],
    "edge.Nested": [
        {},
        {"name": "n", "shape": {"points": [{"x": 1, "y": 1}], "tags": {"a": "b"}},
         "shapes": [{}, {"points": [{"label": "z"}]}],
         "named_shapes": {"sq": {"points": [{"x": 0}, {"x": 1}, {"y": 1}]}},
         "inner": {"origin": {"x": 5}, "path": [{"x": 1}, {"y": 2}],
                   "deeper": {"notes": ["a", "b"], "level": 0}}},
        {"inner": {"deeper": {}}},
    ],
    "edge.Legacy": [
        {"id": "1"},
        {"id": "2", "name": "n", "count": 0, "status": "STATUS_RETIRED",
         "item": [{"sku": "a"}, {"sku": "b", "qty": 5}], "meta": {"source": "s", "flags": ["x", "y"]},
         "unpacked": [1, 2], "packed": [3, 4], "blob": "", "ratio": 0.25, "big": U64},
    ],
    "edge.Forest": [
        {},
        {"name": "f",
         "trees": [{"name": "root", "value": 1, "children": [
             {"name": "c1", "value": 2, "children": [
                 {"name": "g1", "value": 3, "children": [{"name": "gg1", "value": 4}]}]},
             {"name": "c2"}]}],
         "start": {"ping_name": "p0", "pong": {"pong_count": 1, "ping": {"ping_name": "p1", "pong": {
             "pong_count": 2, "ping": {"ping_name": "p2", "pong": {"pong_count": 3}}}}}}},
    ],
}
OPTIONS = {"edge.Forest": {"max_recursion_depth": 1}}


def table_name(message):
    return message.split(".")[1].lower()


@pytest.fixture(scope="module")
def edge(tmp_path_factory, protolake_bin, kafka_brokers):
    pl = plcheck.Protolake(protolake_bin)
    plgen = plcheck.build_plgen()
    work = tmp_path_factory.mktemp("edge")
    run_id = uuid.uuid4().hex[:8]
    out, tables = {}, []
    for message, msgs in MESSAGES.items():
        name = table_name(message)
        opts = OPTIONS.get(message, {})
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in opts.items()]
        schema = pl.schema(plcheck.EDGE_DESC, message, *flags)
        (work / f"{name}.schema.json").write_text(json.dumps(schema))
        topic = f"edge-{name}-{run_id}"
        plcheck.sh([plgen, "json", "--brokers", kafka_brokers, "--topic", topic, "--partitions", 1,
                    "--descriptor-set", plcheck.EDGE_DESC, "--message", message,
                    "--expect", work / f"{name}.jsonl", "--schema", work / f"{name}.schema.json"],
                   input="\n".join(json.dumps(m) for m in msgs) + "\n")
        uri = f"file://{work}/lake/{name}"
        tables.append({"name": name, "uri": uri, "topics": [topic], "message": message,
                       "descriptor_set": plcheck.EDGE_DESC, "schema": opts})
        out[message] = {"uri": uri, "schema": schema, "protojson": plcheck.protojson_columns(schema),
                        "expected": plcheck.expected_rows(plcheck.read_expected(work / f"{name}.jsonl"), schema)}
    cfg = plcheck.write_config(work / "edge.yaml", kafka_brokers, f"g-edge-{run_id}", tables)
    pl.run_until_caught_up(cfg)
    for t in out.values():
        t["inspect"] = pl.inspect(t["uri"])
    return out


@pytest.mark.parametrize("message", list(MESSAGES))
def test_spark_reads_edge_table(spark, edge, message):
    t = edge[message]
    assert t["inspect"]["numRecords"] == len(MESSAGES[message])
    df = spark.read.format("delta").load(t["uri"])
    got = df.schema.jsonValue()
    assert plcheck.schema_differences(got, t["schema"]) == []
    assert got == t["schema"], "field metadata differs"
    rows = [plcheck.norm_spark_row(r, df.schema, t["protojson"]) for r in df.collect()]
    plcheck.assert_rows_equal(rows, t["expected"], f"Spark on {message}")
    # delta-rs agrees.
    from deltalake import DeltaTable

    rs = plcheck.arrow_rows(DeltaTable(t["uri"]).to_pyarrow_table(), t["protojson"])
    plcheck.assert_rows_equal(rs, t["expected"], f"delta-rs on {message}")


def spark_df(spark, edge, message):
    return spark.read.format("delta").load(edge[message]["uri"]).orderBy("_kafka.offset")


def test_spark_types_follow_design(spark, edge):
    """The mapping's rules, spelled out for a reader of docs/type-mapping.md."""
    from pyspark.sql import types as T

    s = spark_df(spark, edge, "edge.Scalars")
    st = {f.name: f.dataType for f in s.schema.fields}
    assert st["f_uint64"] == T.DecimalType(20, 0) and st["f_fixed64"] == T.DecimalType(20, 0)
    assert st["f_uint32"] == T.LongType() and st["f_fixed32"] == T.LongType()
    assert st["f_sint32"] == T.IntegerType() and st["f_sfixed64"] == T.LongType()
    assert st["f_enum"] == T.StringType() and st["f_bytes"] == T.BinaryType()
    rows = s.collect()
    assert rows[0]["f_int32"] == 0 and rows[0]["f_string"] == "" and rows[0]["f_enum"] == "COLOR_UNSPECIFIED"
    assert rows[1]["f_uint64"] == decimal.Decimal(U64) and rows[1]["f_fixed32"] == 4294967295
    assert rows[1]["f_sint64"] == int(I64MIN) and rows[1]["f_bytes"] == bytearray(b"\x00\x01\x02\xff")
    assert rows[2]["f_enum"] == "3"  # an unknown number: its decimal string

    o = spark_df(spark, edge, "edge.OptionalScalars").collect()
    assert all(v is None for k, v in o[0].asDict().items() if k.startswith("o_"))
    assert o[1]["o_int32"] == 0 and o[1]["o_string"] == "" and o[1]["o_bool"] is False
    assert o[2]["o_enum"] == "9" and o[2]["o_uint64"] == decimal.Decimal(U64)

    r = spark_df(spark, edge, "edge.RepeatedScalars")
    rt = {f.name: f.dataType for f in r.schema.fields}
    assert rt["r_uint64"] == T.ArrayType(T.DecimalType(20, 0), containsNull=False)
    rows = r.collect()
    assert rows[0]["r_int32"] == []  # empty, not null
    assert rows[1]["r_enum"] == ["COLOR_RED", "7", "COLOR_UNSPECIFIED"]
    assert rows[1]["u_int32"] == [3, 2, 1]

    w = spark_df(spark, edge, "edge.WellKnown")
    wt = {f.name: f for f in w.schema.fields}
    assert wt["ts"].dataType == T.TimestampType() and wt["dur"].dataType == T.LongType()
    assert wt["w_uint64"].dataType == T.DecimalType(20, 0) and wt["w_uint32"].dataType == T.LongType()
    assert wt["any"].dataType.simpleString() == "struct<type_url:string,value:binary>"
    assert wt["struct"].dataType == T.StringType() and wt["struct"].metadata.get("protolake.encoding") == "protojson"
    assert "empty" not in wt  # google.protobuf.Empty: dropped
    rows = w.collect()
    assert all(rows[0][c] is None for c in ("ts", "dur", "w_int64", "w_string", "any", "struct", "value"))
    full = rows[1]
    assert full["ts"] == datetime.datetime(2026, 11, 20, 12, 34, 56, 123456)  # sub-µs truncated
    assert full["dur"] == -1500001  # µs, truncated toward zero
    assert full["w_uint64"] == decimal.Decimal(U64) and full["w_bool"] is False and full["w_string"] == ""
    assert full["any"]["type_url"] == "type.googleapis.com/edge.Point"
    assert bytes(full["any"]["value"]) == bytes.fromhex("0801" "10feffffffffffffffff01" "1a0170")  # x:1 y:-2 label:"p", unexpanded
    # Struct as protojson: compacted, keys sorted.
    assert full["struct"] == '{"alpha":{"inner":2.5},"mid":"m","zeta":[1,"x",null,true]}'
    assert json.loads(full["list"]) == [1, "two", {"a": 2, "b": 1}]
    assert full["r_ts"][1] == datetime.datetime(1969, 12, 31, 23, 59, 59, 999999)  # toward the past
    assert full["r_dur"] == [1, 0, 315576000000 * 1000000]
    assert rows[2]["w_double"] == 0.0 and rows[2]["value"] == "null" and rows[2]["struct"] == "{}"

    one = spark_df(spark, edge, "edge.Oneofs").collect()
    members = ["c_int", "c_string", "c_point", "c_color", "c_bytes"]
    assert all(one[0][c] is None for c in members + ["o_double", "o_bool"])
    assert one[1]["c_int"] == 0 and all(one[1][c] is None for c in members if c != "c_int")
    assert one[2]["c_string"] == "s" and one[2]["o_bool"] is False and one[2]["o_double"] is None
    assert one[3]["c_point"]["x"] == 1 and one[3]["c_point"]["y"] == 0
    assert one[4]["c_color"] == "COLOR_GREEN" and one[5]["c_bytes"] == bytearray()

    m = spark_df(spark, edge, "edge.Maps")
    mt = {f.name: f.dataType for f in m.schema.fields}
    assert mt["m_uint64"] == T.MapType(T.DecimalType(20, 0), T.BooleanType(), valueContainsNull=False)
    assert isinstance(mt["m_polygon"].valueType, T.StructType)
    rows = m.collect()
    assert rows[0]["m_point"] == {}
    assert rows[1]["m_fixed32"] == {7: "COLOR_RED", 8: "3"}
    assert rows[1]["m_polygon"]["p"]["points"][1]["y"] == 3
    assert rows[1]["m_point"]["empty"]["label"] == ""

    f = spark_df(spark, edge, "edge.Forest")
    trees = f.schema["trees"].dataType.elementType
    # max_recursion_depth 1: one level of TreeNode below the first, then bytes.
    children = trees["children"].dataType.elementType
    assert children["children"].dataType == T.ArrayType(T.BinaryType(), containsNull=False)
    assert children["children"].metadata.get("protolake.encoding") == "protobuf"
    rows = f.collect()
    cut = rows[1]["trees"][0]["children"][0]["children"]
    assert len(cut) == 1 and b"g1" in bytes(cut[0]) and b"gg1" in bytes(cut[0])  # nothing lost

    leg = spark_df(spark, edge, "edge.Legacy").collect()
    assert leg[0]["name"] is None and leg[0]["count"] is None and leg[0]["big"] is None  # proto2 optional: null
    assert leg[1]["item"][1]["qty"] == 5 and leg[1]["meta"]["flags"] == ["x", "y"]
    assert leg[1]["big"] == decimal.Decimal(U64) and leg[1]["status"] == "STATUS_RETIRED"
