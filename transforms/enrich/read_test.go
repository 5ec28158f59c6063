package enrich

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/internal/envelope"
)

// readReference is (*mapping).read by definition, as it read before the
// path tree: every path read on its own, the first occurrence of its
// top-level key, then gjson.Get below it; the guard applied after.
func readReference(m *mapping, data gjson.Result) (out [maxSlots]gjson.Result, admitted bool) {
	paths := m.slotPaths()
	for slot, p := range paths {
		if p == "" {
			continue
		}
		if each := m.each[slot]; each != "" {
			p = p[:len(p)-len(".#.")-len(each)]
		}
		top, rest, nested := strings.Cut(p, ".")
		data.ForEach(func(k, v gjson.Result) bool {
			if k.Str != top {
				return true
			}
			if out[slot] = v; nested {
				out[slot] = v.Get(rest)
			}
			return false
		})
	}
	g := out[slotGuard]
	switch {
	case m.is.path == "":
		admitted = true
	case m.is.want == "":
		admitted = g.Exists()
	default:
		admitted = !g.Exists() || g.Str == m.is.want
	}
	return out, admitted
}

func allMappings() []*mapping {
	var ms []*mapping
	for _, v := range vendors {
		ms = append(ms, v.def)
		for _, t := range v.types {
			ms = append(ms, t.mapping)
		}
	}
	return ms
}

// FuzzMappingRead: reading a record in one walk of its objects finds what
// one gjson.Get per path finds (for an admitted record; a rejected one
// only needs to be rejected), for every mapping and any data.
func FuzzMappingRead(f *testing.F) {
	for _, s := range []string{
		`{"properties":{"email":"a@b.c","firstname":"A","email":"dup"},"id":"1","archived":false}`,
		`{"event-data":{"message":{"headers":{"message-id":"m1","subject":"s"}},"recipient":"x@y.z","delivery-status":{"code":550}},"event-data":{"id":"second"}}`,
		`{"attributes":{"type":"Lead"},"Id":"00Q","Email":"a@b.c","attributes":{"type":"Contact"}}`,
		`{"attributes":{"url":"/x"},"Id":"003"}`,
		`{"email_addresses":[{"value":"a@b.c"}],"applications":[{"id":1,"current_stage":{"name":"x"}}],"candidate_id":3}`,
		`{"mail":{"destination":["a@b.c"],"messageId":"m"},"bounce":{"bouncedRecipients":[{"status":"5.1.1"}]},"mail":"scalar"}`,
		`{"emails":"not an array","departments":[{"name":"a"},{"name":"b"}]}`,
		`{"a\u0074tributes":{"type":"Task"},"Id":"x"}`,
	} {
		f.Add([]byte(s))
	}
	ms := allMappings()
	f.Fuzz(func(t *testing.T, body []byte) {
		if !gjson.ValidBytes(body) {
			return
		}
		data := gjson.ParseBytes(body)
		if !data.IsObject() {
			return
		}
		for _, m := range ms {
			var got [maxSlots]gjson.Result
			envelope.WalkPaths(&m.paths, data, got[:])
			ok := m.admits(&got)
			want, wantOK := readReference(m, data)
			if ok != wantOK {
				t.Fatalf("%s mapping, %s: admitted %v, want %v", m.kind, body, ok, wantOK)
			}
			if !ok {
				continue
			}
			for s := range got {
				if got[s].Raw != want[s].Raw || got[s].Type != want[s].Type {
					t.Fatalf("%s mapping, %s: slot %d = %q, want %q", m.kind, body, s, got[s].Raw, want[s].Raw)
				}
			}
		}
	})
}
