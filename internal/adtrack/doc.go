// Package adtrack is the ad-tracking service of the protolake seed
// architecture: ClickTrackService receives AdImpression and AdClick requests
// over gRPC and publishes each request's protobuf bytes, unchanged, to a Kafka
// topic. It stands in for the producers in front of protolake in the demo and
// in cmd/adtrack.
//
// Guarantees: an RPC returns success only after Kafka acknowledged the record
// (acks=all by default in franz-go), and the response carries the partition
// and offset, so a caller knows exactly where its event landed. The record key
// is the impression id, so all events of one impression share a partition.
package adtrack
