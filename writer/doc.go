// Package writer turns protobuf wire bytes into partitioned Parquet files.
package writer
