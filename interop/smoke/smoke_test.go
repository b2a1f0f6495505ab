//go:build interop

// Package smoke proves, from Go, that the interop tier's servers are up and
// speak to the clients protolake uses: github.com/colinmarc/hdfs/v2 against
// the MiniDFSCluster, WebHDFS over HTTP, and franz-go against the real Kafka
// broker. It is built only with -tags interop; `make interop` runs it with the
// environment written by interop/start.sh (see interop/env.sh for the names).
package smoke

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/colinmarc/hdfs/v2"
	"github.com/protolake/protolake/internal/bigtest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func hdfsClient(t *testing.T) *hdfs.Client {
	t.Helper()
	c, err := hdfs.NewClient(hdfs.ClientOptions{
		Addresses: []string{bigtest.InteropEnv(t, "PLTEST_INTEROP_HDFS_NAMENODE")},
		User:      "protolake",
	})
	if err != nil {
		t.Fatalf("hdfs client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testDir(t *testing.T, c *hdfs.Client) string {
	t.Helper()
	dir := fmt.Sprintf("/smoke/%s-%d", t.Name(), time.Now().UnixNano())
	if err := c.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("mkdir %s: %v", dir, err)
	}
	t.Cleanup(func() { c.RemoveAll(dir) })
	return dir
}

func writeFile(t *testing.T, c *hdfs.Client, name string, data []byte) {
	t.Helper()
	w, err := c.Create(name)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	// Close can answer ErrReplicating while the datanode has not yet reported
	// the block to the namenode; the client's documented answer is to call
	// Close again (the Java client retries with backoff). storage/hdfs must
	// do the same before it renames a temp file into place.
	for i, backoff := 0, 50*time.Millisecond; ; i, backoff = i+1, backoff*2 {
		err = w.Close()
		if err == nil {
			return
		}
		if !hdfs.IsErrReplicating(err) || i == 8 {
			t.Fatalf("close %s (attempt %d): %v", name, i+1, err)
		}
		time.Sleep(backoff)
	}
}

func readFile(t *testing.T, c *hdfs.Client, name string) []byte {
	t.Helper()
	got, err := c.ReadFile(name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return got
}

// TestHDFSWriteReadList writes through the datanode (which must advertise
// 127.0.0.1), reads back and lists.
func TestHDFSWriteReadList(t *testing.T) {
	c := hdfsClient(t)
	dir := testDir(t, c)
	want := bytes.Repeat([]byte("protolake\n"), 200_000) // 2 MB: more than one packet
	writeFile(t, c, dir+"/a.bin", want)
	writeFile(t, c, dir+"/b.bin", []byte("b"))
	if got := readFile(t, c, dir+"/a.bin"); !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, want %d equal bytes", len(got), len(want))
	}
	infos, err := c.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fi := range infos {
		names = append(names, fmt.Sprintf("%s:%d", fi.Name(), fi.Size()))
	}
	if got, want := strings.Join(names, ","), fmt.Sprintf("a.bin:%d,b.bin:1", len(want)); got != want {
		t.Fatalf("listing = %s, want %s", got, want)
	}
	// Create refuses an existing name (the namenode's create without overwrite).
	if _, err := c.Create(dir + "/b.bin"); !os.IsExist(err) {
		t.Fatalf("create over an existing file: err = %v, want an os.ErrExist", err)
	}
}

// TestHDFSClientRenameOverwrites records why the Go client's Rename cannot be
// used for commits: it replaces an existing destination.
func TestHDFSClientRenameOverwrites(t *testing.T) {
	c := hdfsClient(t)
	dir := testDir(t, c)
	writeFile(t, c, dir+"/src", []byte("new"))
	writeFile(t, c, dir+"/dst", []byte("old"))
	if err := c.Rename(dir+"/src", dir+"/dst"); err != nil {
		t.Fatalf("rename: %v", err)
	}
	if got := string(readFile(t, c, dir+"/dst")); got != "new" {
		t.Fatalf("after colinmarc Rename onto an existing file dst = %q; the client no longer overwrites: storage/hdfs (doc.go, PutIfAbsent) may now use it", got)
	}
}

type webhdfs struct {
	t    *testing.T
	base string
}

func (w webhdfs) do(method, path, op string, params url.Values, body io.Reader) (int, []byte) {
	w.t.Helper()
	if params == nil {
		params = url.Values{}
	}
	params.Set("op", op)
	params.Set("user.name", "protolake")
	req, err := http.NewRequest(method, w.base+"/webhdfs/v1"+path+"?"+params.Encode(), body)
	if err != nil {
		w.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req) // follows the datanode redirect of CREATE/OPEN
	if err != nil {
		w.t.Fatalf("webhdfs %s %s: %v", op, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (w webhdfs) rename(src, dst string) bool {
	w.t.Helper()
	code, b := w.do(http.MethodPut, src, "RENAME", url.Values{"destination": {dst}}, nil)
	var r struct{ Boolean *bool }
	if err := json.Unmarshal(b, &r); code != http.StatusOK || err != nil || r.Boolean == nil {
		w.t.Fatalf("RENAME %s -> %s: HTTP %d %s", src, dst, code, b)
	}
	return *r.Boolean
}

// TestWebHDFSRenameDoesNotOverwrite checks the behaviour storage/hdfs relies
// on for put-if-absent commits: WebHDFS op=RENAME (the namenode's old
// rename) onto an existing file answers false and leaves it unchanged.
func TestWebHDFSRenameDoesNotOverwrite(t *testing.T) {
	c := hdfsClient(t)
	dir := testDir(t, c)
	w := webhdfs{t, bigtest.InteropEnv(t, "PLTEST_INTEROP_WEBHDFS_URL")}

	writeFile(t, c, dir+"/tmp1", []byte("first"))
	writeFile(t, c, dir+"/tmp2", []byte("second"))
	if !w.rename(dir+"/tmp1", dir+"/00.json") {
		t.Fatal("RENAME onto a free name = false, want true")
	}
	if w.rename(dir+"/tmp2", dir+"/00.json") {
		t.Fatal("RENAME onto an existing file = true, want false")
	}
	if got := string(readFile(t, c, dir+"/00.json")); got != "first" {
		t.Fatalf("destination after refused RENAME = %q, want %q", got, "first")
	}
	if got := string(readFile(t, c, dir+"/tmp2")); got != "second" {
		t.Fatalf("source after refused RENAME = %q, want it left in place", got)
	}
	if w.rename(dir+"/missing", dir+"/01.json") {
		t.Fatal("RENAME of a missing source = true, want false")
	}
	// renameoptions=NONE makes WebHDFS call the namenode's rename2 (what
	// storage/hdfs calls over RPC): an existing destination is an error,
	// FileAlreadyExistsException, and both files stay as they were.
	code, b := w.do(http.MethodPut, dir+"/tmp2", "RENAME", url.Values{"destination": {dir + "/00.json"}, "renameoptions": {"NONE"}}, nil)
	if code != http.StatusForbidden || !bytes.Contains(b, []byte("FileAlreadyExistsException")) {
		t.Fatalf("RENAME renameoptions=NONE onto an existing file: HTTP %d %s, want 403 FileAlreadyExistsException", code, b)
	}
	if got := string(readFile(t, c, dir+"/00.json")); got != "first" {
		t.Fatalf("destination after refused rename2 = %q, want %q", got, "first")
	}
	// The old rename onto an existing directory moves the source into it: a
	// commit path must never name a directory.
	if err := c.Mkdir(dir+"/02.json", 0o755); err != nil {
		t.Fatal(err)
	}
	if !w.rename(dir+"/tmp2", dir+"/02.json") {
		t.Fatal("RENAME onto an existing directory = false, want true (moved inside)")
	}
	if got := string(readFile(t, c, dir+"/02.json/tmp2")); got != "second" {
		t.Fatalf("after RENAME onto a directory, dir/tmp2 = %q", got)
	}
	// CREATE with overwrite=false is refused with FileAlreadyExistsException.
	code, b = w.do(http.MethodPut, dir+"/00.json", "CREATE", url.Values{"overwrite": {"false"}}, strings.NewReader("x"))
	if code != http.StatusForbidden || !bytes.Contains(b, []byte("FileAlreadyExistsException")) {
		t.Fatalf("CREATE overwrite=false on an existing file: HTTP %d %s", code, b)
	}
	// A WebHDFS write then a colinmarc read: both paths see the same namespace.
	code, b = w.do(http.MethodPut, dir+"/via-http", "CREATE", url.Values{"overwrite": {"false"}}, strings.NewReader("hello"))
	if code != http.StatusCreated {
		t.Fatalf("CREATE: HTTP %d %s", code, b)
	}
	if got := string(readFile(t, c, dir+"/via-http")); got != "hello" {
		t.Fatalf("read of a WebHDFS-written file = %q", got)
	}
}

// TestKafkaProduceConsume round-trips records through the real broker with
// franz-go, the client ingest uses.
func TestKafkaProduceConsume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	brokers := strings.Split(bigtest.InteropEnv(t, "PLTEST_INTEROP_KAFKA_BROKERS"), ",")
	topic := fmt.Sprintf("smoke-go-%d", time.Now().UnixNano())

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// The broker auto-creates the topic (num.partitions=3 in its config).
	const n = 100
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprintf("v%03d", i))}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll after %d records: %v", len(seen), err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	for i := range n {
		if v := fmt.Sprintf("v%03d", i); !seen[v] {
			t.Errorf("record %s not consumed", v)
		}
	}
}

// TestKafkaKeepsOldRecords checks that the broker never deletes records for
// their age. interop/plgen gives its records fixed Kafka timestamps
// (2026-11-20); with Kafka's default retention (7 days) the broker deleted
// such a topic at its next retention check, every 5 minutes, and a test that
// read it later found it empty (protolake rightly committed nothing then).
// start.sh turns time retention off and checks every second, so a broker
// that would delete them does so while this test waits.
func TestKafkaKeepsOldRecords(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	brokers := strings.Split(bigtest.InteropEnv(t, "PLTEST_INTEROP_KAFKA_BROKERS"), ",")
	topic := fmt.Sprintf("smoke-old-%d", time.Now().UnixNano())
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("describe %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		t.Fatalf("describe %s: %v", topic, err)
	}
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" && c.MaybeValue() != "-1" {
			t.Errorf("retention.ms of a new topic = %s (%s), want -1: records with old timestamps would be deleted", c.MaybeValue(), c.Source)
		}
	}

	const n = 10
	old := time.Now().AddDate(0, 0, -30)
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "old-%d", i), Timestamp: old.Add(time.Duration(i) * time.Millisecond)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second) // log.retention.check.interval.ms=1000: several checks
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatalf("list start offsets of %s: %v", topic, err)
	}
	if o, _ := starts.Lookup(topic, 0); o.Offset != 0 {
		t.Fatalf("start offset of %s = %d after the retention checks, want 0: the broker deleted records for their age", topic, o.Offset)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := 0
	for got < n {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll after %d records: %v", got, err)
		}
		got += fs.NumRecords()
	}
}
