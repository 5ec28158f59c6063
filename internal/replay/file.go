package replay

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/sluicehq/sluice/pipeline"
)

// maxLine bounds one dead-letter line (the file sink writes one per event).
const maxLine = 64 << 20

// fileReader reads a dead-letter file (JSON lines of pipeline.DeadLetter)
// up to the size it had when opened.
type fileReader struct {
	path string
	f    *os.File
	sc   *bufio.Scanner
	size int64
	line int
	max  int
}

func openFile(path string, batch int) (*fileReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open dead-letter file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("dead-letter file %s: %w", path, err)
	}
	sc := bufio.NewScanner(io.LimitReader(f, st.Size()))
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	return &fileReader{path: path, f: f, sc: sc, size: st.Size(), max: batch}, nil
}

// Total is unknown in records up front; the file's size in bytes is no
// record count, so a file reports 0 (no percentage).
func (r *fileReader) Total() int64 { return 0 }

func (r *fileReader) Describe() string {
	return r.path + " up to byte " + strconv.FormatInt(r.size, 10)
}

// Next returns the next dead letters; a line that is not a dead letter is
// an error naming its line, not something to skip silently.
func (r *fileReader) Next(ctx context.Context) ([]Record, error) {
	var out []Record
	for len(out) < r.max {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if !r.sc.Scan() {
			if err := r.sc.Err(); err != nil {
				return out, fmt.Errorf("%s:%d: %w", r.path, r.line+1, err)
			}
			if len(out) == 0 {
				return nil, io.EOF
			}
			return out, nil
		}
		r.line++
		if len(r.sc.Bytes()) == 0 {
			continue
		}
		var dl pipeline.DeadLetter
		if err := json.Unmarshal(r.sc.Bytes(), &dl); err != nil {
			return out, fmt.Errorf("%s:%d: not a dead letter: %w", r.path, r.line, err)
		}
		if dl.Reason == "" || dl.ID == "" {
			return out, fmt.Errorf("%s:%d: not a dead letter (no id or reason)", r.path, r.line)
		}
		rec, err := fromEnvelope(r.path+":"+strconv.Itoa(r.line), &dl)
		if err != nil {
			return out, fmt.Errorf("%s:%d: payload: %w", r.path, r.line, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

func (r *fileReader) Close() error { return r.f.Close() }
