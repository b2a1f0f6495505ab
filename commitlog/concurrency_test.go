package commitlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/storage/mem"
	"github.com/protolake/protolake/storage/s3"
	"github.com/protolake/protolake/storage/s3/s3test"
)

// logAudit reads every commit of a table and checks the invariants of
// concurrent writing: versions 0..latest are contiguous, every add appears
// exactly once, and the Kafka offset ranges of each partition never overlap.
type logAudit struct {
	latest  int64
	adds    map[string]int        // path → times added
	offsets map[string][][2]int64 // appId-ish key → ranges
}

func auditLog(t *testing.T, st Store) logAudit {
	t.Helper()
	ctx := context.Background()
	l, err := listLog(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	a := logAudit{latest: l.latest, adds: map[string]int{}, offsets: map[string][][2]int64{}}
	for v := int64(0); v <= l.latest; v++ {
		if _, ok := l.commits[v]; !ok {
			t.Fatalf("version %d missing: versions are not contiguous (latest %d)", v, l.latest)
		}
		actions, err := readCommit(ctx, st, v)
		if err != nil {
			t.Fatal(err)
		}
		for _, act := range actions {
			if act.Add != nil {
				a.adds[act.Add.Path]++
			}
			if act.CommitInfo != nil {
				for _, r := range act.CommitInfo.KafkaOffsets {
					k := r.Topic + "/" + strconv.Itoa(int(r.Partition))
					a.offsets[k] = append(a.offsets[k], [2]int64{r.First, r.Last})
				}
			}
		}
	}
	for p, n := range a.adds {
		if n != 1 {
			t.Errorf("file %s added %d times, want once", p, n)
		}
	}
	for k, rs := range a.offsets {
		sort.Slice(rs, func(i, j int) bool { return rs[i][0] < rs[j][0] })
		for i := 1; i < len(rs); i++ {
			if rs[i][0] <= rs[i-1][1] {
				t.Errorf("partition %s: offsets %v and %v committed twice", k, rs[i-1], rs[i])
			}
		}
	}
	return a
}

// concurrentAppends runs writers goroutines, each committing commits blind
// appends (with its own Kafka partition's offsets) to one table.
func concurrentAppends(t *testing.T, st Store, writers, commits int) {
	ctx := context.Background()
	tbl, err := Open(st, Config{RetryBackoff: 2_000_000, MaxAttempts: 200})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Create(ctx, testSpec()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			if err := appendLoop(ctx, tbl, "w"+strconv.Itoa(w), int32(w), commits); err != nil {
				errs <- err
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkAppends(t, tbl, st, writers, commits)
}

// appendLoop commits n blind appends for one writer; each carries offsets
// 10k..10k+9 of the writer's partition of topic "t".
func appendLoop(ctx context.Context, tbl *Table, name string, partition int32, n int) error {
	for i := 0; i < n; i++ {
		snap, err := tbl.Snapshot(ctx)
		if err != nil {
			return fmt.Errorf("%s: snapshot: %w", name, err)
		}
		tx := tbl.NewTransaction(snap)
		tx.SetOperation(OpStreamingUpdate, nil)
		tx.Add(testAdd(fmt.Sprintf("%s-%03d.parquet", name, i)))
		tx.AddKafkaOffsets("g", OffsetRange{Topic: "t", Partition: partition, First: int64(10 * i), Last: int64(10*i + 9)})
		if _, err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("%s: commit %d: %w", name, i, err)
		}
	}
	return nil
}

func checkAppends(t *testing.T, tbl *Table, st Store, writers, commits int) {
	t.Helper()
	a := auditLog(t, st)
	if want := int64(writers * commits); a.latest != want {
		t.Errorf("latest version = %d, want %d", a.latest, want)
	}
	if len(a.adds) != writers*commits {
		t.Errorf("%d distinct files added, want %d", len(a.adds), writers*commits)
	}
	s := mustSnapshot(t, tbl)
	if s.NumFiles() != writers*commits {
		t.Errorf("snapshot has %d files, want %d", s.NumFiles(), writers*commits)
	}
	for w := 0; w < writers; w++ {
		if v, ok := s.TxnVersion(KafkaAppID("g", "t", int32(w))); !ok || v != int64(10*commits-1) {
			t.Errorf("writer %d watermark = %d, %v; want %d", w, v, ok, 10*commits-1)
		}
	}
}

func TestConcurrentAppendsMem(t *testing.T) {
	concurrentAppends(t, mem.New(), 8, 5)
}

func TestConcurrentAppendsLocal(t *testing.T) {
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	concurrentAppends(t, st, 8, 5)
}

func TestConcurrentAppendsGoFakeS3(t *testing.T) {
	concurrentAppends(t, newS3Store(t, s3test.StartGoFakeS3(t)), 8, 3)
}

func TestConcurrentAppendsMinIO(t *testing.T) {
	concurrentAppends(t, newS3Store(t, s3test.StartMinIO(t)), 8, 3)
}

func newS3Store(t *testing.T, cfg s3.Config) storage.Store {
	t.Helper()
	cfg.Prefix = "tables/events"
	st, err := s3.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// childEnv makes the test binary act as one writer process.
const childEnv = "COMMITLOG_TEST_CHILD"

// TestMultiProcessAppends runs two OS processes (this test binary,
// re-executed) appending to one table on local disk.
func TestMultiProcessAppends(t *testing.T) {
	if spec := os.Getenv(childEnv); spec != "" {
		// Child: "<dir>:<writer>:<commits>".
		var dir string
		var w, n int
		if _, err := fmt.Sscanf(spec, "%d:%d:", &w, &n); err != nil {
			t.Fatalf("bad %s=%q", childEnv, spec)
		}
		dir = spec[len(fmt.Sprintf("%d:%d:", w, n)):]
		st, err := local.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := Open(st, Config{RetryBackoff: 2_000_000, MaxAttempts: 500})
		if err != nil {
			t.Fatal(err)
		}
		if err := appendLoop(context.Background(), tbl, "p"+strconv.Itoa(w), int32(w), n); err != nil {
			t.Fatal(err)
		}
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := Open(st, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Create(context.Background(), testSpec()); err != nil {
		t.Fatal(err)
	}
	const procs, commits = 2, 15
	var cmds []*exec.Cmd
	outs := make([]*syncBuf, procs)
	for p := 0; p < procs; p++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcessAppends$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%d:%s", childEnv, p, commits, dir))
		outs[p] = &syncBuf{}
		cmd.Stdout, cmd.Stderr = outs[p], outs[p]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for p, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("writer process %d: %v\n%s", p, err, outs[p].String())
		}
	}
	checkAppends(t, tbl, st, procs, commits)
}

type syncBuf struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// TestSameAppIDFenced: two writers consume the same Kafka partition (a
// zombie after a rebalance). Each commits offset ranges from 0 on; whichever
// loses a race to the other's txn is fenced and stops. No offset is
// committed twice.
func TestSameAppIDFenced(t *testing.T) {
	t.Run("mem", func(t *testing.T) { sameAppIDFenced(t, mem.New()) })
	t.Run("local", func(t *testing.T) {
		st, err := local.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		sameAppIDFenced(t, st)
	})
	t.Run("minio", func(t *testing.T) { sameAppIDFenced(t, newS3Store(t, s3test.StartMinIO(t))) })
}

func sameAppIDFenced(t *testing.T, st Store) {
	ctx := context.Background()
	tbl, err := Open(st, Config{RetryBackoff: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Create(ctx, testSpec()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	fenced := make([]bool, 2)
	committed := make([]int, 2)
	start := make(chan struct{})
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			<-start
			snap, err := tbl.Snapshot(ctx) // read once: the zombie never re-reads
			if err != nil {
				t.Error(err)
				return
			}
			for i := 0; i < 20; i++ {
				tx := tbl.NewTransaction(snap)
				tx.Add(testAdd(fmt.Sprintf("w%d-%d.parquet", w, i)))
				tx.AddKafkaOffsets("g", OffsetRange{Topic: "t", Partition: 0, First: int64(10 * i), Last: int64(10*i + 9)})
				res, err := tx.Commit(ctx)
				if errors.Is(err, ErrFenced) {
					fenced[w] = true
					return
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				committed[w]++
				if snap, err = tbl.SnapshotAt(ctx, res.Version); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	close(start)
	wg.Wait()
	if !fenced[0] && !fenced[1] {
		t.Fatalf("neither writer was fenced (committed %v)", committed)
	}
	a := auditLog(t, st) // checks that no offset range overlaps
	var total int
	for _, rs := range a.offsets {
		total += len(rs)
	}
	if total != committed[0]+committed[1] {
		t.Errorf("log holds %d offset ranges, writers committed %d", total, committed[0]+committed[1])
	}
}

// TestConcurrentCreate: of two writers creating the same table, one wins
// and the other gets ErrTableExists.
func TestConcurrentCreate(t *testing.T) {
	st := mem.New()
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tbl, err := Open(st, Config{})
			if err != nil {
				errs[i] = err
				return
			}
			_, errs[i] = tbl.Create(context.Background(), testSpec())
		}(i)
	}
	wg.Wait()
	ok, exists := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrTableExists):
			exists++
		default:
			t.Errorf("Create: %v", err)
		}
	}
	if ok != 1 || exists != 1 {
		t.Errorf("%d created, %d told it exists; want 1 and 1", ok, exists)
	}
}
