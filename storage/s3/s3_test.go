package s3_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/s3"
	"github.com/protolake/protolake/storage/s3/s3test"
	"github.com/protolake/protolake/storage/storagetest"
)

var prefixCounter atomic.Int64

// servers are the S3 implementations the tests that run on both start.
var servers = []struct {
	name  string
	start func(testing.TB) s3.Config
}{{"gofakes3", s3test.StartGoFakeS3}, {"minio", s3test.StartMinIO}}

// acceptance runs the suite against one server, each subtest under its own
// prefix with the smallest part size, so the suite's large objects take the
// multipart path.
func acceptance(t *testing.T, cfg s3.Config) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		c := cfg
		c.Prefix = fmt.Sprintf("suite-%d/table", prefixCounter.Add(1))
		c.PartSize = s3.MinPartSize
		s, err := s3.New(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { assertNoUploads(t, s) })
		return s
	})
}

// assertNoUploads checks that failed multipart uploads were aborted.
func assertNoUploads(t *testing.T, s *s3.Store) {
	t.Helper()
	out, err := s.Client().ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucketOf(t, s))})
	if err != nil {
		t.Errorf("list multipart uploads: %v", err)
		return
	}
	if len(out.Uploads) > 0 {
		var keys []string
		for _, u := range out.Uploads {
			keys = append(keys, aws.ToString(u.Key))
		}
		t.Errorf("%d multipart uploads left behind: %q", len(out.Uploads), keys)
	}
}

func TestGoFakeS3(t *testing.T) {
	acceptance(t, s3test.StartGoFakeS3(t))
}

func TestMinIO(t *testing.T) {
	acceptance(t, s3test.StartMinIO(t))
}

// The bucket root (empty prefix) works as well as a prefix.
func TestEmptyPrefix(t *testing.T) {
	cfg := s3test.StartGoFakeS3(t)
	s, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.PutIfAbsent(ctx, "_delta_log/00000000000000000000.json", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	objs, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Key != "_delta_log/00000000000000000000.json" {
		t.Fatalf("List = %v", objs)
	}
}

// Keys live under the configured prefix, and a sibling prefix that merely
// starts with the same characters is not listed.
func TestPrefixIsolation(t *testing.T) {
	cfg := s3test.StartGoFakeS3(t)
	ctx := t.Context()
	newStore := func(prefix string) *s3.Store {
		c := cfg
		c.Prefix = prefix
		s, err := s3.New(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, ab, root := newStore("tables/a"), newStore("tables/ab"), newStore("")
	if err := a.Put(ctx, "k", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	if err := ab.Put(ctx, "k", strings.NewReader("ab")); err != nil {
		t.Fatal(err)
	}
	objs, err := a.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Key != "k" || objs[0].Size != 1 {
		t.Fatalf("List under tables/a = %v, want only k (1 byte)", objs)
	}
	all, err := root.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range all {
		got = append(got, o.Key)
	}
	if want := []string{"tables/a/k", "tables/ab/k"}; !slices.Equal(got, want) {
		t.Fatalf("bucket keys = %q, want %q", got, want)
	}
}

func TestListPagination(t *testing.T) {
	for _, server := range servers {
		t.Run(server.name, func(t *testing.T) {
			cfg := server.start(t)
			cfg.Prefix = "p"
			s, err := s3.New(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			s3.SetListPageSize(s, 2)
			ctx := t.Context()
			var want []string
			for i := range 7 {
				k := fmt.Sprintf("_delta_log/%020d.json", i)
				want = append(want, k)
				if err := s.Put(ctx, k, strings.NewReader("x")); err != nil {
					t.Fatal(err)
				}
			}
			objs, err := s.List(ctx, "_delta_log/")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, o.Key)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("List with 2 keys per page = %q, want %q", got, want)
			}
		})
	}
}

// A missing bucket is a configuration error, not an absent key.
func TestMissingBucket(t *testing.T) {
	cfg := s3test.StartGoFakeS3(t)
	cfg.Bucket = "does-not-exist"
	s, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := s.Get(ctx, "k"); err == nil || errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Get in a missing bucket = %v, want an error that is not ErrNotExist", err)
	}
	err = s.PutIfAbsent(ctx, "k", strings.NewReader("x"))
	if err == nil || errors.Is(err, storage.ErrExist) || errors.Is(err, storage.ErrAmbiguous) {
		t.Errorf("PutIfAbsent in a missing bucket = %v, want a definite error", err)
	}
	if err == nil || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Errorf("PutIfAbsent in a missing bucket = %v, want it to name NoSuchBucket", err)
	}
}

// A refused connection is a definite failure: nothing was sent.
func TestConnectionRefusedIsDefinite(t *testing.T) {
	cfg := s3test.StartGoFakeS3(t)
	cfg.Endpoint = "http://127.0.0.1:1" // nothing listens on port 1
	s, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = s.PutIfAbsent(t.Context(), "k", strings.NewReader("x"))
	if err == nil || errors.Is(err, storage.ErrAmbiguous) || errors.Is(err, storage.ErrExist) {
		t.Fatalf("PutIfAbsent to a closed port = %v, want a definite error", err)
	}
}

// How each answer to a conditional PutObject is reported. The server here is
// a stub because real stores cannot be made to answer 409 or 500 on demand;
// the real 412 is covered by the acceptance suite against gofakes3 and MinIO.
func TestConditionalPutOutcomes(t *testing.T) {
	tests := []struct {
		name          string
		handler       http.HandlerFunc
		wantExist     bool
		wantAmbiguous bool
	}{
		{"412 precondition failed", status(412, "PreconditionFailed"), true, false},
		{"409 conditional request conflict", status(409, "ConditionalRequestConflict"), false, true},
		{"500 internal error", status(500, "InternalError"), false, true},
		{"503 slow down", status(503, "SlowDown"), false, true},
		{"403 access denied", status(403, "AccessDenied"), false, false},
		{"400 bad request", status(400, "InvalidRequest"), false, false},
		{"connection closed without an answer", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				if got := r.Header.Get("If-None-Match"); got != "*" {
					t.Errorf("If-None-Match = %q, want *", got)
				}
				tt.handler(w, r)
			}))
			t.Cleanup(srv.Close)
			cfg := s3.Config{Bucket: "bucket", Endpoint: srv.URL, UsePathStyle: true, AccessKeyID: "a", SecretAccessKey: "b"}
			s, err := s3.New(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = s.PutIfAbsent(t.Context(), "_delta_log/00000000000000000001.json", strings.NewReader("{}"))
			if err == nil {
				t.Fatal("PutIfAbsent succeeded")
			}
			if got := errors.Is(err, storage.ErrExist); got != tt.wantExist {
				t.Errorf("errors.Is(%v, ErrExist) = %v, want %v", err, got, tt.wantExist)
			}
			if got := errors.Is(err, storage.ErrAmbiguous); got != tt.wantAmbiguous {
				t.Errorf("errors.Is(%v, ErrAmbiguous) = %v, want %v", err, got, tt.wantAmbiguous)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("server saw %d requests, want exactly 1 (a conditional put must not be retried)", n)
			}
		})
	}
}

func status(code int, s3Code string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(code)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>stub</Message></Error>`, s3Code)
	}
}

func bucketOf(t *testing.T, s *s3.Store) string {
	t.Helper()
	return s3.BucketOf(s)
}

// statusRecorder counts the answers to conditional PUTs.
type statusRecorder struct {
	mu    sync.Mutex
	codes map[int]int
}

func (r *statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && req.Method == http.MethodPut && req.Header.Get("If-None-Match") == "*" {
		r.mu.Lock()
		if r.codes == nil {
			r.codes = map[int]int{}
		}
		r.codes[resp.StatusCode]++
		r.mu.Unlock()
	}
	return resp, err
}

// The acceptance suite's race sees storage errors; this looks at the wire:
// of 16 conditional PUTs racing on one key the server must answer one 200 and
// fifteen 412 Precondition Failed (no 409, which would be ErrAmbiguous).
func TestConditionalRaceOnTheWire(t *testing.T) {
	for _, server := range servers {
		t.Run(server.name, func(t *testing.T) {
			cfg := server.start(t)
			rec := &statusRecorder{}
			client := awss3.New(awss3.Options{
				Region:                     cfg.Region,
				BaseEndpoint:               aws.String(cfg.Endpoint),
				UsePathStyle:               true,
				Credentials:                credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
				HTTPClient:                 &http.Client{Transport: rec},
				RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
				ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
			})
			s := s3.NewFromClient(client, cfg)
			const writers = 16
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() {
					<-start
					_ = s.PutIfAbsent(context.Background(), "_delta_log/00000000000000000001.json", strings.NewReader(fmt.Sprintf("writer %d", i)))
				})
			}
			close(start)
			wg.Wait()
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if rec.codes[200] != 1 || rec.codes[412] != writers-1 || len(rec.codes) != 2 {
				t.Fatalf("answers to %d racing conditional PUTs = %v, want {200:1 412:%d}", writers, rec.codes, writers-1)
			}
			t.Logf("answers: %v", rec.codes)
		})
	}
}

// A deadline that expires while the conditional PUT is in flight leaves the
// outcome unknown; one that expired before anything was sent does not.
func TestConditionalPutDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select { // an answer that never comes in time
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	s, err := s3.New(t.Context(), s3.Config{Bucket: "bucket", Endpoint: srv.URL, UsePathStyle: true, AccessKeyID: "a", SecretAccessKey: "b"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err = s.PutIfAbsent(ctx, "k", strings.NewReader("x"))
	if !errors.Is(err, storage.ErrAmbiguous) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PutIfAbsent timing out in flight = %v, want ErrAmbiguous wrapping DeadlineExceeded", err)
	}
	err = s.PutIfAbsent(ctx, "k", strings.NewReader("x")) // ctx is done now
	if errors.Is(err, storage.ErrAmbiguous) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("PutIfAbsent with an expired context = %v, want a definite DeadlineExceeded", err)
	}
}

// TestListPageReadsOnlyTheHead: ListPage asks the service only for the
// pages it returns (StartAfter, MaxKeys), not for the rest of the prefix,
// and pages through a directory in order; counted on the wire, in front of
// gofakes3 and MinIO.
func TestListPageReadsOnlyTheHead(t *testing.T) {
	for _, server := range servers {
		t.Run(server.name, func(t *testing.T) {
			cfg := server.start(t)
			target, err := url.Parse(cfg.Endpoint)
			if err != nil {
				t.Fatal(err)
			}
			var lists atomic.Int64
			proxy := httputil.NewSingleHostReverseProxy(target)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2" {
					lists.Add(1)
				}
				proxy.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			cfg.Endpoint = srv.URL
			cfg.Prefix = "p"
			s, err := s3.New(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			s3.SetListPageSize(s, 10)
			ctx := t.Context()
			var keys []string
			var g sync.WaitGroup
			for i := range 100 {
				k := fmt.Sprintf("_delta_log/%020d.json", i)
				keys = append(keys, k)
				g.Go(func() {
					if err := s.Put(ctx, k, strings.NewReader("x")); err != nil {
						t.Error(err)
					}
				})
			}
			g.Wait()
			if err := s.Put(ctx, "_delta_log/_sidecars/x.parquet", strings.NewReader("x")); err != nil {
				t.Fatal(err)
			}
			page := func(after string, limit int) []string {
				t.Helper()
				objs, err := s.ListPage(ctx, "_delta_log/0", after, limit)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, o := range objs {
					got = append(got, o.Key)
				}
				return got
			}
			for _, tt := range []struct {
				after     string
				limit     int
				want      []string
				wantLists int64
			}{
				{"", 15, keys[:15], 2},
				{keys[49], 5, keys[50:55], 1},
				{keys[95], 10, keys[96:], 1},
				{keys[99], 10, nil, 1},
			} {
				lists.Store(0)
				if got := page(tt.after, tt.limit); !slices.Equal(got, tt.want) || lists.Load() != tt.wantLists {
					t.Errorf("ListPage(after %q, %d) = %q in %d LISTs, want %q in %d", tt.after, tt.limit, got, lists.Load(), tt.want, tt.wantLists)
				}
			}
			lists.Store(0)
			if _, err := s.List(ctx, "_delta_log/0"); err != nil || lists.Load() < 10 {
				t.Errorf("List of the whole prefix: %d LISTs (%v), want all 10 pages of 10", lists.Load(), err)
			}
		})
	}
}
