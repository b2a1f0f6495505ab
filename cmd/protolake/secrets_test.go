package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const secret = "hunter2X"

// secretURIs are table URIs that carry a secret in each place one can hide.
var secretURIs = []string{
	"s3://AKIDEXAMPLE:" + secret + "@bucket/orders",
	"s3://bucket/orders?aws_secret_access_key=" + secret,
	"s3://bucket/orders?sekrit=" + secret, // an unknown parameter
	"s3://bucket/orders?endpoint=http://minio:" + secret + "@127.0.0.1:1&path_style=true",
	"s3://bucket/orders?endpoint=" + "http%3A%2F%2Fminio%3A" + secret + "%40127.0.0.1%3A1",
	"hdfs://alice:" + secret + "@127.0.0.1:1/orders",
	"hdfs://127.0.0.1:1/orders?password=" + secret,
}

// TestSecretsNeverShown: whatever command is given a URI with a secret, the
// secret appears in neither stdout nor stderr, and credentials are refused
// with a pointer to the AWS credential chain.
func TestSecretsNeverShown(t *testing.T) {
	cmds := [][]string{
		{"inspect"}, {"inspect", "--json"}, {"history"}, {"compact"}, {"vacuum"}, {"checkpoint"},
		{"schema", "diff", "--message", "shop.Order", "URI", testProto + "/evolution/v2/order.binpb"},
	}
	for _, uri := range secretURIs {
		for _, c := range cmds {
			args := append([]string(nil), c...)
			if i := indexOf(args, "URI"); i >= 0 {
				args[i] = uri
			} else {
				args = append(args, uri)
			}
			out, errOut, code := runCLI(t, args...)
			if code == 0 {
				t.Errorf("%v: exit 0", args)
			}
			if strings.Contains(out+errOut, secret) {
				t.Errorf("%v shows the secret:\nstdout: %s\nstderr: %s", args, out, errOut)
			}
			if !strings.Contains(uri, "sekrit") && !strings.Contains(errOut, "standard AWS credential chain") {
				t.Errorf("%v: the refusal does not point to the AWS credential chain: %s", args, errOut)
			}
		}
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// TestRunSecretsNeverLogged: `run` with a secret in a table URI, a
// dead-letter URI or the table's s3.endpoint refuses to start, and neither
// its error nor its logs (debug level) show the secret.
func TestRunSecretsNeverLogged(t *testing.T) {
	type setting struct{ uri, extra string }
	var cases []setting
	for _, u := range secretURIs {
		cases = append(cases, setting{uri: u})
	}
	cases = append(cases,
		setting{uri: "s3://bucket/orders", extra: "    s3: {endpoint: \"http://minio:" + secret + "@127.0.0.1:1\", use_path_style: true}"},
		setting{uri: filepath.Join(t.TempDir(), "orders"), extra: "    dead_letter: {uri: \"s3://AKID:" + secret + "@bucket/dlq\"}"},
	)
	for _, c := range cases {
		conf := filepath.Join(t.TempDir(), "protolake.yaml")
		yaml := fmt.Sprintf("kafka: {brokers: [\"127.0.0.1:1\"], group_id: lake}\nhttp: {listen: \"off\"}\nlog: {level: debug, format: text}\ntables:\n  - uri: %q\n    topics: [orders]\n    message: shop.Order\n    descriptor_set: %s\n%s\n",
			c.uri, testProto+"/evolution/v1/order.binpb", c.extra)
		if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var stdout, stderr bytes.Buffer
		err := run(ctx, []string{"run", "--config", conf}, &stdout, &stderr)
		cancel()
		code := exitCode(err, &stderr)
		if code == 0 {
			t.Errorf("%s %s: run exited 0", c.uri, c.extra)
		}
		if strings.Contains(stdout.String()+stderr.String(), secret) {
			t.Errorf("%s %s: the secret is shown:\n%s%s", c.uri, c.extra, stdout.String(), stderr.String())
		}
		if !strings.Contains(c.uri, "sekrit") && !strings.Contains(stderr.String(), "credential") {
			t.Errorf("%s %s: the error does not say the credentials are refused:\n%s", c.uri, c.extra, stderr.String())
		}
	}
}

// TestRunValidatesHTTPListenFirst: an http.listen that cannot be served —
// an invalid port, an address in use — fails the start before any table
// (or dead-letter table) is created.
func TestRunValidatesHTTPListenFirst(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct{ listen, want string }{
		{"127.0.0.1:99999", `http.listen: "127.0.0.1:99999": port "99999" is not a port number (0-65535)`},
		{busy.Addr().String(), "http.listen: listen tcp " + busy.Addr().String()},
	} {
		dir := t.TempDir()
		conf := filepath.Join(dir, "protolake.yaml")
		yaml := fmt.Sprintf("kafka: {brokers: [\"127.0.0.1:1\"], group_id: lake}\ntables:\n  - uri: %s\n    topics: [orders]\n    message: shop.Order\n    descriptor_set: %s\n",
			filepath.Join(dir, "orders"), testProto+"/evolution/v1/order.binpb")
		if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runCLI(t, "run", "--config", conf, "--http.listen="+tc.listen)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("--http.listen=%s: exit %d, stderr %q; want 2 and %q (stdout %q)", tc.listen, code, errOut, tc.want, out)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("--http.listen=%s left %v behind", tc.listen, names)
		}
	}
}
