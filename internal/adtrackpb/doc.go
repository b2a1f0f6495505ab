// Package adtrackpb is the Go code generated from
// testdata/proto/adtrack/v1/adtrack.proto (the ad-tracking model of the seed
// architecture) by `make proto`. Do not edit the .pb.go files by hand. The
// demo, cmd/adtrack and the writer's baseline benchmarks use it; protolake
// itself never needs generated code for the tables it writes.
package adtrackpb
