#!/bin/bash
# Counts the instructions of BenchmarkEndToEndDistinct's measured part with
# callgrind (valgrind serialises the threads, so the counts are work done,
# not cache or scheduling effects), the records' generation and production
# left out. Usage, from ingest/ (under the bench lock on a shared machine):
#   go test -c -o /tmp/i.test . && testdata/callgrind-e2e.sh /tmp/i.test OUT CPU N
# writes OUT.<pid>.2 (the b.N = N run; .1 is the b.N = 1 run) and OUT.log;
# `callgrind_annotate --inclusive=no OUT.<pid>.2` lists it by function.
# The broker runs natively beside it (callgrind aborts on a fork's signals);
# set PLTEST_DECODE_WORKERS and the like in the environment as usual.
# At -cpu 2 and more the dump charges millions of instructions to the roots
# of goroutines parked at the zero or the dump (runtime.goexit, kgo's
# handleReq, pushMetrics, ...): compare the functions that do the work.
set -eu
bin=$1 out=$2 cpu=$3 n=$4
sync=$(mktemp -d)
fifo=$sync/broker.in
mkfifo "$fifo"
sleep infinity >"$fifo" &
hold=$!
PLTEST_KFAKE_BROKER=${PLTEST_DISTINCT_PARTITIONS:-8} "$bin" -test.run='^$' -test.bench='^$' <"$fifo" >"$sync/addr" &
broker=$!
trap 'kill $hold 2>/dev/null; wait $broker 2>/dev/null; rm -rf "$sync"' EXIT
while [ ! -s "$sync/addr" ]; do sleep 0.1; done
GODEBUG=asyncpreemptoff=1 PLTEST_PROFILE_SYNC=$sync PLTEST_KFAKE_ADDRS=$(head -1 "$sync/addr") \
	PLTEST_DISTINCT_COMMIT_SECONDS=3600 PLTEST_RUN_TIMEOUT_SECONDS=3000 \
	valgrind --tool=callgrind --separate-threads=no --callgrind-out-file="$out.%p" \
	"$bin" -test.run='^$' -test.bench='EndToEndDistinct$' -test.benchmem -test.cpu "$cpu" -test.benchtime "${n}x" >"$out.log" 2>&1 &
vg=$!
for run in 1 2; do
	for mark in start end; do
		while [ ! -e "$sync/$run.$mark" ]; do
			kill -0 $vg 2>/dev/null || { wait $vg; exit $?; }
			sleep 0.2
		done
		if [ $mark = start ]; then callgrind_control -z $vg >/dev/null; else callgrind_control -d run$run $vg >/dev/null; fi
		touch "$sync/$run.$mark.ok"
	done
done
wait $vg
grep '^Benchmark' "$out.log"
