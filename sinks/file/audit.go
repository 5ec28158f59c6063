package file

import (
	"bufio"
	"context"
	"os"
	"regexp"

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

// Reset removes the file.
func (f *fileAudit) Reset(context.Context) error {
	if err := os.Remove(f.path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// payloadID finds the event id at the start of a dead letter's original
// payload: a malformed payload cannot be decoded, but its id is readable.
var payloadID = regexp.MustCompile(`"id":"([^"]+)"`)

func (f *fileAudit) Counts(context.Context, map[string]int) (map[string]int, error) {
	out := map[string]int{}
	file, err := os.Open(f.path)
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
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
	return out, sc.Err()
}
