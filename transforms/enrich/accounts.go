package enrich

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// loadAccounts reads a domain → account fields table and renders each
// account as the JSON object enrich embeds.
func loadAccounts(path string) (map[string][]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rows := map[string]map[string]any{}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		r := csv.NewReader(bytes.NewReader(raw))
		header, err := r.Read()
		if err != nil {
			return nil, fmt.Errorf("%s: read header: %w", path, err)
		}
		col := -1
		for i, h := range header {
			header[i] = strings.TrimSpace(h)
			if header[i] == "domain" {
				col = i
			}
		}
		if col < 0 {
			return nil, fmt.Errorf("%s: no domain column in the header", path)
		}
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			fields := map[string]any{}
			for i, v := range rec {
				if i != col {
					fields[header[i]] = v
				}
			}
			rows[strings.ToLower(strings.TrimSpace(rec[col]))] = fields
		}
	case ".json":
		var byDomain map[string]map[string]any
		if err := json.Unmarshal(raw, &byDomain); err == nil {
			for d, f := range byDomain {
				rows[strings.ToLower(strings.TrimSpace(d))] = f
			}
			break
		}
		var list []map[string]any
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("%s: want {\"domain\": {fields}} or [{\"domain\": ..., fields}]: %w", path, err)
		}
		for i, f := range list {
			d, _ := f["domain"].(string)
			if d == "" {
				return nil, fmt.Errorf("%s: entry %d has no domain", path, i)
			}
			delete(f, "domain")
			rows[strings.ToLower(strings.TrimSpace(d))] = f
		}
	default:
		return nil, fmt.Errorf("%s: want a .csv or .json file", path)
	}
	out := make(map[string][]byte, len(rows))
	for d, f := range rows {
		b, err := json.Marshal(f)
		if err != nil {
			return nil, fmt.Errorf("%s: domain %s: %w", path, d, err)
		}
		out[d] = b
	}
	return out, nil
}
