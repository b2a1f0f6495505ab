package open_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/hdfs"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/storage/mem"
	"github.com/protolake/protolake/storage/open"
	"github.com/protolake/protolake/storage/s3"
	"github.com/protolake/protolake/storage/s3/s3test"
)

func roundTrip(t *testing.T, s storage.Store, key, content string) {
	t.Helper()
	ctx := context.Background()
	if err := s.PutIfAbsent(ctx, key, strings.NewReader(content)); err != nil {
		t.Fatalf("PutIfAbsent(%q): %v", key, err)
	}
	rc, err := s.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil || string(b) != content {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, b, err, content)
	}
}

func TestLocalForms(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct {
		raw     string
		wantDir string // where the table's files must land
	}{
		{filepath.Join(dir, "abs"), filepath.Join(dir, "abs")},
		{"rel/table", filepath.Join(dir, "rel", "table")},
		{"./dot", filepath.Join(dir, "dot")},
		{"file://" + filepath.Join(dir, "url"), filepath.Join(dir, "url")},
		{"file://localhost" + filepath.Join(dir, "localhost"), filepath.Join(dir, "localhost")},
		{"file://" + filepath.Join(dir, "with space"), filepath.Join(dir, "with space")},
		{"FILE://" + filepath.Join(dir, "upper"), filepath.Join(dir, "upper")},
	}
	for _, tt := range tests {
		s, err := open.Open(t.Context(), tt.raw)
		if err != nil {
			t.Errorf("Open(%q): %v", tt.raw, err)
			continue
		}
		if _, ok := s.(*local.Store); !ok {
			t.Errorf("Open(%q) = %T, want *local.Store", tt.raw, s)
			continue
		}
		roundTrip(t, s, "_delta_log/00000000000000000000.json", tt.raw)
		got, err := os.ReadFile(filepath.Join(tt.wantDir, "_delta_log", "00000000000000000000.json"))
		if err != nil || string(got) != tt.raw {
			t.Errorf("Open(%q): commit on disk at %s = %q, %v", tt.raw, tt.wantDir, got, err)
		}
	}
}

func TestMem(t *testing.T) {
	var o open.Opener
	a1, err := o.Open(t.Context(), "mem://a")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a1.(*mem.Store); !ok {
		t.Fatalf("Open(mem://a) = %T, want *mem.Store", a1)
	}
	roundTrip(t, a1, "k", "v")
	a2, _ := o.Open(t.Context(), "mem://a/")
	b, _ := o.Open(t.Context(), "mem://b")
	if objs, _ := a2.List(t.Context(), ""); len(objs) != 1 {
		t.Errorf("second Open(mem://a) through the same Opener sees %v, want the first one's object", objs)
	}
	if objs, _ := b.List(t.Context(), ""); len(objs) != 0 {
		t.Errorf("Open(mem://b) sees %v, want an empty store", objs)
	}
	fresh, _ := open.Open(t.Context(), "mem://a")
	if objs, _ := fresh.List(t.Context(), ""); len(objs) != 0 {
		t.Errorf("package-level Open(mem://a) sees %v, want a fresh store", objs)
	}
}

func TestS3(t *testing.T) {
	cfg := s3test.StartGoFakeS3(t)
	for _, scheme := range []string{"s3", "s3a"} {
		raw := scheme + "://" + cfg.Bucket + "/tables/" + scheme + "?endpoint=" + cfg.Endpoint + "&path_style=true&region=us-east-1"
		o := open.Opener{ConfigureS3: func(c *s3.Config) {
			c.AccessKeyID, c.SecretAccessKey = cfg.AccessKeyID, cfg.SecretAccessKey
		}}
		s, err := o.Open(t.Context(), raw)
		if err != nil {
			t.Fatalf("Open(%q): %v", raw, err)
		}
		roundTrip(t, s, "_delta_log/00000000000000000000.json", scheme)
	}
	// The stores were rooted at their prefixes.
	root, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := root.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	if want := "tables/s3/_delta_log/00000000000000000000.json,tables/s3a/_delta_log/00000000000000000000.json"; strings.Join(keys, ",") != want {
		t.Fatalf("bucket keys = %q, want %s", keys, want)
	}
}

func TestHDFS(t *testing.T) {
	raw := os.Getenv("PLTEST_HDFS_URL")
	if raw == "" {
		t.Skip("needs a running HDFS: set PLTEST_HDFS_URL=hdfs://127.0.0.1:PORT/path (make interop starts one)")
	}
	s, err := open.Open(t.Context(), strings.TrimSuffix(raw, "/")+"/open-test")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close(s)
	if _, ok := s.(*hdfs.Store); !ok {
		t.Fatalf("Open(%q) = %T, want *hdfs.Store", raw, s)
	}
	_ = s.Delete(t.Context(), "k")
	roundTrip(t, s, "k", "hdfs")
	if err := s.Delete(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		raw  string
		want []string // substrings of the error
	}{
		{"", []string{"empty URL", "s3://"}},
		{"gs://bucket/t", []string{`unsupported scheme "gs"`, "file://", "mem://", "s3://", "hdfs://", "plain path"}},
		{"abfss://c@acct.dfs.core.windows.net/t", []string{`unsupported scheme "abfss"`}},
		{"file://relative/path", []string{`open file://relative/path: a file:// URL takes an absolute path (file:///abs/path), and "relative" would be read as a host; for a path relative to the working directory write it without file:// (relative/path)`}},
		{"file:///x?y=1", []string{"no parameters"}},
		{"s3:///prefix", []string{"bucket is required"}},
		{"s3://b/p?color=red", []string{`unknown parameter "color"`}},
		{"s3://user:secret@bucket/p", []string{"credentials in the URL"}},
		{"hdfs:///p", []string{"no namenode host"}},
	}
	for _, tt := range tests {
		_, err := open.Open(context.Background(), tt.raw)
		if err == nil {
			t.Errorf("Open(%q) succeeded, want an error", tt.raw)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%q) error %q does not contain %q", tt.raw, err, w)
			}
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) error %q leaks the password", tt.raw, err)
		}
	}
}

func TestCloseNonCloser(t *testing.T) {
	if err := open.Close(mem.New()); err != nil {
		t.Fatal(err)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"/local/path", "/local/path"},
		{"rel/a?b", "rel/a?b"},
		{"file:///tmp/t", "file:///tmp/t"},
		{"s3://bucket/prefix", "s3://bucket/prefix"},
		{"s3://AKID:SECRET@bucket/t", "s3://xxxxx@bucket/t"},
		{"s3a://SECRET@bucket", "s3a://xxxxx@bucket"},
		{"s3://b/t?region=eu-west-1&path_style=true&profile=p&part_size=5242880", "s3://b/t?region=eu-west-1&path_style=true&profile=p&part_size=5242880"},
		{"s3://b/t?secret_key=SECRET&region=eu-west-1", "s3://b/t?secret_key=xxxxx&region=eu-west-1"},
		{"s3://b/t?anything=SECRET", "s3://b/t?anything=xxxxx"},
		{"s3://b/t?endpoint=http://minio:SECRET@127.0.0.1:9000", "s3://b/t?endpoint=http%3A%2F%2Fxxxxx%40127.0.0.1%3A9000"},
		{"s3://b/t?endpoint=http%3A%2F%2Fu%3ASECRET%40h%3A9000%2F%3Ftoken%3DSECRET", "s3://b/t?endpoint=http%3A%2F%2Fxxxxx%40h%3A9000%2F%3Ftoken%3Dxxxxx"},
		{"s3://b/t?endpoint=http://127.0.0.1:9000&path_style=true", "s3://b/t?endpoint=http%3A%2F%2F127.0.0.1%3A9000&path_style=true"},
		{"hdfs://nn:8020/t?user=alice&datanode_hostname=true", "hdfs://nn:8020/t?user=alice&datanode_hostname=true"},
		{"hdfs://alice:SECRET@nn/t#frag", "hdfs://xxxxx@nn/t#frag"},
		{"s3://AK:SE%zzCRET@b/t?x=%zz", "s3://xxxxx@b/t?x=xxxxx"}, // does not parse: redacted by shape
		{"s3://b/t?flag&x=", "s3://b/t?flag&x="},
	}
	for _, tt := range tests {
		if got := open.Redact(tt.raw); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

// Credentials in a URL are refused with a pointer to the AWS chain, and no
// error of Open shows a secret.
func TestCredentialsRefused(t *testing.T) {
	tests := []struct {
		raw  string
		want string // substring; "" = not a credentials error, but still no secret
	}{
		{"s3://AKID:hunter2X@bucket/t", "credentials in the URL (user information (user:password@)) are refused"},
		{"s3://hunter2X@bucket/t", "user information"},
		{"hdfs://alice:hunter2X@nn:8020/t", "user information"},
		{"s3://bucket/t?aws_secret_access_key=hunter2X", `the parameter "aws_secret_access_key"`},
		{"s3://bucket/t?access_key=hunter2X", `the parameter "access_key"`},
		{"s3://bucket/t?X-Amz-Security-Token=hunter2X", `the parameter "X-Amz-Security-Token"`},
		{"s3://bucket/t?endpoint=http://minio:hunter2X@127.0.0.1:9", "user information in the endpoint"},
		{"s3://bucket/t?unknown=hunter2X", `unknown parameter "unknown"`},
		{"hdfs://nn:8020/t?replication=hunter2X", `unknown parameter "replication"`},
		{"file://hunter2X:x@host/t", "user information"},
		{"nope://u:hunter2X@h/t", "user information"},
		{"s3://bucket/t?endpoint=ftp%3A%2F%2Fx%2F%3Ftoken%3Dhunter2X", "endpoint must be an http"},
	}
	for _, tt := range tests {
		_, err := open.Open(t.Context(), tt.raw)
		if err == nil {
			t.Errorf("Open(%q) succeeded", tt.raw)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "hunter2X") {
			t.Errorf("Open(%q) error shows the secret: %s", tt.raw, msg)
		}
		if tt.want != "" && !strings.Contains(msg, tt.want) {
			t.Errorf("Open(%q) error = %s, want it to contain %q", tt.raw, msg, tt.want)
		}
		if strings.Contains(tt.want, "refused") || strings.Contains(tt.want, "user information") || strings.Contains(tt.want, "the parameter") {
			if !strings.Contains(msg, "standard AWS credential chain") {
				t.Errorf("Open(%q) error does not point to the AWS credential chain: %s", tt.raw, msg)
			}
		}
	}
}

// TestWithS3: a table's s3 options override the URL's, and the opener's
// own ConfigureS3 still runs after them.
func TestWithS3(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	var got s3.Config
	base := &open.Opener{ConfigureS3: func(c *s3.Config) { got = *c }}
	if base.WithS3(open.S3Options{}) != base {
		t.Error("zero options: want the same opener")
	}
	op := base.WithS3(open.S3Options{Region: "eu-west-3", Endpoint: "http://127.0.0.1:9", UsePathStyle: true})
	s, err := op.Open(context.Background(), "s3://bucket/lake/t?region=us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	open.Close(s)
	if got.Region != "eu-west-3" || got.Endpoint != "http://127.0.0.1:9" || !got.UsePathStyle || got.Bucket != "bucket" {
		t.Errorf("config = %+v", got)
	}
	if _, err := base.WithS3(open.S3Options{Region: "x"}).Open(context.Background(), "s3://bucket/p"); err != nil {
		t.Fatal(err)
	}
	if got.Region != "x" || got.UsePathStyle {
		t.Errorf("region only: %+v", got)
	}
}
