package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A setting that is valid but opts out of a check passes validate with a
// warning at its file:line; a missing required check is an error there.
func TestValidateWarnsWithFileLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, ses, want string
		code            int
	}{
		{"allow_any_topic warns", "allow_any_topic: true", "hooks.yaml:7: source.webhooks.ses.allow_any_topic: warning: any AWS account's SNS topic is accepted", 0},
		{"no topic rule fails", "regions: [us-east-1]", "hooks.yaml:7: source.webhooks.ses.topic_arns: is required", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, "hooks.yaml")
			doc := "name: hooks\nsource:\n  webhooks:\n    listen: 127.0.0.1:0\n    mailgun: {signing_key: k}\n    ses:\n      " + tc.ses + "\nsinks: [{stdout: {}}]\n"
			if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			if code := execute([]string{"validate", "-c", f}, &out, &errOut); code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, errOut.String())
			}
			if want := filepath.Join(dir, tc.want); !strings.Contains(errOut.String(), want) {
				t.Fatalf("stderr:\n%s\nwant %q", errOut.String(), want)
			}
		})
	}
}
