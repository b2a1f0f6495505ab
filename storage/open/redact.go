package open

import (
	"fmt"
	"net/url"
	"strings"
)

// redacted replaces a secret in a redacted URL.
const redacted = "xxxxx"

// publicParams are the query parameters of table URLs whose values are not
// secret (s3.ParseURL's and hdfs.ParseURL's options); Redact keeps them.
// endpoint is redacted recursively.
var publicParams = map[string]bool{
	"region": true, "path_style": true, "profile": true, "part_size": true,
	"user": true, "datanode_hostname": true,
}

// Redact returns rawURL fit to log or print: any user information
// (user:password@) and the value of every query parameter that is not a
// known, non-secret option are replaced by "xxxxx", also inside an
// endpoint=… parameter. A plain local path is returned as it is. It never
// fails: a URL that does not parse is redacted by its shape. Every URL
// protolake logs or prints goes through it.
func Redact(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return rawURL
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		authority = redacted + authority[at:]
	}
	path, query, hasQuery := strings.Cut(tail, "?")
	if !hasQuery {
		return scheme + "://" + authority + path
	}
	query, frag, hasFrag := strings.Cut(query, "#")
	pairs := strings.Split(query, "&")
	for i, p := range pairs {
		k, v, hasValue := strings.Cut(p, "=")
		if !hasValue || v == "" {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		switch {
		case name == "endpoint":
			if ev, err := url.QueryUnescape(v); err == nil {
				pairs[i] = k + "=" + url.QueryEscape(Redact(ev))
			} else {
				pairs[i] = k + "=" + redacted
			}
		case !publicParams[name]:
			pairs[i] = k + "=" + redacted
		}
	}
	out := scheme + "://" + authority + path + "?" + strings.Join(pairs, "&")
	if hasFrag {
		out += "#" + frag
	}
	return out
}

// checkCredentials refuses credentials in a table URL: URLs end up in logs,
// error messages and process listings, so secrets never belong in them.
func checkCredentials(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil // the scheme's parser reports it
	}
	var what string
	if u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword || isS3(u.Scheme) {
			what = "user information (user:password@)"
		}
	}
	if what == "" {
		for k, vs := range u.Query() {
			if credentialParam(k) {
				what = fmt.Sprintf("the parameter %q", k)
				break
			}
			if k == "endpoint" && len(vs) > 0 {
				if eu, err := url.Parse(vs[len(vs)-1]); err == nil && eu.User != nil {
					what = "user information in the endpoint"
					break
				}
			}
		}
	}
	if what == "" {
		return nil
	}
	return fmt.Errorf("credentials in the URL (%s) are refused: URLs are logged and printed. "+
		"S3 credentials come from the standard AWS credential chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE and ~/.aws/credentials) "+
		"in the environment, or the instance's or pod's IAM role; HDFS takes ?user=NAME", what)
}

func isS3(scheme string) bool {
	s := strings.ToLower(scheme)
	return s == "s3" || s == "s3a"
}

// credentialParam reports whether a query parameter's name says it holds a
// credential (access_key, secret_key, aws_secret_access_key, session_token,
// password, X-Amz-Signature…).
func credentialParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"secret", "password", "passwd", "token", "access_key", "accesskey", "credential", "signature"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
