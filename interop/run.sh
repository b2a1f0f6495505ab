#!/usr/bin/env bash
# `make interop`: installs the interop tier (cached), starts the servers,
# runs every interop suite, stops the servers, prints versions and timings.
# Exits non-zero when any suite fails, when a suite that must run was skipped,
# or when pytest collected no test.
#
# Suites, in order (each runs even when an earlier one failed):
#   go-smoke     go test -tags interop ./interop/...      (HDFS Go client,
#                WebHDFS rename semantics, franz-go against the broker)
#   go-interop   go test -tags interop on every other package that has a
#                //go:build interop file (product interop tests in Go)
#   storage-hdfs go test ./storage/hdfs/... with PLTEST_HDFS_URL set, when
#                storage/hdfs exists (the storage acceptance suite, real HDFS),
#                and commitlog's log-cleanup tests on HDFS
#   go-minio     the packages whose tests start MinIO (s3test.StartMinIO),
#                with PLTEST_MINIO set: the storage acceptance suite on
#                MinIO, commit races, run/compact/inspect on s3://; none may
#                skip (make test leaves them out)
#   pytest       interop/tests (component smoke tests and product interop
#                tests: Spark + delta-spark, delta-rs, DuckDB, kcat, MinIO)
#
# Environment: PLTEST_INTEROP_CACHE, PLTEST_INTEROP_RUN (see lib.sh),
# PYTEST_ARGS (extra pytest arguments), GO_TEST_ARGS (extra go test flags).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

t0=$SECONDS
log "installing into $PLTEST_INTEROP_CACHE"
"$INTEROP_DIR/install.sh" || die "install failed"
install_secs=$((SECONDS - t0))

t1=$SECONDS
trap '"$INTEROP_DIR/stop.sh"' EXIT
trap 'exit 130' INT TERM
"$INTEROP_DIR/stop.sh" # leftovers of an interrupted run
"$INTEROP_DIR/start.sh" || die "servers did not start (logs in $PLTEST_INTEROP_RUN)"
set -a
# shellcheck disable=SC1091
source "$PLTEST_INTEROP_RUN/env"
set +a

results=()
failed=0
record() { # NAME RC [NOTE]
  local status=PASS
  [[ $2 -eq 0 ]] || { status=FAIL; failed=1; }
  results+=("$(printf '%-13s %s %s' "$1" "$status" "${3:-}")")
}

# shellcheck disable=SC2206
go_args=(-count=1 -timeout 20m ${GO_TEST_ARGS:-})

log "suite go-smoke"
go test -tags interop "${go_args[@]}" -v ./interop/... 2>&1 | tee "$PLTEST_INTEROP_RUN/go-smoke.out" | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go'
record go-smoke "${PIPESTATUS[0]}"

mapfile -t tagged < <(git ls-files --cached --others --exclude-standard '*.go' |
  grep -v '^interop/' | xargs -r grep -l '^//go:build.*\binterop\b' 2>/dev/null |
  xargs -r -n1 dirname | sort -u | sed 's|^|./|')
if ((${#tagged[@]})); then
  log "suite go-interop: ${tagged[*]}"
  go test -tags interop "${go_args[@]}" "${tagged[@]}"
  record go-interop $?
else
  record go-interop 0 "(no package has //go:build interop files yet)"
fi

if [[ -d storage/hdfs ]]; then
  export PLTEST_HDFS_URL="$PLTEST_INTEROP_HDFS_URL/protolake-storagetest"
  export PLTEST_WEBHDFS_URL="$PLTEST_INTEROP_WEBHDFS_URL"
  log "suite storage-hdfs: PLTEST_HDFS_URL=$PLTEST_HDFS_URL PLTEST_WEBHDFS_URL=$PLTEST_WEBHDFS_URL"
  { go test "${go_args[@]}" -v ./storage/hdfs/... &&
    go test "${go_args[@]}" -v -run '^TestCleanup(ReadsOnlyTheExpiredHead|ForeignCheckpoints)$' ./commitlog; } 2>&1 |
    tee "$PLTEST_INTEROP_RUN/storage-hdfs.out" | grep -E '^(--- |PASS|FAIL|ok|panic)|_test.go'
  rc=${PIPESTATUS[0]}
  if ((rc == 0)) && grep -q -- '--- SKIP' "$PLTEST_INTEROP_RUN/storage-hdfs.out"; then
    log "storage-hdfs: tests were skipped although PLTEST_HDFS_URL is set"
    grep -A2 -- '--- SKIP' "$PLTEST_INTEROP_RUN/storage-hdfs.out" >&2
    rc=1
  fi
  if ((rc == 0)) && ! grep -qE -- '--- PASS' "$PLTEST_INTEROP_RUN/storage-hdfs.out"; then
    log "storage-hdfs: no test ran"
    rc=1
  fi
  record storage-hdfs "$rc"
else
  record storage-hdfs 0 "(storage/hdfs does not exist yet: not run)"
fi

# The Go tests that need a real MinIO (the storage acceptance suite on S3,
# commit races, run and maintenance on s3://) skip in `make test`; here
# PLTEST_MINIO is set and none of them may skip.
export PLTEST_MINIO="$MINIO_BIN"
mapfile -t minio_pkgs < <(git ls-files --cached --others --exclude-standard '*_test.go' |
  xargs -r grep -lE 's3test\.(StartMinIO|NewMinIO)' 2>/dev/null | xargs -r -n1 dirname | sort -u | sed 's|^|./|')
log "suite go-minio: PLTEST_MINIO=$PLTEST_MINIO ${minio_pkgs[*]}"
go test "${go_args[@]}" -v "${minio_pkgs[@]}" 2>&1 | tee "$PLTEST_INTEROP_RUN/go-minio.out" | grep -E '^(--- FAIL|FAIL|ok|panic)|_test.go'
rc=${PIPESTATUS[0]}
if ((rc == 0)) && grep -B1 -A2 -- '--- SKIP' "$PLTEST_INTEROP_RUN/go-minio.out" | grep -q 'PLTEST_MINIO'; then
  log "go-minio: MinIO tests were skipped although PLTEST_MINIO is set"
  rc=1
fi
if ((rc == 0)); then
  nminio=$(grep -cE -- '--- PASS: .*([Mm]in[Ii][Oo])' "$PLTEST_INTEROP_RUN/go-minio.out" || true)
  ((nminio > 0)) || { log "go-minio: no MinIO test ran"; rc=1; }
fi
record go-minio "$rc" "${nminio:-0} MinIO tests passed"

log "suite pytest"
# shellcheck disable=SC2086
"$VENV/bin/python" -m pytest interop/tests -p no:cacheprovider -ra ${PYTEST_ARGS:-}
rc=$?
if ((rc == 5)); then
  log "pytest collected no test: that is a failure here"
  rc=1
fi
record pytest "$rc"

run_secs=$((SECONDS - t1))
if ((failed)); then
  log "server logs: $PLTEST_INTEROP_RUN/{kafka,hdfs,minio,apicurio}.log"
fi
"$INTEROP_DIR/stop.sh"
trap - EXIT

versions=$("$VENV/bin/python" - <<'PY'
from importlib.metadata import version
print(" ".join(f"{p}={version(p)}" for p in ("pyspark", "delta-spark", "deltalake", "duckdb", "pyarrow", "pytest")))
PY
)
cat <<SUMMARY

== interop summary ==
$(printf '%s\n' "${results[@]}")
versions: kafka=$KAFKA_VERSION (KRaft) hadoop=$HADOOP_VERSION (MiniDFSCluster) apicurio-registry=$APICURIO_VERSION $versions
          $(kcat -V 2>/dev/null | sed -n 's/^Version \([^ ]*\).*librdkafka \([^ ]*\).*/kcat=\1 librdkafka=\2/p') minio=$("$MINIO_BIN" --version 2>/dev/null | head -n1 | awk '{print $3}') java=$(java -version 2>&1 | head -n1 | cut -d'"' -f2) go=$(go env GOVERSION)
install: ${install_secs}s   run: ${run_secs}s   cache: $PLTEST_INTEROP_CACHE ($(du -sh "$PLTEST_INTEROP_CACHE" 2>/dev/null | cut -f1))
SUMMARY
npass=0 nfail=0
for r in "${results[@]}"; do [[ $r == *" PASS "* || $r == *" PASS" ]] && npass=$((npass + 1)) || nfail=$((nfail + 1)); done
echo "interop: $npass passed, $nfail failed"
exit "$failed"
