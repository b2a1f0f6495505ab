// Package parquetmeta holds the footer key-value metadata every Parquet
// file protolake writes (the writer's data files and compaction's output)
// carries, so that readers interpret the values as written.
package parquetmeta

// SparkVersionKey and SparkVersion are the footer key-value pair that tells
// Spark which calendar the file's dates and timestamps use. Without it
// Spark's default configuration (datetimeRebaseModeInRead=EXCEPTION)
// refuses to read any timestamp before 1900 (READ_ANCIENT_DATETIME); a
// version from 3.0 on without org.apache.spark.legacyDateTime means the
// proleptic Gregorian calendar, which is what protolake writes (Spark's
// DataSourceUtils.datetimeRebaseSpec). protolake writes INT64 timestamps
// only, never INT96, so org.apache.spark.legacyINT96 does not apply.
const (
	SparkVersionKey = "org.apache.spark.version"
	SparkVersion    = "3.5.0"
)
