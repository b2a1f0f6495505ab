package s3_test

import (
	"strings"
	"testing"

	"github.com/protolake/protolake/storage/s3"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		raw     string
		want    s3.Config
		wantErr string
	}{
		{raw: "s3://bucket", want: s3.Config{Bucket: "bucket"}},
		{raw: "s3://bucket/", want: s3.Config{Bucket: "bucket"}},
		{raw: "s3://bucket/lake/events/", want: s3.Config{Bucket: "bucket", Prefix: "lake/events"}},
		{
			raw:  "s3://my-bucket/t?region=eu-west-1&endpoint=http://127.0.0.1:9000&path_style=true&profile=etl&part_size=8388608",
			want: s3.Config{Bucket: "my-bucket", Prefix: "t", Region: "eu-west-1", Endpoint: "http://127.0.0.1:9000", UsePathStyle: true, Profile: "etl", PartSize: 8 << 20},
		},
		{raw: "s3://bkt/t?path_style=yes", wantErr: "not a boolean"},
		{raw: "s3://bkt/t?part_size=big", wantErr: "not a number"},
		{raw: "s3://bkt/t?part_size=1024", wantErr: "part size 1024 is outside"},
		{raw: "s3://bkt/t?endpoint=127.0.0.1:9000", wantErr: "http:// or https://"},
		{raw: "s3://bkt/t?acl=private", wantErr: `unknown parameter "acl"`},
		{raw: "s3://Bucket_Name/t", wantErr: "not a valid bucket name"},
		{raw: "s3://bkt/a//b", wantErr: "empty segments"},
		{raw: "http://bkt/t", wantErr: "want s3"},
		{raw: "s3://key:secret@bkt/t", wantErr: "credentials in the URL"},
	}
	for _, tt := range tests {
		got, err := s3.ParseURL(tt.raw)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseURL(%q) error = %v, want it to contain %q", tt.raw, err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseURL(%q) error %q leaks the secret", tt.raw, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tt.raw, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseURL(%q) = %+v, want %+v", tt.raw, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := s3.Config{Bucket: "bucket"}
	tests := []struct {
		name    string
		mod     func(*s3.Config)
		wantErr string
	}{
		{"defaults", func(*s3.Config) {}, ""},
		{"static keys", func(c *s3.Config) { c.AccessKeyID, c.SecretAccessKey, c.SessionToken = "a", "b", "c" }, ""},
		{"min part size", func(c *s3.Config) { c.PartSize = s3.MinPartSize }, ""},
		{"no bucket", func(c *s3.Config) { c.Bucket = "" }, "bucket is required"},
		{"short bucket", func(c *s3.Config) { c.Bucket = "ab" }, "not a valid bucket name"},
		{"leading slash", func(c *s3.Config) { c.Prefix = "/t" }, "must not start or end with a slash"},
		{"trailing slash", func(c *s3.Config) { c.Prefix = "t/" }, "must not start or end with a slash"},
		{"key without secret", func(c *s3.Config) { c.AccessKeyID = "a" }, "must be set together"},
		{"secret without key", func(c *s3.Config) { c.SecretAccessKey = "b" }, "must be set together"},
		{"token alone", func(c *s3.Config) { c.SessionToken = "t" }, "session token needs"},
		{"part too small", func(c *s3.Config) { c.PartSize = s3.MinPartSize - 1 }, "outside"},
		{"part too large", func(c *s3.Config) { c.PartSize = s3.MaxPartSize + 1 }, "outside"},
		{"endpoint without scheme", func(c *s3.Config) { c.Endpoint = "minio:9000" }, "http:// or https://"},
	}
	for _, tt := range tests {
		c := ok
		tt.mod(&c)
		err := c.Validate()
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: Validate = %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Validate = %v, want it to contain %q", tt.name, err, tt.wantErr)
		}
	}
}
