# shellcheck shell=bash
# Shared settings of the interop scripts; sourced, never run.
#
# Two directories, both overridable:
#   PLTEST_INTEROP_CACHE  downloads and builds, kept between runs
#                            (Maven repo, Kafka and Hadoop jars, the Python
#                            virtualenv, Spark's Ivy cache).
#   PLTEST_INTEROP_RUN    one run's servers: data dirs, logs, *.pid and the
#                            `env` file that tells tests where the servers are.

INTEROP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$INTEROP_DIR/.." && pwd)"

export PLTEST_INTEROP_CACHE="${PLTEST_INTEROP_CACHE:-${HOME:-/root}/.cache/protolake-interop}"
export PLTEST_INTEROP_RUN="${PLTEST_INTEROP_RUN:-${TMPDIR:-/tmp}/protolake-interop-run}"

# Component versions (Maven Central / PyPI). Python pins: python/requirements.txt.
KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
HADOOP_VERSION="${HADOOP_VERSION:-3.4.1}"
# Apicurio Registry: not overridable, apicurio/pom.xml lists this version's
# dependencies and pins the Quarkus version it was built with.
APICURIO_VERSION=2.4.2.Final

KAFKA_HOME="$PLTEST_INTEROP_CACHE/kafka-$KAFKA_VERSION"
HADOOP_HOME_DIR="$PLTEST_INTEROP_CACHE/hadoop-$HADOOP_VERSION"
APICURIO_HOME="$PLTEST_INTEROP_CACHE/apicurio-$APICURIO_VERSION"
APICURIO_JAR="$APICURIO_HOME/apicurio-registry-0-runner.jar"
VENV="$PLTEST_INTEROP_CACHE/venv"
M2_REPO="$PLTEST_INTEROP_CACHE/m2"
IVY_DIR="$PLTEST_INTEROP_CACHE/ivy"
GOBIN_DIR="$(go env GOPATH 2>/dev/null || echo "${HOME:-/root}/go")/bin"
MINIO_BIN="${PLTEST_MINIO:-$GOBIN_DIR/minio}"

# Fixed loopback ports (the issue asks for fixed ones); override when busy.
KAFKA_PORT="${PLTEST_INTEROP_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${PLTEST_INTEROP_KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_SASL_PORT="${PLTEST_INTEROP_KAFKA_SASL_PORT:-19094}" # SASL_PLAINTEXT, PLAIN
KAFKA_TLS_PORT="${PLTEST_INTEROP_KAFKA_TLS_PORT:-19095}"   # SSL, a test CA
HDFS_RPC_PORT="${PLTEST_INTEROP_HDFS_PORT:-19820}"
HDFS_HTTP_PORT="${PLTEST_INTEROP_WEBHDFS_PORT:-19870}"
MINIO_PORT="${PLTEST_INTEROP_MINIO_PORT:-19000}"
APICURIO_PORT="${PLTEST_INTEROP_APICURIO_PORT:-19081}"

# Hadoop on Java 17: Jersey (WebHDFS) and others reflect into java.base.
JAVA_OPENS=(
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
  --add-opens=java.base/sun.security.action=ALL-UNNAMED
  --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
)

log() { printf '[interop %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# port_in_use PORT: true when something listens on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for DESCRIPTION SECONDS PID COMMAND...: polls COMMAND every half
# second until it succeeds; fails early when PID has died.
wait_for() {
  local what=$1 secs=$2 pid=$3; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || return 1
    ((SECONDS < deadline)) || { log "$what: not ready after ${secs}s"; return 1; }
    sleep 0.5
  done
}

# stamp_ok NAME INPUTS: true when component NAME was installed from the same
# inputs (a string: versions and file hashes) before.
stamp_ok() { [[ -f "$PLTEST_INTEROP_CACHE/.stamp-$1" && "$(cat "$PLTEST_INTEROP_CACHE/.stamp-$1")" == "$2" ]]; }
stamp_set() { printf '%s' "$2" >"$PLTEST_INTEROP_CACHE/.stamp-$1"; }
