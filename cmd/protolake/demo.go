package main

import (
	"context"
	"fmt"
	"io"
)

// runDemo will run the embedded pipeline (kfake, the ad-tracking gRPC service,
// a load generator and the streaming writer). Until the streaming writer
// exists it says so and succeeds, so "make demo" works on a fresh checkout.
func runDemo(_ context.Context, _ []string, stdout, _ io.Writer) error {
	fmt.Fprintln(stdout, "protolake demo: not yet — the streaming writer (issue 5) is not built yet.")
	fmt.Fprintln(stdout, "Meanwhile try: go run ./cmd/protolake schema show --proto-path testdata/proto adtrack/v1/adtrack.proto --message adtrack.v1.AdImpression")
	return nil
}
