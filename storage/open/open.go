// Package open turns a table URL into a storage.Store. It is the one place in
// protolake that switches on the URL scheme; everything else takes a Store.
//
// Supported forms (the store is rooted at the URL's path, so keys are relative
// to the table):
//
//	/abs/path, rel/path, ./path     local filesystem (storage/local)
//	file:///abs/path                local filesystem (file://localhost/... too)
//	mem://name                      in-memory (storage/mem), for tests
//	s3://bucket/prefix[?opts]       S3 or MinIO (storage/s3; s3a:// is an alias)
//	hdfs://namenode:port/path       HDFS (storage/hdfs)
//
// See s3.ParseURL and hdfs.ParseURL for the query options. A store returned
// for hdfs:// holds a connection and implements io.Closer; close it when done
// (Close does that for any store).
//
// Table URLs are logged and printed, so they never carry secrets: Open
// refuses credentials in them (user information, credential-like query
// parameters, an endpoint with user information), pointing to the AWS
// credential chain, and every error it returns shows the URL through Redact,
// the one redaction helper everything that logs or prints a URL uses.
package open

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"

	"github.com/protolake/protolake/storage"
	"github.com/protolake/protolake/storage/hdfs"
	"github.com/protolake/protolake/storage/local"
	"github.com/protolake/protolake/storage/mem"
	"github.com/protolake/protolake/storage/s3"
)

// Supported lists the accepted URL forms, for error and help messages.
const Supported = "file://, mem://, s3://, s3a://, hdfs://, or a plain path"

// Opener opens stores by URL. The zero value is ready to use and safe for
// concurrent use.
type Opener struct {
	// ConfigureS3, if set, adjusts the configuration parsed from an s3://
	// URL before the store is built: static credentials in tests, say.
	ConfigureS3 func(*s3.Config)
	// ConfigureHDFS, if set, adjusts the configuration parsed from an
	// hdfs:// URL before the store is built.
	ConfigureHDFS func(*hdfs.Config)

	mu  sync.Mutex
	mem map[string]*mem.Store
}

// LocalPath reports whether rawURL names the local filesystem (a plain path
// or a file:// URL) and returns its path. A file:// URL must be absolute:
// file://relative/path would put "relative" in the host position and
// silently mean /path, so it is an error saying how to write it.
func LocalPath(rawURL string) (path string, ok bool, err error) {
	scheme, _, hasScheme := strings.Cut(rawURL, "://")
	if !hasScheme {
		return rawURL, true, nil
	}
	if !strings.EqualFold(scheme, "file") {
		return "", false, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", false, fmt.Errorf("open %s: not a valid URL", Redact(rawURL))
	}
	if u.Host != "" && u.Host != "localhost" {
		rel := strings.TrimPrefix(rawURL[len(scheme)+3:], "/")
		return "", false, fmt.Errorf("open %s: a file:// URL takes an absolute path (file:///abs/path), and %q would be read as a host; for a path relative to the working directory write it without file:// (%s)", Redact(rawURL), u.Host, rel)
	}
	if u.RawQuery != "" {
		return "", false, fmt.Errorf("open %s: file URLs take no parameters", Redact(rawURL))
	}
	if u.Path == "" {
		return "", false, fmt.Errorf("open %s: no path", Redact(rawURL))
	}
	return u.Path, true, nil
}

// Open returns the store for rawURL with a fresh Opener: every mem:// URL
// gets a new, empty store.
func Open(ctx context.Context, rawURL string) (storage.Store, error) {
	var o Opener
	return o.Open(ctx, rawURL)
}

// Close closes s if it holds resources (an HDFS connection) and does nothing
// otherwise.
func Close(s storage.Store) error {
	if c, ok := s.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Open returns the store for rawURL. All mem:// URLs with the same name opened
// through one Opener share one store, so a test can write a table and read it
// back through a second Open.
func (o *Opener) Open(ctx context.Context, rawURL string) (storage.Store, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("open store: empty URL (want %s)", Supported)
	}
	shown := Redact(rawURL)
	if strings.Contains(rawURL, "://") {
		if err := checkCredentials(rawURL); err != nil {
			return nil, fmt.Errorf("open %s: %w", shown, err)
		}
	}
	scheme, _, _ := strings.Cut(rawURL, "://")
	if path, ok, err := LocalPath(rawURL); err != nil {
		return nil, err
	} else if ok {
		s, err := local.New(path)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", shown, err)
		}
		return s, nil
	}
	switch strings.ToLower(scheme) {
	case "mem":
		name := strings.TrimSuffix(rawURL[len("mem://"):], "/")
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.mem == nil {
			o.mem = make(map[string]*mem.Store)
		}
		s, ok := o.mem[name]
		if !ok {
			s = mem.New()
			o.mem[name] = s
		}
		return s, nil
	case "s3", "s3a":
		cfg, err := s3.ParseURL("s3://" + rawURL[len(scheme)+3:])
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", shown, err)
		}
		if o.ConfigureS3 != nil {
			o.ConfigureS3(&cfg)
		}
		s, err := s3.New(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", shown, err)
		}
		return s, nil
	case "hdfs":
		cfg, err := hdfs.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", shown, err)
		}
		if o.ConfigureHDFS != nil {
			o.ConfigureHDFS(&cfg)
		}
		s, err := hdfs.New(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", shown, err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("open %s: unsupported scheme %q (supported: %s)", shown, scheme, Supported)
	}
}
