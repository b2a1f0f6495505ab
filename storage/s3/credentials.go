package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/smithy-go/logging"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// ErrNoCredentials is wrapped by the error of New when the standard AWS
// credential chain finds no credentials.
var ErrNoCredentials = errors.New("no AWS credentials found")

// Bounds of the credential look-up New does before it returns. On EC2 the
// instance metadata service answers within milliseconds; off-cloud its
// address either refuses or never answers, and the SDK's defaults (5 s per
// call, retried, with an IMDSv1 fallback) add up to ~23 s of silence.
const (
	imdsTimeout       = time.Second
	credentialTimeout = 15 * time.Second
)

// imdsOption makes the EC2 instance-metadata step of the credential chain
// fail fast: one attempt per call, imdsTimeout each, no log lines. The
// endpoint and the AWS_EC2_METADATA_DISABLED switch still come from the
// environment (imds.New reads them).
func imdsOption() config.LoadOptionsFunc {
	return config.WithEC2RoleCredentialOptions(func(o *ec2rolecreds.Options) {
		o.Client = imds.New(imds.Options{
			HTTPClient: awshttp.NewBuildableClient().WithTimeout(imdsTimeout),
			Retryer:    aws.NopRetryer{},
			Logger:     logging.Nop{},
		})
	})
}

// CredentialsError is the error of New when the standard credential chain
// yields nothing: it lists every source tried and what was found there.
type CredentialsError struct {
	// Tried describes each source of the chain, in the SDK's order.
	Tried []string
	// Err is the SDK's error.
	Err error
}

// Error lists the sources tried and what to set.
func (e *CredentialsError) Error() string {
	return fmt.Sprintf("%v; tried, in order: %s. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (for a local MinIO: its root user and password), or AWS_PROFILE",
		ErrNoCredentials, strings.Join(e.Tried, "; "))
}

// Unwrap returns ErrNoCredentials and the SDK's error.
func (e *CredentialsError) Unwrap() []error { return []error{ErrNoCredentials, e.Err} }

// checkCredentials retrieves credentials once, so that a missing one is an
// error now, naming the sources, instead of on the first request.
func checkCredentials(ctx context.Context, cfg aws.Config, profile string) error {
	rctx, cancel := context.WithTimeout(ctx, credentialTimeout)
	defer cancel()
	_, err := cfg.Credentials.Retrieve(rctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &CredentialsError{Tried: describeChain(profile, os.Getenv, err), Err: err}
}

// describeChain says, for each source of the SDK's default credential
// chain, whether it was configured; err (the chain's failure) explains the
// instance-metadata step, and is quoted when a configured source failed.
func describeChain(profile string, getenv func(string) string, err error) []string {
	set := func(names ...string) string {
		var have []string
		for _, n := range names {
			if getenv(n) != "" {
				have = append(have, n)
			}
		}
		if len(have) == 0 {
			return "not set"
		}
		return strings.Join(have, ", ") + " set"
	}
	if profile == "" {
		profile = getenv("AWS_PROFILE")
	}
	if profile == "" {
		profile = "default"
	}
	credFile, confFile := getenv("AWS_SHARED_CREDENTIALS_FILE"), getenv("AWS_CONFIG_FILE")
	if credFile == "" {
		credFile = "~/.aws/credentials"
	}
	if confFile == "" {
		confFile = "~/.aws/config"
	}
	configured := getenv("AWS_ACCESS_KEY_ID") != "" || getenv("AWS_SECRET_ACCESS_KEY") != "" ||
		getenv("AWS_WEB_IDENTITY_TOKEN_FILE") != "" || getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != "" ||
		getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI") != "" || fileExists(expandHome(credFile, getenv)) || fileExists(expandHome(confFile, getenv))
	imdsState := "no answer within " + imdsTimeout.String() + ", not on EC2?"
	var re *smithyhttp.ResponseError
	var ne net.Error
	switch {
	case strings.EqualFold(getenv("AWS_EC2_METADATA_DISABLED"), "true"):
		imdsState = "disabled by AWS_EC2_METADATA_DISABLED"
	case errors.As(err, &re):
		imdsState = fmt.Sprintf("HTTP %d, no instance role", re.HTTPStatusCode())
	case errors.As(err, &ne) && !ne.Timeout():
		imdsState = "unreachable, not on EC2?"
	}
	tried := []string{
		"environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: " + set("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") + ")",
		fmt.Sprintf("shared files (%s, %s; profile %q)", credFile, confFile, profile),
		"web identity (AWS_WEB_IDENTITY_TOKEN_FILE: " + set("AWS_WEB_IDENTITY_TOKEN_FILE") + ")",
		"container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, AWS_CONTAINER_CREDENTIALS_FULL_URI: " +
			set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI") + ")",
		"EC2 instance metadata (" + imdsState + ")",
	}
	if configured {
		tried = append(tried, fmt.Sprintf("the SDK reported: %v", err))
	}
	return tried
}

func expandHome(path string, getenv func(string) string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		return getenv("HOME") + "/" + rest
	}
	return path
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
