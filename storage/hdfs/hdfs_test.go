package hdfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/hdfs"
	"github.com/protolake/protolake/storage/storagetest"
)

// EnvHDFS names the variable that points the tests at a running HDFS.
const EnvHDFS = "PLTEST_HDFS_URL"

var storeCounter atomic.Int64

// hdfsURL returns PLTEST_HDFS_URL or skips the test.
func hdfsURL(t *testing.T) string {
	t.Helper()
	raw := os.Getenv(EnvHDFS)
	if raw == "" {
		t.Skipf("HDFS acceptance suite needs a running HDFS: set %s=hdfs://127.0.0.1:PORT/path (make interop starts one)", EnvHDFS)
	}
	return raw
}

// newStore returns a store in a fresh directory below PLTEST_HDFS_URL, or
// skips the test.
func newStore(t *testing.T) *hdfs.Store {
	t.Helper()
	raw := hdfsURL(t)
	cfg, err := hdfs.ParseURL(raw)
	if err != nil {
		t.Fatalf("%s: %v", EnvHDFS, err)
	}
	cfg.Root = fmt.Sprintf("%s/protolake-test-%d-%d", strings.TrimSuffix(cfg.Root, "/"), os.Getpid(), storeCounter.Add(1))
	s, err := hdfs.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("connect to %s: %v", raw, err)
	}
	t.Cleanup(func() {
		if err := hdfs.RemoveRoot(s); err != nil {
			t.Errorf("remove test directory %s: %v", cfg.Root, err)
		}
		s.Close()
	})
	return s
}

func TestAcceptance(t *testing.T) {
	hdfsURL(t)
	storagetest.Run(t, func(t *testing.T) storage.Store { return newStore(t) })
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		raw     string
		want    hdfs.Config
		wantErr string
	}{
		{raw: "hdfs://nn:9000/lake/t1", want: hdfs.Config{Addresses: []string{"nn:9000"}, Root: "/lake/t1"}},
		{raw: "hdfs://nn/lake/t1/", want: hdfs.Config{Addresses: []string{"nn:8020"}, Root: "/lake/t1"}},
		{raw: "hdfs://nn1:8020,nn2:8020/x?user=etl&datanode_hostname=true", want: hdfs.Config{Addresses: []string{"nn1:8020", "nn2:8020"}, Root: "/x", User: "etl", UseDatanodeHostname: true}},
		{raw: "hdfs://127.0.0.1:8020", want: hdfs.Config{Addresses: []string{"127.0.0.1:8020"}, Root: "/"}},
		{raw: "hdfs:///lake", wantErr: "no namenode host"},
		{raw: "s3://b/p", wantErr: "want hdfs"},
		{raw: "hdfs://nn/x?replication=3", wantErr: `unknown parameter "replication"`},
		{raw: "hdfs://nn/x?datanode_hostname=maybe", wantErr: "not a boolean"},
	}
	for _, tt := range tests {
		got, err := hdfs.ParseURL(tt.raw)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseURL(%q) error = %v, want it to contain %q", tt.raw, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tt.raw, err)
			continue
		}
		if !slices.Equal(got.Addresses, tt.want.Addresses) || got.Root != tt.want.Root || got.User != tt.want.User || got.UseDatanodeHostname != tt.want.UseDatanodeHostname {
			t.Errorf("ParseURL(%q) = %+v, want %+v", tt.raw, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		cfg     hdfs.Config
		wantErr string
	}{
		{hdfs.Config{Addresses: []string{"nn:8020"}, Root: "/a"}, ""},
		{hdfs.Config{Root: "/a"}, "namenode address is required"},
		{hdfs.Config{Addresses: []string{"nn"}, Root: "/a"}, "want host:port"},
		{hdfs.Config{Addresses: []string{"nn:8020"}, Root: "a"}, "absolute"},
		{hdfs.Config{Addresses: []string{"nn:8020"}, Root: "/a/../b"}, "not a clean path"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("Validate(%+v) = %v", tt.cfg, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Validate(%+v) = %v, want it to contain %q", tt.cfg, err, tt.wantErr)
		}
	}
}

// faultyDialer makes the next `lossy` connections to the namenode lossy and
// then connects normally. A lossy connection forwards the request and drops
// the answer (the call happens, the client never hears), or, with
// dropRequest, swallows the request.
type faultyDialer struct {
	dropRequest bool
	lossy       atomic.Int64
	used        atomic.Int64
}

func (d *faultyDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if d.lossy.Add(-1) < 0 {
		return conn, nil
	}
	d.used.Add(1)
	return &lossyConn{Conn: conn, dropRequest: d.dropRequest}, nil
}

type lossyConn struct {
	net.Conn
	dropRequest bool
}

func (c *lossyConn) Write(p []byte) (int, error) {
	if c.dropRequest {
		return len(p), nil // swallowed: the namenode never sees it
	}
	return c.Conn.Write(p)
}

func (c *lossyConn) Read(p []byte) (int, error) {
	if c.dropRequest {
		return 0, io.ErrUnexpectedEOF
	}
	// Wait for the namenode's answer, so the call has been processed,
	// then pretend the connection died before it arrived.
	buf := make([]byte, 1)
	if _, err := c.Conn.Read(buf); err != nil {
		return 0, err
	}
	c.Conn.Close()
	return 0, io.ErrUnexpectedEOF
}

func get(t *testing.T, s storage.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The rename happened but its answer was lost: the store finds its temporary
// file gone and reports success.
func TestLostRenameAnswerResolved(t *testing.T) {
	s := newStore(t)
	d := &faultyDialer{}
	d.lossy.Store(1) // the rename; the resolving delete gets through
	hdfs.SetRPCDial(s, d.dial)
	ctx := t.Context()
	if err := s.PutIfAbsent(ctx, "_delta_log/00000000000000000000.json", strings.NewReader("won")); err != nil {
		t.Fatalf("PutIfAbsent with a lost answer = %v, want nil (the rename happened)", err)
	}
	if got := get(t, s, "_delta_log/00000000000000000000.json"); string(got) != "won" {
		t.Fatalf("content = %q", got)
	}
	// A loser whose answer (FileAlreadyExists) is lost finds its temporary
	// file still there: a definite failure, not a win and not ambiguous.
	d.lossy.Store(1)
	err := s.PutIfAbsent(ctx, "_delta_log/00000000000000000000.json", strings.NewReader("lost"))
	if err == nil || errors.Is(err, storage.ErrAmbiguous) {
		t.Fatalf("losing PutIfAbsent with a lost answer = %v, want a definite failure", err)
	}
	if got := get(t, s, "_delta_log/00000000000000000000.json"); string(got) != "won" {
		t.Fatalf("content after the loser = %q, want the winner's", got)
	}
	if d.used.Load() != 2 {
		t.Fatalf("%d lossy connections were used, want 2: the test did not exercise the fault", d.used.Load())
	}
	assertNoTempFiles(t, s)
}

// The request never reached the namenode: the temporary file is still there,
// so the store knows nothing happened and says so without ambiguity.
func TestDroppedRenameRequestResolved(t *testing.T) {
	s := newStore(t)
	d := &faultyDialer{dropRequest: true}
	d.lossy.Store(1)
	hdfs.SetRPCDial(s, d.dial)
	ctx := t.Context()
	err := s.PutIfAbsent(ctx, "k", strings.NewReader("x"))
	if err == nil || errors.Is(err, storage.ErrAmbiguous) || errors.Is(err, storage.ErrExist) {
		t.Fatalf("PutIfAbsent with a dropped request = %v, want a definite failure", err)
	}
	if d.used.Load() != 1 {
		t.Fatalf("%d lossy connections were used, want 1", d.used.Load())
	}
	if rc, err := s.Get(ctx, "k"); !errors.Is(err, storage.ErrNotExist) {
		if err == nil {
			rc.Close()
		}
		t.Fatalf("Get after a dropped rename = %v, want ErrNotExist", err)
	}
	if err := s.PutIfAbsent(ctx, "k", strings.NewReader("y")); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, "k"); !bytes.Equal(got, []byte("y")) {
		t.Fatalf("content = %q", got)
	}
	assertNoTempFiles(t, s)
}

// When the namenode cannot be reached to settle the outcome either, the
// result is ErrAmbiguous, and the key is still consistent afterwards.
func TestUnresolvableIsAmbiguous(t *testing.T) {
	s := newStore(t)
	d := &faultyDialer{}
	d.lossy.Store(2) // the rename's answer and the delete's answer are lost
	hdfs.SetRPCDial(s, d.dial)
	ctx := t.Context()
	err := s.PutIfAbsent(ctx, "k", strings.NewReader("x"))
	if !errors.Is(err, storage.ErrAmbiguous) {
		t.Fatalf("PutIfAbsent with answers lost twice = %v, want ErrAmbiguous", err)
	}
	// The rename went through (only its answer was lost).
	if got := get(t, s, "k"); string(got) != "x" {
		t.Fatalf("content = %q, want x", got)
	}
}

func assertNoTempFiles(t *testing.T, s *hdfs.Store) {
	t.Helper()
	objs, err := s.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if strings.Contains(o.Key, ".protolake-tmp-") {
			t.Errorf("temporary file listed: %s", o.Key)
		}
	}
}

// The namenode's answers are outside input: malformed ones are errors, never
// panics.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 6, 4, 8, 1, 16, 0, 0})
	f.Add([]byte{0, 0, 0, 9, 6, 8, 1, 16, 1, 34, 1, 'x', 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = hdfs.ReadResponse(b)
	})
}

// TestListPageBatches: ListPage sends the namenode's getListing with
// startAfter, so a page costs one call (one connection of the store's own
// RPC client) of at most the namenode's batch (dfs.ls.limit, 1,000), from
// anywhere in the directory; a page longer than a batch continues after it.
func TestListPageBatches(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	var keys []string
	for i := range 1050 {
		keys = append(keys, fmt.Sprintf("_delta_log/%020d.json", i))
	}
	sem := make(chan struct{}, 8)
	errs := make(chan error, len(keys))
	for _, k := range keys {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- s.Put(ctx, k, strings.NewReader("x"))
		}()
	}
	for range keys {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var dials atomic.Int64
	var d net.Dialer
	hdfs.SetRPCDial(s, func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, addr)
	})
	for _, tt := range []struct {
		after     string
		limit     int
		want      []string
		wantCalls int64
	}{
		{"", 10, keys[:10], 1},
		{keys[499], 20, keys[500:520], 1},
		{keys[1039], 100, keys[1040:], 1},
		{"", 1050, keys, 2},
		{"_delta_log/", 3, keys[:3], 1},
	} {
		dials.Store(0)
		objs, err := s.ListPage(ctx, "_delta_log/0", tt.after, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range objs {
			got = append(got, o.Key)
		}
		if !slices.Equal(got, tt.want) || dials.Load() != tt.wantCalls {
			t.Errorf("ListPage(after %q, %d): %d keys (%q...) in %d getListing calls, want %d keys in %d", tt.after, tt.limit, len(got), got[:min(len(got), 2)], dials.Load(), len(tt.want), tt.wantCalls)
		}
	}
}
