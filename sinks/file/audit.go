package file

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
)

var _ pipeline.Auditor = (*Config)(nil)

// Audit reads the file back: one count per line, by the line's "id" (for a
// dead letter, the id in its original payload).
func (c *Config) Audit(context.Context, string) (pipeline.StoreAudit, error) {
	return &fileAudit{path: c.Path}, nil
}

type fileAudit struct{ path string }

func (f *fileAudit) Name() string     { return "file " + f.path }
func (f *fileAudit) Idempotent() bool { return false }

// Reset removes the file (every file, for a glob pattern).
func (f *fileAudit) Reset(context.Context) error {
	paths, err := f.paths()
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// paths is the file, or, for a path with a glob pattern (the bench's chaos
// profile runs several consumers that write one file each), every file it
// matches.
func (f *fileAudit) paths() ([]string, error) {
	if !strings.ContainsAny(f.path, "*?[") {
		return []string{f.path}, nil
	}
	return filepath.Glob(f.path)
}

// payloadID finds the event id at the start of a dead letter's original
// payload: a malformed payload cannot be decoded, but its id is readable.
var payloadID = regexp.MustCompile(`"id":"([^"]+)"`)

// Counts counts the ids of every line of the file (files, for a glob).
func (f *fileAudit) Counts(context.Context, map[string]int) (map[string]int, error) {
	out := map[string]int{}
	paths, err := f.paths()
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		if err := countFile(p, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// countFile adds the ids of one JSON-lines file to out.
func countFile(path string, out map[string]int) error {
	file, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		id := gjson.GetBytes(line, "id").String()
		if gjson.GetBytes(line, "failed_at").Exists() {
			// A dead letter: its id is the source's; the business id is
			// in the original payload.
			orig := gjson.GetBytes(line, "payload_text").String() + gjson.GetBytes(line, "payload").Raw
			if m := payloadID.FindStringSubmatch(orig); m != nil {
				id = m[1]
			}
		}
		out[id]++
	}
	return sc.Err()
}
