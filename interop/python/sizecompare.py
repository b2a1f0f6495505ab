"""Compares protolake's Parquet output with Spark's for the same rows.

    go test ./writer -run TestSizeReport -v   # with PLTEST_SIZE_REPORT_DIR=DIR
    ~/.cache/protolake-interop/venv/bin/python interop/python/sizecompare.py DIR

TestSizeReport writes the benchmark corpus (100,000 AdImpressions from
internal/adtrack) as DIR/protolake.parquet with the writer's defaults. This
script has Spark 3.5 read every column of that file (its vectorized reader:
the file must be readable by it) and write the same rows, in the same order,
as one zstd Parquet file and as a one-file Delta table (delta-spark), then
prints bytes per row of each and the columns' sizes side by side. Spark's
zstd level is parquet-mr's default (3); timestamps are INT96, Spark's
default. No server is needed.
"""

import shutil
import sys
from pathlib import Path

from protolake_interop import spark_session


def parquet_files(path):
    return sorted(p for p in Path(path).rglob("*.parquet") if "_delta_log" not in p.parts)


def column_sizes(files):
    import pyarrow.parquet as pq
    sizes = {}
    for f in files:
        md = pq.ParquetFile(f).metadata
        for rg in range(md.num_row_groups):
            for c in range(md.num_columns):
                col = md.row_group(rg).column(c)
                sizes[col.path_in_schema] = sizes.get(col.path_in_schema, 0) + col.total_compressed_size
    return sizes


def main(out):
    out = Path(out).resolve()
    ours = out / "protolake.parquet"
    spark = spark_session("protolake-sizecompare")
    spark.conf.set("spark.sql.parquet.compression.codec", "zstd")
    for d in ("spark-parquet", "spark-delta"):
        shutil.rmtree(out / d, ignore_errors=True)
    try:
        df = spark.read.parquet(ours.as_uri())
        rows = df.count()
        df.coalesce(1).write.mode("overwrite").parquet((out / "spark-parquet").as_uri())
        df.coalesce(1).write.mode("overwrite").format("delta").save((out / "spark-delta").as_uri())
        # Spark reads every value of our file as it reads its own.
        from pyspark.sql import functions as F

        def rowjson(d, name):
            return d.select(F.col("_kafka.offset").alias("o"), F.to_json(F.struct("*")).alias(name))
        a = spark.read.parquet((out / "spark-parquet").as_uri())
        joined = rowjson(df, "ours").join(rowjson(a, "spark"), "o", "full_outer")
        diff = joined.where(~F.col("ours").eqNullSafe(F.col("spark"))).count()
        print(f"rows {rows}; rows that differ between the two files: {diff}")
    finally:
        spark.stop()
    results = {"protolake": [ours], "spark parquet zstd": parquet_files(out / "spark-parquet"),
               "spark delta zstd": parquet_files(out / "spark-delta")}
    for name, files in results.items():
        size = sum(f.stat().st_size for f in files)
        print(f"{name:20s} {size:12d} bytes  {size / rows:7.1f} B/row  ({len(files)} file)")
    try:
        mine, theirs = column_sizes([ours]), column_sizes(results["spark parquet zstd"])
    except ImportError:
        return
    print(f"\n{'column':45s} {'protolake':>10s} {'spark':>10s}  B/row")
    for col in sorted(set(mine) | set(theirs), key=lambda c: -max(mine.get(c, 0), theirs.get(c, 0))):
        print(f"{col:45s} {mine.get(col, 0) / rows:10.2f} {theirs.get(col, 0) / rows:10.2f}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: sizecompare.py DIR (holding protolake.parquet from TestSizeReport)")
    main(sys.argv[1])
