package s3_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/protolake/protolake/storage/s3"
)

// noCredentials clears every source of the AWS credential chain and points
// the instance-metadata step at a server that accepts connections and never
// answers, as the link-local address does off-cloud.
func noCredentials(t *testing.T) {
	t.Helper()
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_EC2_METADATA_DISABLED"} {
		t.Setenv(v, "")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", home+"/credentials")
	t.Setenv("AWS_CONFIG_FILE", home+"/config")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // hold it open, say nothing
		}
	}()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://"+ln.Addr().String())
}

// TestNewWithoutCredentialsFailsFast: with no credentials anywhere, New
// fails within seconds (not the SDK's ~23 s of metadata-service retries on
// the first request) and names every source it tried, AWS_ACCESS_KEY_ID
// first.
func TestNewWithoutCredentialsFailsFast(t *testing.T) {
	noCredentials(t)
	start := time.Now()
	_, err := s3.New(context.Background(), s3.Config{Bucket: "lake", Endpoint: "http://127.0.0.1:1", UsePathStyle: true})
	elapsed := time.Since(start)
	if !errors.Is(err, s3.ErrNoCredentials) {
		t.Fatalf("New without credentials = %v, want ErrNoCredentials", err)
	}
	// The message in full, but for the temporary HOME in the file names.
	for _, part := range []string{
		"s3 store s3://lake/: no AWS credentials found; tried, in order: environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: not set); shared files (",
		`/credentials, `, `/config; profile "default"); web identity (AWS_WEB_IDENTITY_TOKEN_FILE: not set); container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, AWS_CONTAINER_CREDENTIALS_FULL_URI: not set); EC2 instance metadata (no answer within 1s, not on EC2?). Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (for a local MinIO: its root user and password), or AWS_PROFILE`,
	} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error\n%v\nlacks %q", err, part)
		}
	}
	if elapsed > 5*time.Second {
		t.Errorf("New took %s to report missing credentials, want a few seconds at most", elapsed)
	}
}

// TestNewWithEnvironmentCredentials: credentials from the environment are
// found without contacting anything.
func TestNewWithEnvironmentCredentials(t *testing.T) {
	noCredentials(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "minioadmin")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "minioadmin")
	if _, err := s3.New(context.Background(), s3.Config{Bucket: "lake", Endpoint: "http://127.0.0.1:1", UsePathStyle: true}); err != nil {
		t.Fatalf("New with AWS_ACCESS_KEY_ID set: %v", err)
	}
}
