"""Helpers of the product interop tests: produce with interop/plgen, run the
protolake binary, and bring what Spark, delta-rs (pyarrow) and DuckDB return
into one comparable form, the one plgen writes its expected rows in:

  timestamp  -> microseconds since the epoch (int)
  date       -> "YYYY-MM-DD"
  binary     -> base64 text
  decimal    -> int (decimal(20,0) holds uint64)
  float/double NaN, +-Infinity -> "NaN", "Infinity", "-Infinity"
  struct     -> dict, array -> list, map -> dict keyed by the key's text
                ("true"/"false" for booleans)
  protojson string columns (Struct, Value, ListValue) -> parsed JSON
"""

import base64
import datetime
import decimal
import json
import math
import os
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import protolake_interop

# PySpark turns timestamps into naive datetimes in the process's time zone.
os.environ["TZ"] = "UTC"
time.tzset()

EPOCH = datetime.datetime(1970, 1, 1)
EPOCH_UTC = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
REPO = protolake_interop.REPO_ROOT
ADTRACK_DESC = REPO / "testdata/proto/adtrack/v1/adtrack.binpb"
EDGE_DESC = REPO / "testdata/proto/edge/edge.binpb"


# Running our binaries ---------------------------------------------------------

def build_plgen():
    run = Path(os.environ.get("PLTEST_INTEROP_RUN", "/tmp/protolake-interop-run"))
    out = run / "bin" / "plgen"
    subprocess.run(["go", "build", "-tags", "interop", "-o", str(out), "./interop/plgen"], cwd=REPO, check=True)
    return out


def sh(args, timeout=300, **kw):
    """Runs a command; raises with its output when it fails."""
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))}: exit {p.returncode}\nstdout:\n{p.stdout[-4000:]}\nstderr:\n{p.stderr[-4000:]}")
    return p.stdout


def s3_env():
    return {
        "AWS_ACCESS_KEY_ID": protolake_interop.env("PLTEST_INTEROP_S3_ACCESS_KEY"),
        "AWS_SECRET_ACCESS_KEY": protolake_interop.env("PLTEST_INTEROP_S3_SECRET_KEY"),
        "AWS_REGION": protolake_interop.env("PLTEST_INTEROP_S3_REGION"),
    }


class Protolake:
    """The protolake binary, run with the harness's variables removed and
    MinIO's credentials in the AWS_* variables."""

    def __init__(self, binary):
        self.bin = binary

    def __call__(self, *args, timeout=300):
        return sh([self.bin, *args], timeout=timeout, env=protolake_interop.protolake_env(**s3_env()))

    def inspect(self, uri, version=None):
        args = ["inspect", uri, "--json"]
        if version is not None:
            args += ["--version", str(version)]
        return json.loads(self(*args))

    def schema(self, descriptor_set, message, *opts):
        return json.loads(self("schema", "show", "--descriptor-set", descriptor_set, "--message", message,
                               "--format", "delta", *opts))

    def run_until_caught_up(self, config_path, *flags):
        return self("run", "--config", config_path, "--until-caught-up", *flags, timeout=300)


def write_config(path, brokers, group, tables):
    """A protolake.yaml for `run`: tables is a list of dicts (name, uri,
    topics, message, descriptor_set, partition_by, schema, flush)."""
    def table_yaml(t):
        lines = [f"  - name: {t['name']}", f"    uri: \"{t['uri']}\"", f"    topics: [{', '.join(t['topics'])}]",
                 f"    message: {t['message']}", f"    descriptor_set: {t['descriptor_set']}"]
        if t.get("partition_by"):
            lines.append("    partition_by: [" + ", ".join(f'"{p}"' for p in t["partition_by"]) + "]")
        lines.append("    flush:")
        for k, v in (t.get("flush") or {"max_rows": 100000}).items():
            lines.append(f"      {k}: {v}")
        if t.get("dead_letter_uri"):
            lines += ["    dead_letter:", f"      uri: \"{t['dead_letter_uri']}\""]
        if t.get("schema"):
            lines.append("    schema:")
            for k, v in t["schema"].items():
                lines.append(f"      {k}: {v}")
        return "\n".join(lines)

    Path(path).write_text(
        f"kafka:\n  brokers: [{brokers}]\n  group_id: {group}\n"
        "tables:\n" + "\n".join(table_yaml(t) for t in tables) + "\n"
        "http:\n  listen: \"off\"\nlog:\n  format: text\n  level: warn\n")
    return path


def read_expected(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


# Normalizing what readers return ---------------------------------------------

def _float(x):
    if x is None:
        return None
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def _key(k):
    if isinstance(k, bool):
        return "true" if k else "false"
    return str(norm_value(k, None))


def norm_value(v, protojson=False):
    """One value (of any reader) in plgen's form."""
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, decimal.Decimal):
        assert v == v.to_integral_value(), v
        return int(v)
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            return (v - EPOCH) // datetime.timedelta(microseconds=1)
        return (v - EPOCH_UTC) // datetime.timedelta(microseconds=1)
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, float):
        return _float(v)
    if isinstance(v, str) and protojson:
        return json.loads(v)
    return v


def norm_spark_row(row, schema, protojson_cols=()):
    """A pyspark Row of a DataFrame with StructType schema, normalized."""
    from pyspark.sql import types as T

    def walk(v, t, path):
        if v is None:
            return None
        if isinstance(t, T.StructType):
            return {f.name: walk(v[f.name], f.dataType, f"{path}.{f.name}".lstrip(".")) for f in t.fields}
        if isinstance(t, T.ArrayType):
            return [walk(x, t.elementType, path + "[]") for x in v]
        if isinstance(t, T.MapType):
            return {_key(k): walk(x, t.valueType, path + "{}") for k, x in v.items()}
        return norm_value(v, path in protojson_cols)

    return walk(row, schema, "")


def arrow_rows(table, protojson_cols=()):
    """A pyarrow Table's rows, normalized (maps arrive as lists of pairs)."""
    import pyarrow as pa

    def walk(v, t, path):
        if v is None:
            return None
        if pa.types.is_struct(t):
            return {t.field(i).name: walk(v[t.field(i).name], t.field(i).type, f"{path}.{t.field(i).name}".lstrip("."))
                    for i in range(t.num_fields)}
        if pa.types.is_map(t):
            return {_key(k): walk(x, t.item_type, path + "{}") for k, x in v}
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return [walk(x, t.value_type, path + "[]") for x in v]
        return norm_value(v, path in protojson_cols)

    schema = table.schema
    return [{f.name: walk(r[f.name], f.type, f.name) for f in schema} for r in table.to_pylist()]


def protojson_columns(delta_schema, prefix=""):
    """Paths (a.b, a[], a{}) of columns whose metadata says protojson."""
    out = set()

    def walk(t, path):
        if isinstance(t, dict):
            if t.get("type") == "struct":
                for f in t["fields"]:
                    p = f"{path}.{f['name']}".lstrip(".")
                    if f.get("metadata", {}).get("protolake.encoding") == "protojson":
                        out.add(p)
                    walk(f["type"], p)
            elif t.get("type") == "array":
                if t.get("elementType") == "string" and path in out:
                    out.add(path + "[]")
                walk(t["elementType"], path + "[]")
            elif t.get("type") == "map":
                if t.get("valueType") == "string" and path in out:
                    out.add(path + "{}")
                walk(t["valueType"], path + "{}")

    walk(delta_schema, prefix)
    return out


def expected_rows(rows, delta_schema):
    """plgen's rows with the protojson columns (per the Delta schema's field
    metadata) parsed, as the readers' rows are."""
    def walk(v, t, pj):
        if v is None:
            return None
        if pj and isinstance(v, str):
            return json.loads(v)
        if isinstance(t, dict) and t.get("type") == "struct":
            fields = {f["name"]: f for f in t["fields"]}
            return {k: walk(x, fields[k]["type"] if k in fields else None,
                            k in fields and fields[k].get("metadata", {}).get("protolake.encoding") == "protojson")
                    for k, x in v.items()}
        if isinstance(t, dict) and t.get("type") == "array":
            return [walk(x, t["elementType"], pj) for x in v]
        if isinstance(t, dict) and t.get("type") == "map":
            return {k: walk(x, t["valueType"], pj) for k, x in v.items()}
        return v

    return [walk(r, delta_schema, False) for r in rows]


def by_kafka(rows):
    """Rows keyed by (_kafka.partition, _kafka.offset); duplicates fail."""
    out = {}
    for r in rows:
        k = (r["_kafka"]["partition"], r["_kafka"]["offset"])
        assert k not in out, f"two rows for Kafka partition {k[0]} offset {k[1]}"
        out[k] = r
    return out


def first_difference(got, want, path=""):
    """A readable description of the first difference between two values."""
    if isinstance(want, dict) and isinstance(got, dict):
        for k in sorted(set(want) | set(got)):
            if k not in got:
                return f"{path}.{k}: missing (want {want[k]!r})"
            if k not in want:
                return f"{path}.{k}: unexpected {got[k]!r}"
            d = first_difference(got[k], want[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return f"{path}: {len(got)} elements, want {len(want)}: got {got!r} want {want!r}"
        for i, (g, w) in enumerate(zip(got, want)):
            d = first_difference(g, w, f"{path}[{i}]")
            if d:
                return d
        return None
    if got != want or type(got) is not type(want) and not (isinstance(got, (int, float)) and isinstance(want, (int, float))):
        return f"{path}: got {got!r}, want {want!r}"
    return None


def assert_rows_equal(got_rows, want_rows, what, ignore=()):
    """Compares two lists of normalized rows by Kafka coordinates."""
    got, want = by_kafka(got_rows), by_kafka(want_rows)
    assert set(got) == set(want), (f"{what}: rows differ by Kafka coordinates: "
                                   f"{len(set(want) - set(got))} missing, {len(set(got) - set(want))} unexpected")
    diffs = []
    for k in sorted(want):
        g = {c: v for c, v in got[k].items() if c not in ignore}
        w = {c: v for c, v in want[k].items() if c not in ignore}
        d = first_difference(g, w)
        if d:
            diffs.append(f"partition {k[0]} offset {k[1]}: {d}")
    assert not diffs, f"{what}: {len(diffs)} of {len(want)} rows differ; first ones:\n" + "\n".join(diffs[:5])


def add_day(rows, column="event_time", part="event_time_day"):
    """Adds the day(column) partition value to plgen's rows."""
    for r in rows:
        us = r[column]
        r[part] = None if us is None else (EPOCH + datetime.timedelta(microseconds=us)).date().isoformat()
    return rows


# Delta schema comparison -----------------------------------------------------

def strip_metadata(t):
    """A Delta/Spark schema JSON type without field metadata."""
    if isinstance(t, dict):
        out = {k: strip_metadata(v) for k, v in t.items() if k != "metadata"}
        return out
    if isinstance(t, list):
        return [strip_metadata(x) for x in t]
    return t


def schema_differences(got, want, path=""):
    """Field-by-field differences of two schema JSONs (types, nullability,
    containsNull, valueContainsNull, order)."""
    diffs = []
    if isinstance(want, dict) and isinstance(got, dict):
        if want.get("type") == "struct" and got.get("type") == "struct":
            gn = [f["name"] for f in got["fields"]]
            wn = [f["name"] for f in want["fields"]]
            if gn != wn:
                diffs.append(f"{path or '<root>'}: fields {gn}, want {wn}")
            gf = {f["name"]: f for f in got["fields"]}
            for f in want["fields"]:
                g = gf.get(f["name"])
                if g is None:
                    continue
                p = f"{path}.{f['name']}".lstrip(".")
                if g.get("nullable") != f.get("nullable"):
                    diffs.append(f"{p}: nullable {g.get('nullable')}, want {f.get('nullable')}")
                diffs += schema_differences(g["type"], f["type"], p)
            return diffs
        for k in sorted(set(want) | set(got)):
            if k in ("fields", "metadata"):
                continue
            if isinstance(want.get(k), (dict, list)) or isinstance(got.get(k), (dict, list)):
                diffs += schema_differences(got.get(k), want.get(k), f"{path}<{k}>")
            elif got.get(k) != want.get(k):
                diffs.append(f"{path}: {k} {got.get(k)!r}, want {want.get(k)!r}")
        return diffs
    if got != want:
        diffs.append(f"{path}: type {json.dumps(got)}, want {json.dumps(want)}")
    return diffs


# Fetching a snapshot's files for DuckDB --------------------------------------

def fetch_files(uris, dest):
    """Copies data files (file://, s3://, hdfs:// URIs as delta-rs lists
    them) into dest; returns the local paths, keyed by URI."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    s3fs = None
    for i, uri in enumerate(uris):
        u = urllib.parse.urlparse(uri)
        local = dest / f"{i:05d}.parquet"
        if u.scheme in ("", "file"):
            out[uri] = Path(urllib.parse.unquote(u.path))
            continue
        if u.scheme in ("s3", "s3a"):
            if s3fs is None:
                from pyarrow import fs
                s3fs = fs.S3FileSystem(access_key=protolake_interop.env("PLTEST_INTEROP_S3_ACCESS_KEY"),
                                       secret_key=protolake_interop.env("PLTEST_INTEROP_S3_SECRET_KEY"),
                                       region=protolake_interop.env("PLTEST_INTEROP_S3_REGION"),
                                       endpoint_override=protolake_interop.env("PLTEST_INTEROP_S3_ENDPOINT"),
                                       scheme="http")
            with s3fs.open_input_stream(u.netloc + urllib.parse.unquote(u.path)) as f:
                local.write_bytes(f.read())
        elif u.scheme == "hdfs":
            web = protolake_interop.env("PLTEST_INTEROP_WEBHDFS_URL")
            url = f"{web}/webhdfs/v1{urllib.parse.quote(urllib.parse.unquote(u.path))}?op=OPEN&user.name=root"
            with urllib.request.urlopen(url, timeout=60) as r:
                local.write_bytes(r.read())
        else:
            raise ValueError(f"cannot fetch {uri}")
        out[uri] = local
    return out
