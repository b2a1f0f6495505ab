// Package ingest runs `protolake run`: a Kafka consumer group that keeps
// Delta tables up to date from topics of protobuf messages.
//
// This file set currently holds the deployment configuration (Config): one
// YAML document whose every field can also be set by a flag or a PROTOLAKE_*
// environment variable, validated with errors that name the field.
package ingest
