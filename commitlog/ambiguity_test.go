package commitlog

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/faulty"
	"github.com/protolake/protolake/storage/mem"
)

// callOutcome is what the fault script does to one store call on a commit
// key (a Get or PutIfAbsent of _delta_log/<v>.json).
type callOutcome int

const (
	pass      callOutcome = iota // the call goes through
	failPlain                    // fails before reaching the store
	failAmbig                    // fails before reaching the store, reported as ambiguous
	failAfter                    // reaches the store, then fails (a write reported as ambiguous)
	numOutcomes
)

func (o callOutcome) String() string {
	return [...]string{"pass", "plain", "ambig", "after"}[o]
}

// scriptFaults injects outcomes[i] on the i-th call (1-based i+1) of Get or
// PutIfAbsent on a commit key.
func scriptFaults(fs *faulty.Store, outcomes []callOutcome) {
	for i, o := range outcomes {
		f := faulty.Fault{Nth: i + 1, Match: func(c faulty.Call) bool {
			return (c.Op == faulty.OpGet || c.Op == faulty.OpPutIfAbsent) && isCommitKey(c)
		}}
		switch o {
		case pass:
			continue
		case failAmbig:
			f.Err = storage.ErrAmbiguous
		case failAfter:
			f.After = true
		}
		fs.Inject(f)
	}
}

// versionsWithTxnID returns the versions whose commitInfo carries txnID,
// read from the store under the fault wrapper.
func versionsWithTxnID(t *testing.T, st Store, txnID string) []int64 {
	t.Helper()
	ctx := context.Background()
	l, err := listLog(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for v := range l.commits {
		actions, err := readCommit(ctx, st, v)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range actions {
			if a.CommitInfo != nil && a.CommitInfo.TxnID == txnID {
				out = append(out, v)
			}
		}
	}
	return out
}

// matrixTable is an empty table on a fault-injecting memory store, retrying
// at most 3 times without backoff.
func matrixTable(t *testing.T) (*Table, *faulty.Store, *mem.Store) {
	t.Helper()
	inner := mem.New()
	fs := faulty.New(inner)
	tbl, err := Open(fs, Config{RetryBackoff: 1, MaxRetryBackoff: 1, MaxAttempts: 3, DisableCheckpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	return tbl, fs, inner
}

// allScripts returns every sequence of n call outcomes.
func allScripts(n int) [][]callOutcome {
	out := [][]callOutcome{{}}
	for i := 0; i < n; i++ {
		var next [][]callOutcome
		for _, s := range out {
			for o := callOutcome(0); o < numOutcomes; o++ {
				next = append(next, append(append([]callOutcome{}, s...), o))
			}
		}
		out = next
	}
	return out
}

// TestCommitOutcomeMatrix runs one commit under every combination of
// outcomes of its first four log calls (writes and read-backs: passing,
// failing plainly, failing ambiguously before the store, failing after the
// store acted), with and without a concurrent winner at the version it
// tries first, and checks the contract callers rely on to decide whether
// they may delete the files they staged:
//
//   - success: the commit is in the log exactly once, at the version
//     reported;
//   - an error other than *AmbiguousCommitError: the commit is not in the
//     log (it provably did not land);
//   - *AmbiguousCommitError: at most once, and FindCommit resolves it.
func TestCommitOutcomeMatrix(t *testing.T) {
	ctx := context.Background()
	for _, race := range []bool{false, true} {
		for _, script := range allScripts(4) {
			name := fmt.Sprintf("race=%v/%v", race, script)
			tbl, fs, inner := matrixTable(t)
			if _, err := tbl.Create(ctx, testSpec()); err != nil {
				t.Fatal(err)
			}
			snap := mustSnapshot(t, tbl)
			if race {
				other, _ := Open(inner, Config{DisableCheckpoints: true})
				tx := other.NewTransaction(snap)
				tx.Add(testAdd("other"))
				if _, err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			}
			scriptFaults(fs, script)
			tx := tbl.NewTransaction(snap)
			tx.Add(testAdd("ours"))
			res, err := tx.Commit(ctx)
			fs.Reset()
			got := versionsWithTxnID(t, inner, tx.TxnID())
			var amb *AmbiguousCommitError
			switch {
			case err == nil:
				if len(got) != 1 || got[0] != res.Version {
					t.Errorf("%s: success at version %d, but the commit is at versions %v", name, res.Version, got)
				}
			case errors.As(err, &amb):
				if len(got) > 1 {
					t.Errorf("%s: ambiguous, and the commit landed %d times", name, len(got))
				}
				v, ferr := tbl.FindCommit(ctx, tx.TxnID(), snap.Version()+1)
				want := int64(-1)
				if len(got) == 1 {
					want = got[0]
				}
				if ferr != nil || v != want {
					t.Errorf("%s: FindCommit = %d, %v; want %d", name, v, ferr, want)
				}
				if amb.TxnID != tx.TxnID() {
					t.Errorf("%s: ambiguous error names txnId %s, want %s", name, amb.TxnID, tx.TxnID())
				}
			default:
				if len(got) != 0 {
					t.Errorf("%s: plain error %q, but the commit landed at %v: a caller would delete its files", name, err, got)
				}
				if errors.Is(err, ErrAmbiguousCommit) {
					t.Errorf("%s: errors.Is(ErrAmbiguousCommit) without *AmbiguousCommitError", name)
				}
			}
		}
	}
}

// TestCreateOutcomeMatrix is TestCommitOutcomeMatrix for Create (version
// 0), with and without another writer having created the table first.
func TestCreateOutcomeMatrix(t *testing.T) {
	ctx := context.Background()
	for _, race := range []bool{false, true} {
		for _, script := range allScripts(4) {
			name := fmt.Sprintf("race=%v/%v", race, script)
			tbl, fs, inner := matrixTable(t)
			// Let the listing Create does first pass, then race.
			var otherID string
			fs.OnBefore(func(ctx context.Context, c faulty.Call) error {
				if race && c.Op == faulty.OpPutIfAbsent && isCommitKey(c) && otherID == "" {
					other, _ := Open(inner, Config{})
					s, err := other.Create(ctx, testSpec())
					if err != nil {
						t.Errorf("other writer: %v", err)
						return nil
					}
					otherID = s.Metadata().ID
				}
				return nil
			})
			scriptFaults(fs, script)
			spec := testSpec()
			spec.ID = "ours"
			snap, err := tbl.Create(ctx, spec)
			fs.Reset()
			actions, rerr := readCommit(ctx, inner, 0)
			landed := rerr == nil && len(actions) > 0 && metadataID(actions) == "ours"
			switch {
			case err == nil:
				if !landed || snap.Metadata().ID != "ours" {
					t.Errorf("%s: Create succeeded but version 0 is not ours", name)
				}
			case errors.Is(err, ErrAmbiguousCommit):
			default:
				if landed {
					t.Errorf("%s: plain error %q, but our version 0 landed", name, err)
				}
			}
		}
	}
}

func metadataID(actions []Action) string {
	for _, a := range actions {
		if a.Metadata != nil {
			return a.Metadata.ID
		}
	}
	return ""
}
