#!/usr/bin/env bash
# Installs the interop tier's components from the package registries into
# $PLTEST_INTEROP_CACHE, each once: a component whose inputs (versions,
# pom, requirements) have not changed since its last install is skipped.
#
#   kcat          Debian package (apt-get), the second Kafka client
#   kafka         org.apache.kafka:kafka_2.13 + runtime deps (Maven Central)
#   hdfs          Hadoop hdfs/common jars + test jars (Maven Central) and the
#                 MiniHdfs launcher in interop/hdfs, built with Maven
#   apicurio      Apicurio Registry (in-memory; Confluent-compatible API under
#                 /apis/ccompat/v7) assembled from io.apicurio artifacts on
#                 Maven Central by a Quarkus build (interop/apicurio/pom.xml)
#   python        virtualenv with pyspark, delta-spark, deltalake, duckdb,
#                 pyarrow, pytest (PyPI)
#   spark-jars    the delta-spark and hadoop-aws jars, resolved by Spark's Ivy from Maven
#                 Central into $PLTEST_INTEROP_CACHE/ivy
#   minio         `make tools` (Go module proxy; built from source, ~10 min)
#
# Prerequisites: Java 17+ and Maven (kafka, hdfs, apicurio, spark-jars), Python 3
# with venv (python). A missing one is installed with apt-get when running
# as root on Debian/Ubuntu; otherwise the script stops and names it.
#
# Usage: interop/install.sh [COMPONENT...]   (default: all)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mkdir -p "$PLTEST_INTEROP_CACHE"
MVN=(mvn -B -Dmaven.repo.local="$M2_REPO" -Dstyle.color=never)

sha() { cat "$@" | sha256sum | cut -c1-16; }

# need TOOL DEBIAN_PACKAGE WHAT CHECK...: runs CHECK; when it fails, installs
# the Debian package with apt-get (as root) or stops naming what is missing.
need() {
  local tool=$1 pkg=$2 what=$3; shift 3
  "$@" >/dev/null 2>&1 && return
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    log "$tool is missing ($what): apt-get install $pkg"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null &&
      "$@" >/dev/null 2>&1 && return
  fi
  die "the interop tier needs $tool ($what); install it (Debian: apt-get install $pkg) and run again"
}

java_17() { # java on PATH, version 17 or newer
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  [[ -n $v && $v -ge 17 ]]
}

need_java() {
  need "Java 17" openjdk-17-jdk-headless "Kafka and HDFS run on it" java_17
  need Maven maven "it resolves Kafka and Hadoop from Maven Central" mvn -v
}

need_python() {
  need "Python 3 with venv" python3-venv "Spark, delta-rs and DuckDB are installed into a virtualenv" \
    "${PYTHON:-python3}" -c 'import venv, ensurepip'
}

install_kcat() {
  if command -v kcat >/dev/null; then return; fi
  log "kcat: apt-get install kcat"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
}

install_kafka() {
  local in="kafka=$KAFKA_VERSION pom=$(sha "$INTEROP_DIR/kafka/pom.xml")"
  stamp_ok kafka "$in" && [[ -d "$KAFKA_HOME/libs" ]] && return
  log "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central"
  rm -rf "$KAFKA_HOME"
  (cd "$INTEROP_DIR/kafka" && "${MVN[@]}" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/libs") \
    >"$PLTEST_INTEROP_CACHE/mvn-kafka.log" 2>&1 || { cat "$PLTEST_INTEROP_CACHE/mvn-kafka.log" >&2; die "kafka: mvn failed"; }
  stamp_set kafka "$in"
}

install_hdfs() {
  local in="hadoop=$HADOOP_VERSION pom=$(sha "$INTEROP_DIR/hdfs/pom.xml" $(find "$INTEROP_DIR/hdfs/src" -type f | sort))"
  stamp_ok hdfs "$in" && [[ -f "$HADOOP_HOME_DIR/build/minihdfs-0.jar" ]] && return
  log "hdfs: resolving Hadoop $HADOOP_VERSION from Maven Central, building MiniHdfs"
  rm -rf "$HADOOP_HOME_DIR"
  (cd "$INTEROP_DIR/hdfs" && "${MVN[@]}" -Dhadoop.version="$HADOOP_VERSION" \
    -Dminihdfs.buildDir="$HADOOP_HOME_DIR/build" \
    package dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$HADOOP_HOME_DIR/libs") \
    >"$PLTEST_INTEROP_CACHE/mvn-hdfs.log" 2>&1 || { cat "$PLTEST_INTEROP_CACHE/mvn-hdfs.log" >&2; die "hdfs: mvn failed"; }
  stamp_set hdfs "$in"
}

install_apicurio() {
  local src=("$INTEROP_DIR/apicurio/pom.xml" "$INTEROP_DIR/apicurio/settings.xml")
  mapfile -t -O 2 src < <(find "$INTEROP_DIR/apicurio/src" -type f | sort)
  local in="apicurio=$APICURIO_VERSION pom=$(sha "${src[@]}")"
  stamp_ok apicurio "$in" && [[ -f "$APICURIO_JAR" ]] && return
  log "apicurio: resolving Apicurio Registry $APICURIO_VERSION from Maven Central, Quarkus build"
  rm -rf "$APICURIO_HOME"
  # settings.xml sends the registry POM's own repositories to Maven Central.
  (cd "$INTEROP_DIR/apicurio" && "${MVN[@]}" -s settings.xml -Dapicurio.buildDir="$APICURIO_HOME" package) \
    >"$PLTEST_INTEROP_CACHE/mvn-apicurio.log" 2>&1 || { tail -n 60 "$PLTEST_INTEROP_CACHE/mvn-apicurio.log" >&2; die "apicurio: mvn failed"; }
  [[ -f "$APICURIO_JAR" ]] || die "apicurio: the build made no $APICURIO_JAR"
  stamp_set apicurio "$in"
}

install_python() {
  local py=${PYTHON:-python3}
  local in="py=$($py -c 'import sys; print(sys.version.split()[0])') req=$(sha "$INTEROP_DIR/python/requirements.txt")"
  stamp_ok python "$in" && [[ -x "$VENV/bin/python" ]] && return
  log "python: virtualenv with $(grep -v '^#' "$INTEROP_DIR/python/requirements.txt" | xargs)"
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
  PIP_CACHE_DIR="$PLTEST_INTEROP_CACHE/pip" "$VENV/bin/pip" install -q --disable-pip-version-check --no-input -r "$INTEROP_DIR/python/requirements.txt"
  stamp_set python "$in"
}

install_spark_jars() {
  local in="req=$(sha "$INTEROP_DIR/python/requirements.txt" "$INTEROP_DIR/python/protolake_interop.py")"
  stamp_ok spark-jars "$in" && [[ -d "$IVY_DIR/jars" ]] && return
  log "spark-jars: Spark's Ivy resolves delta-spark jars from Maven Central"
  "$VENV/bin/python" "$INTEROP_DIR/python/protolake_interop.py" warmup >"$PLTEST_INTEROP_CACHE/spark-warmup.log" 2>&1 ||
    { cat "$PLTEST_INTEROP_CACHE/spark-warmup.log" >&2; die "spark-jars: Spark could not start with delta-spark"; }
  stamp_set spark-jars "$in"
}

install_minio() {
  [[ -x "$MINIO_BIN" ]] && return
  log "minio: make tools (go install from the Go module proxy)"
  make -C "$REPO_ROOT" tools
}

components=("$@")
((${#components[@]})) || components=(kcat kafka hdfs apicurio python spark-jars minio)
for c in "${components[@]}"; do
  start=$SECONDS
  case "$c" in
    kcat) install_kcat ;;
    kafka) need_java && install_kafka ;;
    hdfs) need_java && install_hdfs ;;
    apicurio) need_java && install_apicurio ;;
    python) need_python && install_python ;;
    spark-jars) need_java && install_spark_jars ;;
    minio) install_minio ;;
    *) die "unknown component $c" ;;
  esac
  ((SECONDS - start < 2)) || log "$c: installed in $((SECONDS - start))s"
done
