#!/usr/bin/env bash
# Starts the interop servers on 127.0.0.1, each in the background with a
# fresh data directory under $PLTEST_INTEROP_RUN, and waits until each
# answers. For every server it writes $PLTEST_INTEROP_RUN/NAME.pid and
# NAME.log, and appends its addresses to $PLTEST_INTEROP_RUN/env
# (KEY=VALUE lines, for `set -a; . env; set +a`). interop/stop.sh stops them.
#
# Usage: interop/start.sh [kafka] [hdfs] [minio] [apicurio]   (default: all four)
# A server that fails to come up makes start.sh stop the ones it started and
# exit non-zero, printing the end of that server's log.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUN=$PLTEST_INTEROP_RUN
mkdir -p "$RUN"
ENV_FILE="$RUN/env"
started=()

fail() {
  local name=$1
  log "$name did not start; last lines of $RUN/$name.log:"
  tail -n 40 "$RUN/$name.log" >&2 || true
  "$INTEROP_DIR/stop.sh" "${started[@]}" || true
  exit 1
}

check_free() {
  local name=$1; shift
  for p in "$@"; do
    port_in_use "$p" && die "$name: 127.0.0.1:$p is in use (a server left running? interop/stop.sh; or set PLTEST_INTEROP_*_PORT)"
  done
  return 0
}

already_running() {
  [[ -f "$RUN/$1.pid" ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null
}

# launch NAME COMMAND...: starts COMMAND in its own process group (setsid),
# so stop.sh can end the server and any children it has. The server gets no
# descriptor of ours but stdin/stdout/stderr: under `flock LOCK ...` it
# would otherwise inherit the lock's, and a server left running by a killed
# run would hold the interop lock for everyone (the next run's stop.sh
# stops such leftovers).
launch() {
  local name=$1; shift
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      ((fd > 2)) && eval "exec $fd>&-"
    done 2>/dev/null
    exec setsid "$@" >"$RUN/$name.log" 2>&1 </dev/null
  ) &
  echo $! >"$RUN/$name.pid"
  started+=("$name")
}

put_env() { # KEY VALUE: replace KEY's line in the env file
  touch "$ENV_FILE"
  grep -v "^$1=" "$ENV_FILE" >"$ENV_FILE.tmp" || true
  printf '%s=%s\n' "$1" "$2" >>"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

start_kafka() {
  already_running kafka && { log "kafka already running"; return; }
  [[ -d "$KAFKA_HOME/libs" ]] || die "kafka is not installed: interop/install.sh kafka"
  check_free kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_PORT" "$KAFKA_TLS_PORT"
  local dir="$RUN/kafka"
  rm -rf "$dir" && mkdir -p "$dir/tls"
  # A test CA and a broker certificate for 127.0.0.1 (the SSL listener).
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=protolake interop CA" \
    -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.pem" >/dev/null 2>&1 || die "kafka: CA certificate"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/tls/broker.key" -out "$dir/tls/broker.csr" >/dev/null 2>&1 &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/tls/san.ext" &&
    openssl x509 -req -in "$dir/tls/broker.csr" -CA "$dir/tls/ca.pem" -CAkey "$dir/tls/ca.key" -CAcreateserial -days 2 \
      -extfile "$dir/tls/san.ext" -out "$dir/tls/broker.pem" >/dev/null 2>&1 &&
    openssl pkcs12 -export -in "$dir/tls/broker.pem" -inkey "$dir/tls/broker.key" -certfile "$dir/tls/ca.pem" \
      -out "$dir/tls/broker.p12" -passout pass:protolake >/dev/null 2>&1 || die "kafka: broker certificate"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_TLS_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_TLS_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_protolake="protolake-secret";
listener.name.ssl.ssl.keystore.type=PKCS12
listener.name.ssl.ssl.keystore.location=$dir/tls/broker.p12
listener.name.ssl.ssl.keystore.password=protolake
listener.name.ssl.ssl.key.password=protolake
log.dirs=$dir/data
# No time retention: interop/plgen gives its records fixed Kafka timestamps
# (2026-11-20), so the default 7 days made the broker delete a whole topic
# at its next retention check, and a test that read the topic minutes after
# it was produced found it empty (and protolake, starting at the earliest
# offset left, rightly committed nothing). The check runs every second from
# the first second on (not after 30 s and then every 5 min), so
# TestKafkaKeepsOldRecords (interop/smoke) would see a deleting broker.
log.retention.ms=-1
log.retention.check.interval.ms=1000
log.initial.task.delay.ms=1000
num.partitions=3
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
PROPS
  cat >"$dir/log4j2.yaml" <<'LOG'
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
LOG
  local java=(java -Xms128m -Xmx512m -XX:+UseSerialGC -Dlog4j2.configurationFile="$dir/log4j2.yaml" -cp "$KAFKA_HOME/libs/*")
  local id
  id=$("${java[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
  "${java[@]}" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" >"$RUN/kafka-format.log" 2>&1 ||
    { cat "$RUN/kafka-format.log" >&2; die "kafka: storage format failed"; }
  log "kafka: starting $KAFKA_VERSION (KRaft) on 127.0.0.1:$KAFKA_PORT"
  launch kafka "${java[@]}" kafka.Kafka "$dir/server.properties"
  wait_for kafka 90 "$(cat "$RUN/kafka.pid")" grep -q "Kafka Server started" "$RUN/kafka.log" || fail kafka
  # Ready for clients: metadata answers through the advertised listener.
  wait_for kafka 30 "$(cat "$RUN/kafka.pid")" kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 5 || fail kafka
  put_env PLTEST_INTEROP_KAFKA_BROKERS "127.0.0.1:$KAFKA_PORT"
  # SASL PLAIN (user protolake, password protolake-secret) and TLS listeners.
  put_env PLTEST_INTEROP_KAFKA_SASL_BROKERS "127.0.0.1:$KAFKA_SASL_PORT"
  put_env PLTEST_INTEROP_KAFKA_TLS_BROKERS "127.0.0.1:$KAFKA_TLS_PORT"
  put_env PLTEST_INTEROP_KAFKA_CA_FILE "$dir/tls/ca.pem"
}

start_hdfs() {
  already_running hdfs && { log "hdfs already running"; return; }
  [[ -f "$HADOOP_HOME_DIR/build/minihdfs-0.jar" ]] || die "hdfs is not installed: interop/install.sh hdfs"
  check_free hdfs "$HDFS_RPC_PORT" "$HDFS_HTTP_PORT"
  local dir="$RUN/hdfs"
  rm -rf "$dir" && mkdir -p "$dir"
  log "hdfs: starting MiniDFSCluster (Hadoop $HADOOP_VERSION) on 127.0.0.1:$HDFS_RPC_PORT, WebHDFS :$HDFS_HTTP_PORT"
  launch hdfs java -Xms128m -Xmx768m -XX:+UseSerialGC "${JAVA_OPENS[@]}" \
    -cp "$HADOOP_HOME_DIR/build/minihdfs-0.jar:$HADOOP_HOME_DIR/libs/*" \
    protolake.interop.MiniHdfs "$dir/data" "$HDFS_RPC_PORT" "$HDFS_HTTP_PORT" "$dir/ports"
  wait_for hdfs 120 "$(cat "$RUN/hdfs.pid")" test -f "$dir/ports" || fail hdfs
  local rpc http
  rpc=$(sed -n 's/^rpc=//p' "$dir/ports")
  http=$(sed -n 's/^http=//p' "$dir/ports")
  # Out of safe mode and WebHDFS answering.
  wait_for hdfs 60 "$(cat "$RUN/hdfs.pid")" curl -sf "http://127.0.0.1:$http/webhdfs/v1/?op=GETFILESTATUS&user.name=protolake" || fail hdfs
  put_env PLTEST_INTEROP_HDFS_NAMENODE "127.0.0.1:$rpc"
  put_env PLTEST_INTEROP_HDFS_URL "hdfs://127.0.0.1:$rpc"
  put_env PLTEST_INTEROP_WEBHDFS_URL "http://127.0.0.1:$http"
}

start_minio() {
  already_running minio && { log "minio already running"; return; }
  [[ -x "$MINIO_BIN" ]] || die "minio is not installed: make tools"
  check_free minio "$MINIO_PORT"
  local dir="$RUN/minio"
  rm -rf "$dir" && mkdir -p "$dir/data"
  log "minio: starting on 127.0.0.1:$MINIO_PORT"
  MINIO_ROOT_USER=protolake MINIO_ROOT_PASSWORD=protolake-secret MINIO_BROWSER=off \
    MINIO_UPDATE=off MINIO_CI_CD=1 \
    launch minio "$MINIO_BIN" server --quiet --address "127.0.0.1:$MINIO_PORT" "$dir/data"
  wait_for minio 60 "$(cat "$RUN/minio.pid")" curl -sf "http://127.0.0.1:$MINIO_PORT/minio/health/ready" || fail minio
  put_env PLTEST_INTEROP_S3_ENDPOINT "http://127.0.0.1:$MINIO_PORT"
  put_env PLTEST_INTEROP_S3_ACCESS_KEY protolake
  put_env PLTEST_INTEROP_S3_SECRET_KEY protolake-secret
  put_env PLTEST_INTEROP_S3_REGION us-east-1
}

start_apicurio() {
  already_running apicurio && { log "apicurio already running"; return; }
  [[ -f "$APICURIO_JAR" ]] || die "apicurio is not installed: interop/install.sh apicurio"
  check_free apicurio "$APICURIO_PORT"
  log "apicurio: starting Apicurio Registry $APICURIO_VERSION (in-memory storage) on 127.0.0.1:$APICURIO_PORT"
  # Storage is H2 in memory: every start is an empty registry.
  launch apicurio java -Xms64m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$APICURIO_PORT" -jar "$APICURIO_JAR"
  wait_for apicurio 120 "$(cat "$RUN/apicurio.pid")" curl -sf "http://127.0.0.1:$APICURIO_PORT/apis/ccompat/v7/subjects" || fail apicurio
  # The Confluent-compatible API (what protolake and Confluent's serializers speak).
  put_env PLTEST_INTEROP_REGISTRY_URL "http://127.0.0.1:$APICURIO_PORT/apis/ccompat/v7"
}

servers=("$@")
((${#servers[@]})) || servers=(kafka hdfs minio apicurio)
for s in "${servers[@]}"; do
  case "$s" in
    kafka) start_kafka ;;
    hdfs) start_hdfs ;;
    minio) start_minio ;;
    apicurio) start_apicurio ;;
    *) die "unknown server $s" ;;
  esac
done
put_env PLTEST_INTEROP_RUN "$RUN"
put_env PLTEST_INTEROP_CACHE "$PLTEST_INTEROP_CACHE"
put_env PLTEST_INTEROP_SHARED "${PLTEST_INTEROP_SHARED:-$(cd "$REPO_ROOT/.." && pwd)/shared}"
log "servers up; addresses in $ENV_FILE"
