package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Item 2 of issue 15: a secret from the environment appears in no log line
// and no error, of a failing run or of a failing validate.
func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "s3cr3t-Pa55word-9f8e7d"
	t.Setenv("SLUICE_TEST_SECRET", secret)
	dir := t.TempDir()
	write := func(name, yaml string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	in := write("in.jsonl", `{"id":"e1"}`+"\n")
	check := func(t *testing.T, what string, out ...string) {
		t.Helper()
		all := strings.Join(out, "\n")
		for _, form := range []string{secret, "s3cr3t"} {
			if strings.Contains(all, form) {
				t.Fatalf("%s printed the secret:\n%s", what, all)
			}
		}
	}

	t.Run("failing run against an unreachable Elasticsearch", func(t *testing.T) {
		cfg := write("run.yaml", "name: leak\nsource: {file: {path: "+in+"}}\ntransforms: [{decode: {format: json}}]\n"+
			"sinks:\n  - elasticsearch:\n      urls: [\"http://elastic:${SLUICE_TEST_SECRET}@127.0.0.1:1\"]\n      index: leak\n"+
			"retry: {initial_interval: 1ms, max_interval: 2ms, max_attempts: 2}\n")
		for _, format := range []string{"json", "text"} {
			var out, errOut bytes.Buffer
			code := execute([]string{"run", "-c", cfg, "--log-format", format, "--log-level", "debug"}, &out, &errOut)
			if code == 0 {
				t.Fatalf("exit 0; want the run to fail:\n%s", errOut.String())
			}
			if !strings.Contains(errOut.String(), "127.0.0.1:1") {
				t.Fatalf("the failure does not say where it failed:\n%s", errOut.String())
			}
			check(t, "run --log-format "+format, out.String(), errOut.String())
		}
	})

	for _, tc := range []struct{ name, sink, want string }{
		{"Elasticsearch URL with a bad scheme", "elasticsearch: {urls: [\"ftp://elastic:${SLUICE_TEST_SECRET}@h\"], index: x}", "urls[0]"},
		{"Kafka broker with userinfo", "kafka: {brokers: [\"user:${SLUICE_TEST_SECRET}@b:9092\"], topic: t}", "brokers"},
		{"mistyped field", "kafka: {brokers: [\"b:9092\"], topic: t, max_message_bytes: \"${SLUICE_TEST_SECRET}\"}", "max_message_bytes"},
	} {
		t.Run("validate: "+tc.name, func(t *testing.T) {
			cfg := write("v.yaml", "name: leak\nsource: {file: {path: "+in+"}}\nsinks:\n  - "+tc.sink+"\n")
			var out, errOut bytes.Buffer
			if code := execute([]string{"validate", "-c", cfg}, &out, &errOut); code == 0 {
				t.Fatalf("validate passed:\n%s", out.String())
			}
			e := errOut.String()
			if !strings.Contains(e, tc.want) || !strings.Contains(e, "${SLUICE_TEST_SECRET}") && !strings.Contains(e, ":xxxxx@") {
				t.Fatalf("the error does not name %s and the variable (or a redacted URL):\n%s", tc.want, e)
			}
			check(t, "validate", out.String(), errOut.String())
		})
	}
	t.Run("validate: Redis address as a URL", func(t *testing.T) {
		cfg := write("r.yaml", "name: leak\nsource: {file: {path: "+in+"}}\ntransforms:\n  - dedupe: {key: [id], store: redis, redis: {addr: \"redis://:${SLUICE_TEST_SECRET}@h:6379\"}}\nsinks: [{stdout: {}}]\n")
		var out, errOut bytes.Buffer
		if code := execute([]string{"validate", "-c", cfg}, &out, &errOut); code == 0 {
			t.Fatalf("validate passed:\n%s", out.String())
		}
		check(t, "validate", out.String(), errOut.String())
	})
}
