// Package s3test starts S3 servers for tests on 127.0.0.1: gofakes3
// in-process (always available) and a real MinIO server from the binary named
// by the PLTEST_MINIO environment variable (set by `make interop`). Every
// server is stopped when the test that started it ends, also on failure.
//
// Typical use, one server per test:
//
//	cfg := s3test.StartMinIO(t)          // skips without PLTEST_MINIO
//	store, err := s3.New(ctx, cfg)
//
// or one MinIO per test binary, with a fresh bucket per test:
//
//	var minio *s3test.MinIO
//	func TestMain(m *testing.M) {
//		var err error
//		if minio, err = s3test.NewMinIO(os.Getenv(s3test.EnvMinIO)); err != nil { ... }
//		code := m.Run()
//		minio.Close()
//		os.Exit(code)
//	}
//	... cfg := minio.NewBucket(t)
//
// gofakes3 (v1.2.0) honours "If-None-Match: *" on PutObject itself, checking
// and writing under its backend lock, so no test scaffolding is needed for
// conditional creates; the storage acceptance suite's race test verifies it
// against both servers.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/protolake/protolake/storage/s3"
)

// EnvMinIO names the environment variable that holds the path of the MinIO
// server binary.
const EnvMinIO = "PLTEST_MINIO"

// Credentials every test server accepts.
const (
	AccessKey = "protolake-test"
	SecretKey = "protolake-test-secret"
)

// startTimeout bounds how long MinIO may take to become live; generous
// because tests share a few cores.
const startTimeout = 90 * time.Second

// RandomBucketName returns a fresh valid bucket name.
func RandomBucketName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "test-" + hex.EncodeToString(b[:])
}

// StartGoFakeS3 starts gofakes3 with its in-memory backend on 127.0.0.1,
// creates a bucket, and returns a Config for it (path style, static test
// credentials). The server stops when t ends.
func StartGoFakeS3(t testing.TB) s3.Config {
	t.Helper()
	backend := s3mem.New()
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	srv := httptest.NewServer(faker.Server())
	t.Cleanup(srv.Close)
	bucket := RandomBucketName()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatalf("gofakes3: create bucket %s: %v", bucket, err)
	}
	return s3.Config{
		Bucket:          bucket,
		Region:          s3.DefaultRegion,
		Endpoint:        srv.URL,
		UsePathStyle:    true,
		AccessKeyID:     AccessKey,
		SecretAccessKey: SecretKey,
	}
}

// MinIO is a MinIO server process serving a temporary directory on
// 127.0.0.1.
type MinIO struct {
	// Endpoint is the server's base URL, http://127.0.0.1:PORT.
	Endpoint string

	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *syncBuffer
	once   sync.Once
}

// StartMinIO starts a MinIO server for t, creates a bucket, and returns a
// Config for it. It skips t when PLTEST_MINIO is unset and fails t when
// the binary is missing or the server does not start. The server is killed
// when t ends.
func StartMinIO(t testing.TB) s3.Config {
	t.Helper()
	bin := os.Getenv(EnvMinIO)
	if bin == "" {
		t.Skipf("MinIO tests need a MinIO server binary: they run in `make interop`, or set %s=/path/to/minio (go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c)", EnvMinIO)
	}
	m, err := NewMinIO(bin)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("stop minio: %v", err)
		}
	})
	return m.NewBucket(t)
}

// NewMinIO starts a MinIO server from binary on free 127.0.0.1 ports with a
// fresh data directory and waits until it is live. The caller must Close it.
// It is meant for TestMain; tests use StartMinIO.
func NewMinIO(binary string) (*MinIO, error) {
	if binary == "" {
		return nil, fmt.Errorf("start minio: no binary given: run `make interop`, or set %s", EnvMinIO)
	}
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("start minio: %s=%s: %w (run `make tools` to build it)", EnvMinIO, binary, err)
	}
	var lastErr error
	// A free port can be taken between probing and MinIO binding it; try a
	// few times.
	for range 3 {
		m, err := startMinIO(binary)
		if err == nil {
			return m, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startMinIO(binary string) (*MinIO, error) {
	dir, err := os.MkdirTemp("", "protolake-minio-")
	if err != nil {
		return nil, fmt.Errorf("start minio: %w", err)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start minio: %w", err)
	}
	consolePort, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start minio: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	m := &MinIO{
		Endpoint: "http://" + addr,
		dir:      dir,
		exited:   make(chan struct{}),
		log:      &syncBuffer{},
	}
	m.cmd = exec.Command(binary, "server", filepath.Join(dir, "data"),
		"--address", addr,
		"--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort),
		"--certs-dir", filepath.Join(dir, "certs"),
		"--quiet")
	m.cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey,
		"MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
		"HOME="+dir,
	)
	m.cmd.Stdout = m.log
	m.cmd.Stderr = m.log
	killWithParent(m.cmd)
	if err := m.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start minio %s: %w", binary, err)
	}
	go func() {
		_ = m.cmd.Wait()
		close(m.exited)
	}()
	if err := m.waitLive(); err != nil {
		_ = m.Close()
		return nil, fmt.Errorf("start minio %s on %s: %w\nminio output:\n%s", binary, addr, err, m.log.String())
	}
	return m, nil
}

func (m *MinIO) waitLive() error {
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-m.exited:
			return fmt.Errorf("exited early: %v", m.cmd.ProcessState)
		default:
		}
		resp, err := client.Get(m.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not live after %v", startTimeout)
}

// Close kills the server and removes its data directory.
func (m *MinIO) Close() error {
	var err error
	m.once.Do(func() {
		select {
		case <-m.exited:
		default:
			if kerr := m.cmd.Process.Kill(); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
				err = kerr
			}
			<-m.exited
		}
		if rerr := os.RemoveAll(m.dir); rerr != nil && err == nil {
			err = rerr
		}
	})
	return err
}

// Config returns a Config for bucket on this server (path style, static
// credentials). The bucket must exist; see NewBucket.
func (m *MinIO) Config(bucket string) s3.Config {
	return s3.Config{
		Bucket:          bucket,
		Region:          s3.DefaultRegion,
		Endpoint:        m.Endpoint,
		UsePathStyle:    true,
		AccessKeyID:     AccessKey,
		SecretAccessKey: SecretKey,
	}
}

// NewBucket creates a fresh bucket and returns its Config. It fails t if the
// bucket cannot be created.
func (m *MinIO) NewBucket(t testing.TB) s3.Config {
	t.Helper()
	cfg := m.Config(RandomBucketName())
	if err := CreateBucket(context.Background(), cfg); err != nil {
		t.Fatalf("minio: %v\nminio output:\n%s", err, m.log.String())
	}
	return cfg
}

// CreateBucket creates cfg.Bucket through the S3 API, retrying briefly
// while a freshly started server finishes initialising.
func CreateBucket(ctx context.Context, cfg s3.Config) error {
	store, err := s3.New(ctx, cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		_, err = store.Client().CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(cfg.Bucket)})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create bucket %s: %w", cfg.Bucket, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects the server's output for error messages, keeping only
// the last 64 KiB.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.buf.Len() > 64<<10 {
		tail := append([]byte(nil), b.buf.Bytes()[b.buf.Len()-32<<10:]...)
		b.buf.Reset()
		b.buf.Write(tail)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
