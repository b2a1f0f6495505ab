package open

import "github.com/protolake/protolake/storage/s3"

// S3Options are settings for s3:// URLs given outside the URL (a table's
// `s3:` configuration). Set fields override the URL's query options; zero
// fields leave them alone.
type S3Options struct {
	// Region overrides ?region=.
	Region string `yaml:"region"`
	// Endpoint overrides ?endpoint= (MinIO, other S3-compatible stores).
	Endpoint string `yaml:"endpoint"`
	// UsePathStyle, when true, addresses buckets by path (?path_style=true).
	UsePathStyle bool `yaml:"use_path_style"`
}

// apply sets opts' non-zero fields in c.
func (opts S3Options) apply(c *s3.Config) {
	if opts.Region != "" {
		c.Region = opts.Region
	}
	if opts.Endpoint != "" {
		c.Endpoint = opts.Endpoint
	}
	if opts.UsePathStyle {
		c.UsePathStyle = true
	}
}

// WithS3 returns an Opener that applies opts to every s3:// URL's
// configuration, after the URL's own options and before o.ConfigureS3 (so
// a test's static credentials still apply). Zero opts return o itself. The
// new Opener does not share o's mem:// stores.
func (o *Opener) WithS3(opts S3Options) *Opener {
	if opts == (S3Options{}) {
		return o
	}
	base := o.ConfigureS3
	return &Opener{ConfigureHDFS: o.ConfigureHDFS, ConfigureS3: func(c *s3.Config) {
		opts.apply(c)
		if base != nil {
			base(c)
		}
	}}
}
