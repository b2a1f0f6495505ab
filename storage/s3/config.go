package s3

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Part size limits imposed by S3 on multipart uploads.
const (
	// MinPartSize is the smallest part S3 accepts (except for the last part).
	MinPartSize = 5 << 20
	// MaxPartSize is the largest part, and the largest single PutObject.
	MaxPartSize = 5 << 30
	// DefaultPartSize is Config.PartSize when it is zero.
	DefaultPartSize = 16 << 20
	// DefaultRegion is used when neither Config.Region nor the standard AWS
	// configuration names a region.
	DefaultRegion = "us-east-1"
)

// Config configures a Store. The zero value of every field except Bucket is a
// valid default.
type Config struct {
	// Bucket is the bucket name. Required.
	Bucket string
	// Prefix is the key prefix under which the store keeps its objects, with
	// no leading or trailing slash; "" (the default) is the bucket's root.
	// A store key k is the S3 key Prefix + "/" + k.
	Prefix string
	// Region is the bucket's region. Default: AWS_REGION or the profile's
	// region, else us-east-1.
	Region string
	// Endpoint is the base URL of an S3-compatible service, such as
	// "http://127.0.0.1:9000" for MinIO. Default: the AWS endpoint of the
	// region (or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL when set).
	Endpoint string
	// UsePathStyle addresses buckets as http://host/bucket/key instead of
	// http://bucket.host/key. MinIO and most self-hosted stores need it.
	// Default false (virtual-hosted style, what AWS expects).
	UsePathStyle bool
	// AccessKeyID and SecretAccessKey are static credentials, with an
	// optional SessionToken. Default (both empty): the standard credential
	// chain. Setting only one of the two is an error.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Profile selects a shared-config profile for the standard chain.
	// Default: AWS_PROFILE, else "default".
	Profile string
	// PartSize is the multipart threshold and part size of Put, in bytes.
	// Default DefaultPartSize (16 MiB); at least MinPartSize, at most
	// MaxPartSize. Put holds one part in memory at a time.
	PartSize int64
}

// Validate reports whether c can be used to build a Store.
func (c Config) Validate() error {
	var errs []error
	if c.Bucket == "" {
		errs = append(errs, errors.New("bucket is required"))
	} else if !validBucket(c.Bucket) {
		errs = append(errs, fmt.Errorf("bucket %q is not a valid bucket name (3-63 characters: lowercase letters, digits, '.', '-')", c.Bucket))
	}
	if strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") || strings.Contains(c.Prefix, "//") {
		errs = append(errs, fmt.Errorf("prefix %q must not start or end with a slash or contain empty segments", c.Prefix))
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, errors.New("endpoint must be an http:// or https:// URL with a host"))
		case u.User != nil:
			errs = append(errs, errors.New("endpoint must not hold credentials (user:password@): they come from the standard AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the instance's or pod's role)"))
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, errors.New("access key id and secret access key must be set together (or both left empty for the standard credential chain)"))
	}
	if c.SessionToken != "" && c.AccessKeyID == "" {
		errs = append(errs, errors.New("session token needs an access key id and secret access key"))
	}
	if c.PartSize != 0 && (c.PartSize < MinPartSize || c.PartSize > MaxPartSize) {
		errs = append(errs, fmt.Errorf("part size %d is outside [%d, %d] bytes", c.PartSize, MinPartSize, MaxPartSize))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("s3 config: %w", err)
	}
	return nil
}

func (c Config) partSize() int64 {
	if c.PartSize == 0 {
		return DefaultPartSize
	}
	return c.PartSize
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ParseURL parses "s3://bucket/prefix" into a Config. Query parameters set
// the options that have no place in the URL itself:
//
//	region=eu-west-1
//	endpoint=http://127.0.0.1:9000
//	path_style=true
//	profile=name
//	part_size=33554432
//
// Credentials are never taken from the URL (URLs end up in logs); they come
// from the standard chain. The result is validated. Errors do not repeat the
// URL, which may hold a secret: the caller names it, redacted
// (open.Redact).
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a secret
		}
		return Config{}, fmt.Errorf("parse s3 url: %w", err)
	}
	if u.Scheme != "s3" {
		return Config{}, fmt.Errorf("parse s3 url: scheme is %q, want s3", u.Scheme)
	}
	if u.User != nil {
		return Config{}, errors.New("parse s3 url: credentials in the URL are not supported; use the standard AWS credential chain")
	}
	c := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "region":
			c.Region = v
		case "endpoint":
			c.Endpoint = v
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Config{}, fmt.Errorf("parse s3 url: path_style=%q is not a boolean", v)
			}
			c.UsePathStyle = b
		case "profile":
			c.Profile = v
		case "part_size":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Config{}, fmt.Errorf("parse s3 url: part_size=%q is not a number of bytes", v)
			}
			c.PartSize = n
		default:
			return Config{}, fmt.Errorf("parse s3 url: unknown parameter %q (known: region, endpoint, path_style, profile, part_size)", k)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("parse s3 url: %w", err)
	}
	return c, nil
}
