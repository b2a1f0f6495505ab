#!/usr/bin/env bash
# Runs one of Kafka's command-line tools from the interop tier's jars, e.g.
#   interop/kafka-tool.sh topics --bootstrap-server "$PLTEST_INTEROP_KAFKA_BROKERS" \
#     --create --topic clicks --partitions 6
#   interop/kafka-tool.sh consumer-groups --bootstrap-server ... --describe --group g
# TOOL is topics, consumer-groups, get-offsets, or a main class name.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ $# -ge 1 ]] || die "usage: interop/kafka-tool.sh TOOL ARGS..."
tool=$1; shift
case "$tool" in
  topics) main=org.apache.kafka.tools.TopicCommand ;;
  consumer-groups) main=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  get-offsets) main=org.apache.kafka.tools.GetOffsetShell ;;
  *) main=$tool ;;
esac
[[ -d "$KAFKA_HOME/libs" ]] || die "kafka is not installed: interop/install.sh kafka"
exec java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dlog4j2.level=WARN \
  -cp "$KAFKA_HOME/libs/*" "$main" "$@"
