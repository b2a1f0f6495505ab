package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/protolake/protolake/commitlog"
	"github.com/protolake/protolake/ingest"
	"github.com/protolake/protolake/internal/ducktest"
	"github.com/protolake/protolake/storage/local"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Child processes: the test binary re-executed with PLTEST_CHILD
// set runs one Runner on the config in PLTEST_CHILD_CONFIG until
// SIGTERM (exit 0 after a clean shutdown) or SIGKILL.
const (
	envChild       = "PLTEST_CHILD"
	envChildConfig = "PLTEST_CHILD_CONFIG"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(childMain())
	}
	if os.Getenv(envBroker) != "" {
		os.Exit(brokerMain())
	}
	os.Exit(m.Run())
}

func childMain() int {
	var cfg ingest.Config
	if err := json.Unmarshal([]byte(os.Getenv(envChildConfig)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	level := slog.LevelWarn
	if os.Getenv("PLTEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var kopts []kgo.Opt
	if cfg.Kafka.SessionTimeout == 0 {
		kopts = childGroup() // the config does not set the group timeouts
	}
	r, err := ingest.NewRunner(ctx, cfg, ingest.Options{Logger: logger, KafkaOpts: kopts})
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewRunner:", err)
		return 1
	}
	ingest.SetMinShardBytes(r, 1) // as splitPolls does
	if err := r.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "Run:", err)
		return 1
	}
	return 0
}

func childGroup() []kgo.Opt {
	return []kgo.Opt{kgo.SessionTimeout(1500 * time.Millisecond), kgo.HeartbeatInterval(150 * time.Millisecond), kgo.RebalanceTimeout(3 * time.Second)}
}

// awaitKilledMembersGone waits until the group has no members: until the
// sessions of the children killed before have expired, as they would on
// any broker. Call it before a run that must catch up after SIGKILLs:
// kfake starts a member's session timer only when a reply reaches it, so
// a child killed while its JoinGroup waited stays a member for good if
// the next process joins and leads before that rebalance ends (it assigns
// the dead member its share of the partitions, and the run never catches
// up). Alone, the dead member is dropped when it fails to sync.
func awaitKilledMembersGone(t *testing.T, cl *kgo.Client, group string) {
	t.Helper()
	adm := kadm.NewClient(cl)
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	for {
		gs, err := adm.DescribeGroups(context.Background(), group)
		if err == nil && len(gs[group].Members) == 0 {
			t.Logf("group %q empty after waiting %v", group, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed children are still members of group %q after 20 s: %v %+v", group, err, gs[group].Members)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// child is a running Runner process.
type child struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func startChild(t *testing.T, cfg ingest.Config) *child {
	t.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envChildConfig+"="+string(js))
	c := &child{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = &lockedWriter{w: c.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	return c
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	c.done <- nil // for Cleanup
}

// stop sends SIGTERM and requires a clean exit.
func (c *child) stop(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		c.done <- nil
		if err != nil {
			t.Errorf("child exited with %v after SIGTERM; stderr:\n%s", err, c.stderr)
		}
	case <-time.After(40 * time.Second):
		t.Errorf("child did not stop within 40s of SIGTERM")
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// background produces messages from..to in small batches while tests kill
// processes; wait returns when all are acknowledged.
type background struct {
	mu   sync.Mutex
	src  produced
	done chan error
}

func produceInBackground(t *testing.T, p *kgo.Client, n int, batch int, every time.Duration, value func(int) []byte) *background {
	return produceInBackgroundTo(t, p, topic, n, batch, every, value)
}

// produceInBackgroundTo is produceInBackground to another topic.
func produceInBackgroundTo(t *testing.T, p *kgo.Client, topic string, n int, batch int, every time.Duration, value func(int) []byte) *background {
	b := &background{done: make(chan error, 1), src: produced{byCoord: map[[2]int64]int{}}}
	go func() {
		for from := 0; from < n; from += batch {
			to := min(n, from+batch)
			recs := make([]*kgo.Record, 0, to-from)
			for i := from; i < to; i++ {
				recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: value(i)})
			}
			res := p.ProduceSync(context.Background(), recs...)
			if err := res.FirstErr(); err != nil {
				b.done <- err
				return
			}
			b.mu.Lock()
			for _, r := range res {
				i, _ := strconv.Atoi(string(r.Record.Key))
				b.src.byCoord[[2]int64{int64(r.Record.Partition), r.Record.Offset}] = i
			}
			b.mu.Unlock()
			time.Sleep(every)
		}
		b.done <- nil
	}()
	return b
}

func (b *background) wait(t *testing.T) *produced {
	t.Helper()
	if err := <-b.done; err != nil {
		t.Fatalf("produce: %v", err)
	}
	return &b.src
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// crashConfig commits often and writes small files, so kills land in every
// phase: between files, between the dead-letter and main commits, during a
// commit, during a rebalance.
func crashConfig(t *testing.T, brokers []string, dir string) ingest.Config {
	cfg := baseConfig(t, brokers, dir)
	cfg.Tables[0].Flush = ingest.FlushConfig{CommitInterval: 100 * time.Millisecond, MaxRows: 150}
	cfg.ShutdownTimeout = 20 * time.Second
	return cfg
}

// TestCrashRecovery SIGKILLs a protolake process at random moments while
// messages (2% of them corrupt) are produced, restarting it each time; at
// the end the table holds every good message exactly once and the
// dead-letter table every bad one exactly once. PLTEST_CRASH_ITERATIONS
// sets the number of kills (default 8), PLTEST_SEED the seed of the
// kill times (random by default, printed when the test fails).
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	iters := envInt("PLTEST_CRASH_ITERATIONS", 8)
	isBad := func(i int) bool { return i%50 == 7 }
	n := 400 * (iters + 2)
	c := startKafka(t, 6, topic)
	dir := tempDir(t)
	cfg := crashConfig(t, c.ListenAddrs(), dir)
	// Spread the messages over the whole test, about 2s per iteration.
	every := time.Duration(iters) * 2 * time.Second / time.Duration(n/40)
	bg := produceInBackground(t, producer(t, c), n, 40, every, func(i int) []byte {
		if isBad(i) {
			return corrupt(i)
		}
		return marshal(i)
	})
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PLTEST_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("PLTEST_SEED=%q: %v", v, err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kill times drawn from seed %d: replay with PLTEST_SEED=%d", seed, seed)
		}
	})
	rng := rand.New(rand.NewPCG(seed, 5))
	version := func() int64 { return tableVersion(t, filepath.Join(dir, "ad_impressions")) }
	for i := range iters {
		before := version()
		start := time.Now()
		ch := startChild(t, cfg)
		if i%4 != 3 {
			// Most kills land while the process works: after it made a
			// commit, at a random point of the next ones.
			for version() == before && time.Since(start) < 10*time.Second {
				time.Sleep(10 * time.Millisecond)
			}
		}
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		ch.kill(t)
		t.Logf("iteration %d: killed after %v at table version %d (was %d)", i, time.Since(start).Round(time.Millisecond), version(), before)
	}
	src := bg.wait(t)
	awaitKilledMembersGone(t, producer(t, c), cfg.Kafka.GroupID)
	r := runUntilCaughtUp(t, cfg, ingest.Options{KafkaOpts: childGroup()})
	t.Logf("final run: %+v", r.Stats()[0])
	db := ducktest.Open(t)
	checkExactlyOnce(t, readRows(t, db, filepath.Join(dir, "ad_impressions")), src, isBad)
	checkDeadLetters(t, db, filepath.Join(dir, "ad_impressions_dlq"), src, isBad)
}

// checkDeadLetters asserts the dead-letter table holds each bad message
// exactly once, at its coordinates.
func checkDeadLetters(t *testing.T, db interface{}, dir string, src *produced, isBad func(int) bool) {
	t.Helper()
	files, _ := tableFiles(t, dir)
	want := map[[2]int64]bool{}
	for k, i := range src.byCoord {
		if isBad(i) {
			want[k] = true
		}
	}
	if len(files) == 0 {
		if len(want) > 0 {
			t.Fatalf("dead-letter table is empty, want %d rows", len(want))
		}
		return
	}
	rows := ducktest.Rows(t, ducktest.Open(t), "SELECT _kafka.partition, _kafka.offset FROM "+ducktest.ReadParquet(files...))
	seen := map[[2]int64]bool{}
	for _, r := range rows {
		p, _ := strconv.ParseInt(r[0], 10, 64)
		o, _ := strconv.ParseInt(r[1], 10, 64)
		k := [2]int64{p, o}
		if seen[k] {
			t.Errorf("dead letter %v twice", k)
		}
		if !want[k] {
			t.Errorf("dead letter %v is not a bad message", k)
		}
		seen[k] = true
	}
	if len(seen) != len(want) {
		t.Errorf("dead-letter table has %d distinct rows, want %d", len(seen), len(want))
	}
}

// TestRebalance runs 3 processes in one group while producing, SIGKILLs one
// and adds a fourth mid-stream, then stops the rest with SIGTERM (each must
// exit 0): every message is in the table exactly once.
func TestRebalance(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	const n = 6000
	c := startKafka(t, 6, topic)
	dir := tempDir(t)
	cfg := crashConfig(t, c.ListenAddrs(), dir)
	bg := produceInBackground(t, producer(t, c), n, 25, 15*time.Millisecond, marshal)
	var kids []*child
	for range 3 {
		kids = append(kids, startChild(t, cfg))
	}
	adm := kadm.NewClient(producer(t, c))
	maxMembers := 0
	deadline := time.Now().Add(15 * time.Second)
	for maxMembers < 3 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		gs, err := adm.DescribeGroups(context.Background(), "lake")
		if err == nil {
			maxMembers = max(maxMembers, len(gs["lake"].Members))
		}
	}
	if maxMembers < 3 {
		t.Fatalf("the group never had 3 members (max %d)", maxMembers)
	}
	// Kill one while the group commits, add a fourth after the survivors
	// committed again, stop the rest once the group has committed every
	// produced record.
	version := func() int64 {
		_, snap := tableFiles(t, filepath.Join(dir, "ad_impressions"))
		return snap.Version()
	}
	committed := func(what string) {
		t.Helper()
		v := version()
		waitFor(t, what, func() bool { return version() > v })
	}
	committed("no commit by the group of 3")
	kids[0].kill(t)
	committed("no commit after the kill")
	kids = append(kids, startChild(t, cfg))
	src := bg.wait(t)
	waitFor(t, "the group's offsets never reached the end of the topic", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return false
		}
		offs, err := adm.FetchOffsets(ctx, "lake")
		if err != nil {
			return false
		}
		done := true
		ends.Each(func(e kadm.ListedOffset) {
			if o, ok := offs.Lookup(e.Topic, e.Partition); !ok || o.At < e.Offset {
				done = false
			}
		})
		return done
	})
	for _, k := range kids[1:] {
		k.stop(t)
	}
	r := runUntilCaughtUp(t, cfg, ingest.Options{KafkaOpts: childGroup()})
	t.Logf("final run: %+v", r.Stats()[0])
	checkExactlyOnce(t, readRows(t, ducktest.Open(t), filepath.Join(dir, "ad_impressions")), src, nil)
}

// TestFailover runs two instances (static members, as StatefulSet pods) with
// short group timeouts, SIGKILLs one, and measures how long until every
// partition is committed again: within session_timeout + 5s. Afterwards the
// table holds every message exactly once.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	c := startKafka(t, 6, topic)
	// Produced for about 10s, so that every partition has new records
	// throughout the failover.
	testFailover(t, c.ListenAddrs(), topic, producer(t, c), 16000, 2*time.Second)
}

// testFailover is TestFailover against brokers, whose topic has 6
// partitions; p produces to them.
func testFailover(t *testing.T, brokers []string, topic string, p *kgo.Client, n int, session time.Duration) {
	dir := tempDir(t)
	cfg := crashConfig(t, brokers, dir)
	group := "lake-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	cfg.Kafka.GroupID = group
	cfg.Tables[0].Topics = []string{topic}
	cfg.Kafka.SessionTimeout = session
	cfg.Kafka.HeartbeatInterval = session / 10
	cfg.Kafka.RebalanceTimeout = 2 * session
	bg := produceInBackgroundTo(t, p, topic, n, 20, 10*time.Millisecond, marshal)
	var kids []*child
	for i := range 2 {
		k := cfg
		k.Kafka.InstanceID = fmt.Sprintf("protolake-%d", i)
		kids = append(kids, startChild(t, k))
	}
	store, err := local.New(filepath.Join(dir, "ad_impressions"))
	if err != nil {
		t.Fatal(err)
	}
	watermarks := func() map[int32]int64 {
		snap, err := commitlog.LoadSnapshot(context.Background(), store, commitlog.Latest, commitlog.LoadOptions{})
		if err != nil {
			return nil
		}
		out := map[int32]int64{}
		for p := range int32(6) {
			if v, ok := snap.TxnVersion(commitlog.KafkaAppID(group, topic, p)); ok {
				out[p] = v
			}
		}
		return out
	}
	// Both members hold partitions, and every partition has been committed.
	adm := kadm.NewClient(p)
	deadline := time.Now().Add(20*time.Second + 2*session)
	for {
		gs, err := adm.DescribeGroups(context.Background(), group)
		if err == nil && len(gs[group].Members) == 2 && len(watermarks()) == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never had 2 members and 6 committed partitions (watermarks %v)", watermarks())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	before := watermarks()
	killed := time.Now()
	kids[0].kill(t)
	var recovered time.Duration
	for {
		now := watermarks()
		moved := 0
		for p, v := range before {
			if now[p] > v {
				moved++
			}
		}
		if moved == len(before) {
			recovered = time.Since(killed)
			break
		}
		if time.Since(killed) > session+15*time.Second {
			t.Fatalf("after %v only %d of %d partitions were committed again (before %v, now %v)", time.Since(killed), moved, len(before), before, now)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("every partition committed again %v after the SIGKILL (session_timeout %v)", recovered.Round(time.Millisecond), session)
	if recovered > session+5*time.Second {
		t.Errorf("failover took %v, want at most session_timeout + 5s = %v", recovered, session+5*time.Second)
	}
	if os.Getenv("PLTEST_LOG") == "debug" {
		t.Logf("killed at %s; survivor:\n%s", killed.UTC().Format("15:04:05.000"), kids[1].stderr)
	}
	src := bg.wait(t)
	kids[1].stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := ingest.NewRunner(ctx, cfg, ingest.Options{Logger: testLogger(t), UntilCaughtUp: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx); err != nil {
		t.Fatalf("final run: %v", err)
	}
	t.Logf("final run: %+v", r.Stats()[0])
	checkExactlyOnce(t, readRows(t, ducktest.Open(t), filepath.Join(dir, "ad_impressions")), src, nil)
}

// tableVersion is the latest committed version of the local table at dir,
// or -1 while it has none.
func tableVersion(t *testing.T, dir string) int64 {
	t.Helper()
	store, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := commitlog.LoadSnapshot(context.Background(), store, commitlog.Latest, commitlog.LoadOptions{})
	if err != nil {
		return -1
	}
	return snap.Version()
}
