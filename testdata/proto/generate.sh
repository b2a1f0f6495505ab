#!/usr/bin/env bash
# Regenerates Go code and descriptor sets from the .proto files here.
# Run through `make proto` (which installs protoc, protoc-gen-go and
# protoc-gen-go-grpc first). Outputs are committed so builds and tests need
# no protoc.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$here"

# Go code for the ad-tracking model (used by the demo, cmd/adtrack and the
# writer's baseline benchmarks).
protoc -I . \
  --go_out="$root" --go_opt=module=github.com/protolake/protolake \
  --go-grpc_out="$root" --go-grpc_opt=module=github.com/protolake/protolake \
  adtrack/v1/adtrack.proto

# Descriptor sets (with imports, so they are self-contained).
protoc -I . --include_imports -o adtrack/v1/adtrack.binpb adtrack/v1/adtrack.proto
protoc -I . --include_imports -o edge/edge.binpb edge/*.proto
for v in v1 v2 v3; do
  protoc -I "evolution/$v" --include_imports -o "evolution/$v/order.binpb" shop/order.proto
done
echo "generated: internal/adtrackpb, *.binpb"
