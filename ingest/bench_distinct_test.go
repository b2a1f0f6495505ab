package ingest_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/adtrack"
	"github.com/protolake/protolake/schema"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/writer"
)

// distinctPartitions is the Kafka partition count of the distinct-record
// benchmarks: more partitions than the cores of the machines they run on,
// so scaling is bounded by the cores, not by the partitions. 8, or
// PLTEST_DISTINCT_PARTITIONS.
var distinctPartitions = envInt("PLTEST_DISTINCT_PARTITIONS", 8)

var (
	distinctMu    sync.Mutex
	distinctCache = map[int][][]byte{}
)

// distinctSpacing is the time between the distinct records' event times:
// the demo generator's 8 s (200,000 records span 19 days, so the table
// gets 19 day files of about 10,800 rows per shard and commit), or
// PLTEST_DISTINCT_SPACING_MS milliseconds (a stream whose records fall
// in one day: 400 ms or less for 200,000).
var distinctSpacing = time.Duration(envInt("PLTEST_DISTINCT_SPACING_MS", 8000)) * time.Millisecond

// distinctRecords returns n distinct AdImpressions from the demo generator
// (internal/adtrack, the messages `protolake demo` and the writer's
// benchmark corpus are made of: ~480 bytes on the wire, event times
// distinctSpacing apart), generated once per test binary and n.
func distinctRecords(n int) ([][]byte, int64) {
	distinctMu.Lock()
	defer distinctMu.Unlock()
	recs, ok := distinctCache[n]
	if !ok {
		recs, _ = adtrack.Corpus(20261201, 16, n, distinctSpacing)
		distinctCache[n] = recs
	}
	var total int64
	for _, b := range recs {
		total += int64(len(b))
	}
	return recs, total
}

// envBroker makes the test binary a Kafka broker (brokerMain).
const envBroker = "PLTEST_KFAKE_BROKER"

// brokerMain runs kfake with PLTEST_KFAKE_BROKER partitions of topic,
// prints its address on stdout and serves until stdin is closed.
func brokerMain() int {
	parts, err := strconv.Atoi(os.Getenv(envBroker))
	if err != nil {
		fmt.Fprintln(os.Stderr, envBroker+":", err)
		return 2
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(parts), topic), kfake.BrokerConfigs(map[string]string{"group.min.session.timeout.ms": "500"}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		return 1
	}
	defer c.Close()
	fmt.Println(strings.Join(c.ListenAddrs(), ","))
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// startBroker runs kfake with parts partitions of topic in a child process
// (the test binary, brokerMain), so that the benchmark's CPU time is the
// Runner's alone, as in a deployment whose brokers run elsewhere. It
// returns the broker's addresses and a function reading its CPU time.
func startBroker(b *testing.B, parts int) ([]string, func() time.Duration) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), envBroker+"="+strconv.Itoa(parts))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("broker process: %v", err)
	}
	stat := fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)
	cpu := func() time.Duration {
		data, err := os.ReadFile(stat)
		if err != nil {
			return 0
		}
		// utime and stime, in clock ticks of 1/100 s, are the 14th and
		// 15th fields; the 2nd, the command, ends with the last ')'.
		f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		if len(f) < 13 {
			return 0
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		return time.Duration(u+s) * 10 * time.Millisecond
	}
	return strings.Split(strings.TrimSpace(line), ","), cpu
}

// envBrokerAddrs names a kfake broker already running (the test binary
// run with PLTEST_KFAKE_BROKER=n and its stdin kept open prints its
// address) for BenchmarkEndToEndDistinct instead of a child process, so
// that the benchmark process starts none: valgrind's callgrind aborts on
// the signals of a fork (run it with GODEBUG=asyncpreemptoff=1 as well).
const envBrokerAddrs = "PLTEST_KFAKE_ADDRS"

var distinctTopics atomic.Int64

// valgrindGroup are the group options of a run with PLTEST_KFAKE_ADDRS
// (under valgrind), which runUntilCaughtUp adds last: heartbeats every
// 300 ms of a 3 s session (fastGroup) do not keep up there, and the group
// would drop the Runner. Without it, none.
func valgrindGroup() []kgo.Opt {
	if os.Getenv(envBrokerAddrs) == "" {
		return nil
	}
	return []kgo.Opt{kgo.SessionTimeout(5 * time.Minute), kgo.HeartbeatInterval(3 * time.Second)}
}

// distinctBroker starts the broker of BenchmarkEndToEndDistinct (startBroker)
// and returns its addresses, its CPU time and the topic to use: topic,
// with distinctPartitions partitions. With PLTEST_KFAKE_ADDRS it uses that
// broker and a new topic per run (its CPU time reads 0).
func distinctBroker(b *testing.B) ([]string, func() time.Duration, string) {
	addrs := os.Getenv(envBrokerAddrs)
	if addrs == "" {
		brokers, cpu := startBroker(b, distinctPartitions)
		return brokers, cpu, topic
	}
	brokers := strings.Split(addrs, ",")
	top := fmt.Sprintf("%s.%d.%d", topic, os.Getpid(), distinctTopics.Add(1))
	c, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := kadm.NewClient(c).CreateTopic(context.Background(), int32(distinctPartitions), 1, nil, top); err != nil {
		b.Fatal(err)
	}
	return brokers, func() time.Duration { return 0 }, top
}

// envProfileSync names a directory in which BenchmarkEndToEndDistinct
// marks where its measurement starts and ends, for a profiler outside the
// process (under valgrind: `callgrind_control -z` and `-d`, so that the
// counts leave the records' generation and production out): at each mark
// it creates <run>.<mark> and waits until <run>.<mark>.ok exists.
const envProfileSync = "PLTEST_PROFILE_SYNC"

var profileRuns atomic.Int64

// profileMark makes mark "start" or "end" of the current run (see
// envProfileSync); without PLTEST_PROFILE_SYNC it does nothing.
func profileMark(b *testing.B, mark string) {
	dir := os.Getenv(envProfileSync)
	if dir == "" {
		return
	}
	if mark == "start" {
		profileRuns.Add(1)
	}
	name := filepath.Join(dir, fmt.Sprintf("%d.%s", profileRuns.Load(), mark))
	if err := os.WriteFile(name, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := os.Stat(name + ".ok"); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processCPU is the process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// idlePs is the Go runtime's idle CPU time until the time it returns:
// GOMAXPROCS × wall time while the Ps had no goroutine to run. Unlike
// cores, the share of the Ps kept busy barely depends on what other
// processes leave of the machine: it shows the pipeline's own waits (a
// worker waiting for the others, the poll waiting for a fetch). The
// runtime brings the figure up to date only when a collection ends
// (golang/go#59749), so idlePs collects first.
func idlePs() (time.Duration, time.Time) {
	runtime.GC()
	return time.Duration(runtimeMetric("/cpu/classes/idle:cpu-seconds").Float64() * 1e9), time.Now()
}

// reportRates reports msgs/s (wall), msgs/cpu-s, cpu-ns/op, MB/cpu-s and
// cores (CPU time over wall time: how many cores the run kept busy, which
// on a shared machine is also bounded by what the others leave).
func reportRates(b *testing.B, total int64, cpu time.Duration) {
	b.ReportMetric(cpu.Seconds()/b.Elapsed().Seconds(), "cores")
	b.SetBytes(total / int64(b.N))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "msgs/cpu-s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(total)/cpu.Seconds()/1e6, "MB/cpu-s")
}

// BenchmarkEndToEndDistinct: b.N distinct generated AdImpressions, produced
// to 8 partitions of kfake (in a child process: its CPU time is reported
// apart, as broker-cpu-ns/op) before the timer starts, consumed by one
// Runner until caught up into a day-partitioned Delta table on local disk
// with the default configuration (decode_workers = GOMAXPROCS, which -cpu
// sets); every row committed. p-busy is the share of GOMAXPROCS × wall
// time the Go runtime's Ps were busy (see idlePs); gc-cpu-ns/op the
// collector's CPU time in it (gcCPU, up to the collection that ends the
// measurement; both benchmarks report it), gcs the collections (that one
// included). Unlike
// BenchmarkEndToEnd (1,000 messages repeated) no two records are alike, so
// dictionaries, compression and the page index work as on real data. Run it
// with -cpu 1,2 beside BenchmarkWriterOnlyDistinct (`make bench` does and
// prints the ratios with ingest/testdata/benchratio.awk).
func BenchmarkEndToEndDistinct(b *testing.B) {
	recs, total := distinctRecords(b.N)
	brokers, brokerCPU, top := distinctBroker(b)
	produceDistinct(b, brokers, top, recs)
	dir := tempDir(b)
	cfg := distinctConfig(b, brokers, dir)
	cfg.Tables[0].Topics = []string{top}
	startIdle, t0 := idlePs() // collects
	gcStart, cyclesStart := gcCPU(), gcCycles()
	profileMark(b, "start")
	b.ResetTimer()
	start, startBroker := processCPU(), brokerCPU()
	r := runUntilCaughtUp(b, cfg, ingest.Options{})
	cpu, bcpu := processCPU()-start, brokerCPU()-startBroker
	b.StopTimer()
	profileMark(b, "end")
	idle, t1 := idlePs()
	idle -= startIdle
	b.ReportMetric(float64((gcCPU()-gcStart).Nanoseconds())/float64(b.N), "gc-cpu-ns/op")
	b.ReportMetric(float64(gcCycles()-cyclesStart), "gcs")
	if got := r.Stats()[0].RowsCommitted; got != int64(b.N) {
		b.Fatalf("committed %d rows, want %d", got, b.N)
	}
	reportRates(b, total, cpu)
	b.ReportMetric(float64(bcpu.Nanoseconds())/float64(b.N), "broker-cpu-ns/op")
	b.ReportMetric(1-idle.Seconds()/(t1.Sub(t0).Seconds()*float64(runtime.GOMAXPROCS(0))), "p-busy")
	var size int64
	err := filepath.WalkDir(filepath.Join(dir, "ad_impressions"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".parquet") {
			return err
		}
		info, err := d.Info()
		size += info.Size()
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(size)/float64(b.N), "file-B/row")
}

// produceDistinct produces recs to topic top, round robin over its
// partitions, in batches of up to 1 MiB.
func produceDistinct(b *testing.B, brokers []string, top string, recs [][]byte) {
	b.Helper()
	p, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for from := 0; from < len(recs); from += 10000 {
		var batch []*kgo.Record
		for _, v := range recs[from:min(len(recs), from+10000)] {
			batch = append(batch, &kgo.Record{Topic: top, Value: v})
		}
		if err := p.ProduceSync(context.Background(), batch...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScalingDistinct measures BenchmarkEndToEndDistinct's wall-clock
// scaling from GOMAXPROCS 1 to 2 (PLTEST_SCALING_CPUS, by default "1,2")
// in drains that follow each other: the b.N records are produced once,
// then each round drains them with a fresh Runner (its own consumer group
// and table, decode_workers = GOMAXPROCS) once per GOMAXPROCS, in the
// order 1, 2 and then 2, 1 (PLTEST_SCALING_ROUNDS rounds, by default 4).
// A round's ratio compares drains seconds apart, so a machine whose speed
// drifts over minutes (a shared VM) gives the same figure, where
// BenchmarkEndToEndDistinct's -cpu 1 and -cpu 2 runs, which go test runs
// one after the other with the benchmark's set-up between, do not:
// scaling-x is the median of the rounds' ratios of msgs/s at the last
// GOMAXPROCS to the first, scaling-min and scaling-max their range.
// -cpu does not matter: the benchmark sets GOMAXPROCS itself and restores
// it.
func BenchmarkScalingDistinct(b *testing.B) {
	var cpus []int
	for _, f := range strings.Split(cmp.Or(os.Getenv("PLTEST_SCALING_CPUS"), "1,2"), ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			b.Fatalf("PLTEST_SCALING_CPUS %q: want GOMAXPROCS values such as 1,2", os.Getenv("PLTEST_SCALING_CPUS"))
		}
		cpus = append(cpus, n)
	}
	if len(cpus) < 2 {
		b.Fatal("PLTEST_SCALING_CPUS: want at least two GOMAXPROCS values")
	}
	rounds := envInt("PLTEST_SCALING_ROUNDS", 4)
	recs, _ := distinctRecords(b.N)
	brokers, _, top := distinctBroker(b)
	produceDistinct(b, brokers, top, recs)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	drain := func(procs, n int) float64 {
		runtime.GOMAXPROCS(procs)
		cfg := distinctConfig(b, brokers, tempDir(b))
		cfg.Tables[0].Topics = []string{top}
		cfg.Kafka.GroupID = fmt.Sprintf("scaling-%d", n)
		runtime.GC()
		start := time.Now()
		r := runUntilCaughtUp(b, cfg, ingest.Options{})
		wall := time.Since(start)
		if got := r.Stats()[0].RowsCommitted; got != int64(b.N) {
			b.Fatalf("GOMAXPROCS %d: committed %d rows, want %d", procs, got, b.N)
		}
		return float64(b.N) / wall.Seconds()
	}
	b.ResetTimer()
	var ratios []float64
	for i := range rounds {
		order := slices.Clone(cpus)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		rate := map[int]float64{}
		for k, procs := range order {
			rate[procs] = drain(procs, i*len(order)+k)
		}
		ratios = append(ratios, rate[cpus[len(cpus)-1]]/rate[cpus[0]])
	}
	b.StopTimer()
	slices.Sort(ratios)
	med := ratios[len(ratios)/2]
	if len(ratios)%2 == 0 {
		med = (ratios[len(ratios)/2-1] + med) / 2
	}
	b.ReportMetric(med, "scaling-x")
	b.ReportMetric(ratios[0], "scaling-min")
	b.ReportMetric(ratios[len(ratios)-1], "scaling-max")
	b.ReportMetric(0, "ns/op") // the drains' wall time over b.N means nothing here: not printed
}

// BenchmarkWriterOnlyDistinct is the baseline of BenchmarkEndToEndDistinct:
// the same records through the same table's writer (its schema, partitioning
// and writer.Config) into files on local disk, without Kafka, commits or
// the Runner. The ratio of the two is what consuming and committing cost.
func BenchmarkWriterOnlyDistinct(b *testing.B) {
	recs, total := distinctRecords(b.N)
	cfg := distinctConfig(b, []string{"127.0.0.1:1"}, tempDir(b))
	cfg.ApplyDefaults()
	tc := cfg.Tables[0]
	files, err := schema.ReadDescriptorSet(tc.DescriptorSet)
	if err != nil {
		b.Fatal(err)
	}
	md, err := schema.FindMessage(files, tc.Message, tc.DescriptorSet)
	if err != nil {
		b.Fatal(err)
	}
	tab, err := schema.Derive(md, tc.Schema)
	if err != nil {
		b.Fatal(err)
	}
	st, err := local.New(filepath.Join(tc.URI))
	if err != nil {
		b.Fatal(err)
	}
	w, err := writer.NewTable(tc.WriterConfig(), tab, st)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	runtime.GC()
	gcStart, cyclesStart := gcCPU(), gcCycles()
	b.ResetTimer()
	start := processCPU()
	for i, v := range recs {
		k := writer.Kafka{Topic: topic, Partition: int32(i % distinctPartitions), Offset: int64(i / distinctPartitions), Timestamp: now}
		if err := w.Write(ctx, v, k); err != nil {
			b.Fatal(err)
		}
		if i%10000 == 0 {
			w.TakeFinished()
		}
	}
	if _, err := w.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	cpu := processCPU() - start
	b.StopTimer()
	reportRates(b, total, cpu)
	runtime.GC()
	b.ReportMetric(float64((gcCPU()-gcStart).Nanoseconds())/float64(b.N), "gc-cpu-ns/op")
	b.ReportMetric(float64(gcCycles()-cyclesStart), "gcs")
}

// distinctConfig is the configuration of both distinct-record benchmarks:
// the ingest tests' table, cut once, at the end, by the commit interval
// (10 s), and so by the buffers' age (max_age defaults to it) only after
// 10 s. With the tests' 300 ms the writer alone, on a loaded machine,
// finished day partitions' files by age before their last records: 23–34
// files of the 200,000 records instead of the Runner's 19 (load average
// 10), a baseline made slower than the writer is.
//
// PLTEST_DISTINCT_COMMIT_SECONDS sets another commit interval: under
// valgrind, 50 times slower, 10 s would cut the table in the middle of a
// run, by time, which differs between runs.
func distinctConfig(b *testing.B, brokers []string, dir string) ingest.Config {
	cfg := baseConfig(b, brokers, dir)
	cfg.Tables[0].Flush.CommitInterval = time.Duration(envInt("PLTEST_DISTINCT_COMMIT_SECONDS", 10)) * time.Second
	return cfg
}

// gcCycles is the number of collections the Go runtime completed so far.
func gcCycles() uint64 {
	return runtimeMetric("/gc/cycles/total:gc-cycles").Uint64()
}

// gcCPU is the Go runtime's estimate of the CPU time its collector took
// so far (its mark workers, including those that run on idle Ps, assists
// and pauses), brought up to date when a collection ends: read it after
// one.
func gcCPU() time.Duration {
	return time.Duration(runtimeMetric("/cpu/classes/gc/total:cpu-seconds").Float64() * 1e9)
}

// runtimeMetric reads one of the Go runtime's metrics.
func runtimeMetric(name string) metrics.Value {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value
}
