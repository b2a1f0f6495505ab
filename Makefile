# protolake — see README.md. Every target installs what it needs.

GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
STATICCHECK_VERSION := v0.8.2
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
TEST_TIMEOUT ?= 15m
# Flags for `make demo`, e.g. DEMO_ARGS='--duration 5s --lake /tmp/lake'.
DEMO_ARGS ?=

.PHONY: all build test demo demo-twice kafka kafka-stop bench fuzz proto lint tidy-check tools kcat clean interop

all: build

## build: bin/protolake, stamped with the VCS revision when built from a
## git checkout (protolake version prints it).
build:
	$(GO) build -buildvcs=auto -o bin/protolake ./cmd/protolake

## test: the fast tier (kfake, gofakes3, local disk, DuckDB), all in process.
## The real MinIO, built from source in ~10 minutes, runs in `make interop`.
test: kcat
	@echo "make test: the fast tier (kfake, gofakes3, DuckDB, local disk). It installs kcat from Debian if missing (a second Kafka client; its test skips without it) and, on first use, downloads the Go modules and compiles DuckDB's cgo bindings; MinIO runs in make interop."
	$(GO) test -timeout $(TEST_TIMEOUT) ./...

## interop: the interop tier: real Kafka (KRaft), HDFS (MiniDFSCluster) and
## MinIO on 127.0.0.1, read back by Spark + delta-spark, delta-rs and DuckDB,
## and the MinIO suites of the Go tests. Installs from the package
## registries into $PLTEST_INTEROP_CACHE (default
## ~/.cache/protolake-interop) once; see interop/run.sh.
interop: tools
	PLTEST_MINIO=$(GOBIN)/minio ./interop/run.sh

## demo: the whole pipeline in one process (a fresh table each run).
demo: build
	./bin/protolake demo $(DEMO_ARGS)

## demo-twice: `make demo` twice in one directory; both runs must pass the
## demo's own check (rows = records, watermarks = last offsets) and inspect
## must count exactly each run's rows (.ci/demo-twice).
demo-twice:
	./.ci/demo-twice

## kafka: a real Kafka broker (KRaft, 127.0.0.1:19092) from the interop
## tier, left running for `protolake demo --serve --brokers 127.0.0.1:19092`
## and `protolake run`; make kafka-stop stops it.
kafka:
	./interop/install.sh kafka
	./interop/start.sh kafka
	@grep KAFKA_BROKERS "$${PLTEST_INTEROP_RUN:-$${TMPDIR:-/tmp}/protolake-interop-run}/env"

kafka-stop:
	./interop/stop.sh kafka

## bench: performance against baselines in the same run, as ratios.
## The commit-log scale benchmark (local disk and MinIO, 100 to 20,000
## versions) runs 30 commits per size and kind.
## The writer's benchmarks run a fixed number of messages (two passes over
## the 100,000-message corpus after a one-file warm-up), three times; the
## ratios use the best CPU time of each.
## The ingest benchmarks on distinct generated records run at -cpu 1 and 2
## beside the writer alone on the same records; ingest/testdata/benchratio.awk
## prints end-to-end msgs per CPU-second as a ratio to the writer's and the
## wall-clock scaling from -cpu 1 to 2 (8 Kafka partitions: more than cores),
## and BenchmarkScalingDistinct's: drains at GOMAXPROCS 1 and 2 in turn,
## the median of 4 rounds (its figure does not drift with the machine).
## The MinIO benchmarks use $(GOBIN)/minio (`make tools` builds it) or
## PLTEST_MINIO; without either they skip and say so.
BENCH_COUNT ?= 3
BENCH_CPUS ?= 1,2
bench: export PLTEST_MINIO := $(or $(PLTEST_MINIO),$(wildcard $(GOBIN)/minio))
bench:
	$(GO) test -run '^$$' -bench . -skip CommitScale -benchmem -cpu 1 $$($(GO) list ./... | grep -v '/writer$$' | grep -v '/ingest$$')
	$(GO) test -run '^$$' -bench CommitScale -benchtime 30x -benchmem -cpu 1 -timeout 30m ./commitlog/
	$(GO) test -run '^$$' -bench 'EndToEnd$$|ScaleOut' -benchmem -cpu 1 -benchtime 200000x ./ingest/
	$(GO) test -run '^$$' -bench '(EndToEnd|WriterOnly)Distinct$$' -benchmem -cpu $(BENCH_CPUS) -benchtime 200000x -count 2 ./ingest/ > .bench-ingest.out && $(GO) test -run '^$$' -bench 'ScalingDistinct$$' -benchtime 200000x ./ingest/ >> .bench-ingest.out; st=$$?; awk -f ingest/testdata/benchratio.awk .bench-ingest.out; rm -f .bench-ingest.out; exit $$st
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 -benchtime 200000x -count $(BENCH_COUNT) ./writer/ > .bench-writer.out; st=$$?; awk -f writer/testdata/benchratio.awk .bench-writer.out; rm -f .bench-writer.out; exit $$st

## fuzz: every fuzz target of the repository, FUZZTIME each (go test -fuzz
## takes one target per run). New findings land in the package's
## testdata/fuzz/<target>/: commit them, they run in `make test`.
FUZZTIME ?= 60s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## proto: regenerate Go code and descriptor sets from testdata/proto.
proto:
	@command -v protoc >/dev/null || { apt-get update -qq && apt-get install -y -qq protobuf-compiler; }
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH="$(GOBIN):$$PATH" ./testdata/proto/generate.sh

## lint: gofmt, go vet, staticcheck, and go.mod/go.sum as `go mod tidy`
## leaves them.
lint: tidy-check
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

## tidy-check: fails (printing the diff) when `go mod tidy` would change
## go.mod or go.sum; run `go mod tidy` and commit the result.
tidy-check:
	$(GO) mod tidy -diff

## tools: what the interop tier starts or calls: MinIO, built from the Go
## module proxy once (~10 minutes on 2 cores), and kcat (Debian) as a second
## Kafka client.
tools: $(GOBIN)/minio kcat

kcat:
	@command -v kcat >/dev/null || { apt-get update -qq && apt-get install -y -qq kcat; } || echo "kcat could not be installed: its interop test will skip" >&2

$(GOBIN)/minio:
	@echo "make tools: building MinIO $(MINIO_VERSION) from source into $(GOBIN)/minio for the interop tier (once; ~10 minutes on 2 cores)"
	cd /tmp && $(GO) install github.com/minio/minio@$(MINIO_VERSION)

clean:
	rm -rf bin lake
