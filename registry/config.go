package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"
)

// Config is how to reach a schema registry: the `schema_registry` block of a
// table's configuration. Secrets are never in the file: PasswordEnv and
// BearerTokenEnv name environment variables that hold them.
type Config struct {
	// URL of the registry's Confluent-compatible REST API, e.g.
	// http://registry:8081 or, for Apicurio Registry,
	// http://registry:8080/apis/ccompat/v7. Required.
	URL string `yaml:"url"`
	// Username for HTTP basic auth; the password is read from the
	// environment variable PasswordEnv.
	Username    string `yaml:"username"`
	PasswordEnv string `yaml:"password_env"`
	// BearerTokenEnv names the environment variable holding a bearer token
	// (Authorization: Bearer …). Not together with Username.
	BearerTokenEnv string `yaml:"bearer_token_env"`
	// TLS configures https:// URLs; all paths are PEM files.
	TLS TLSConfig `yaml:"tls"`
	// Timeout of one registry request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// CacheSize bounds the compiled schemas and the referenced schemas
	// kept in memory (each). Default 1000.
	CacheSize int `yaml:"cache_size"`
	// NegativeTTL is how long a "no such schema id" answer is remembered.
	// Default 30s.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// MaxBackoff bounds the wait between attempts while the registry is
	// unavailable (the Runner pauses the table's fetches meanwhile).
	// Default 10s.
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// TLSConfig is the registry's TLS: a CA to trust, a client certificate.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Defaults.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultCacheSize   = 1000
	DefaultNegativeTTL = 30 * time.Second
	DefaultMaxBackoff  = 10 * time.Second
)

// ApplyDefaults fills zero values with their documented defaults.
func (c *Config) ApplyDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.NegativeTTL == 0 {
		c.NegativeTTL = DefaultNegativeTTL
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
}

// Validate reports every invalid field, named by its YAML key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.URL == "" {
		bad("url", "is required (e.g. http://registry:8081)")
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url", "%q is not an http:// or https:// URL", c.URL)
	}
	if c.BearerTokenEnv != "" && c.Username != "" {
		bad("bearer_token_env", "set username (basic auth) or bearer_token_env, not both")
	}
	if c.PasswordEnv != "" && c.Username == "" {
		bad("password_env", "needs username")
	}
	for field, env := range map[string]string{"password_env": c.PasswordEnv, "bearer_token_env": c.BearerTokenEnv} {
		if env != "" {
			if _, ok := os.LookupEnv(env); !ok {
				bad(field, "environment variable %s is not set", env)
			}
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file go together")
	}
	for field, f := range map[string]string{"tls.ca_file": c.TLS.CAFile, "tls.cert_file": c.TLS.CertFile, "tls.key_file": c.TLS.KeyFile} {
		if f != "" {
			if _, err := os.Stat(f); err != nil {
				bad(field, "%v", err)
			}
		}
	}
	if c.Timeout < 0 {
		bad("timeout", "must not be negative")
	}
	if c.CacheSize < 0 {
		bad("cache_size", "must not be negative")
	}
	if c.NegativeTTL < 0 {
		bad("negative_ttl", "must not be negative")
	}
	if c.MaxBackoff < 0 {
		bad("max_backoff", "must not be negative")
	}
	return errors.Join(errs...)
}

// tlsConfig builds the TLS configuration, or nil when none is configured.
func (c *Config) tlsConfig() (*tls.Config, error) {
	t := c.TLS
	if t == (TLSConfig{}) {
		return nil, nil
	}
	tc := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: no PEM certificate in %s", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
