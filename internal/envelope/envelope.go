// Package envelope owns the event envelope every vendor source writes and
// transforms/enrich reads:
//
//	{"id":…,"source":…,"type":…,"account_id":…,"occurred_at":…,
//	 ["system_modified_at":…,] "key":…,"data":<the vendor record>}
//
// The field names are the constants below; Envelope.Append (or AppendHead,
// for a writer that appends data itself) is the one writer and Read the one
// reader. The fields are written in the order above, and Read relies on
// data coming last among them.
package envelope

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Field names of the envelope, in the order Append writes them.
const (
	ID               = "id"
	Source           = "source"
	Type             = "type"
	AccountID        = "account_id"
	OccurredAt       = "occurred_at"
	SystemModifiedAt = "system_modified_at" // optional: the pollers' system stamp when it differs from occurred_at
	Key              = "key"
	Data             = "data"
)

// Envelope is one event's envelope. The JSON tags let tests decode one
// with encoding/json; the sources write it with Append.
type Envelope struct {
	ID               string          `json:"id"`
	Source           string          `json:"source"`
	Type             string          `json:"type"`
	AccountID        string          `json:"account_id"`
	OccurredAt       string          `json:"occurred_at"`
	SystemModifiedAt string          `json:"system_modified_at,omitempty"`
	Key              string          `json:"key"`
	Data             json.RawMessage `json:"data"`
}

// Append appends the envelope as one JSON object. Data is appended as it
// is (the caller owns its validity; a source that cannot vouch for it
// passes it through json.Marshal first); empty Data is written as null.
func (e *Envelope) Append(buf []byte) []byte {
	buf, _ = e.AppendHead(buf)
	if len(e.Data) == 0 {
		buf = append(buf, "null"...)
	} else {
		buf = append(buf, e.Data...)
	}
	return append(buf, '}')
}

// AppendHead appends every field but data's value, ending in `"data":`:
// the caller appends the value, any fields of its own, and the closing
// '}'. keyAt is the index in the result where the key's (escaped) text
// starts, so a source can point its event key into the payload.
func (e *Envelope) AppendHead(buf []byte) (out []byte, keyAt int) {
	buf = append(buf, `{"`+ID+`":`...)
	buf = AppendString(buf, e.ID)
	buf = append(buf, `,"`+Source+`":`...)
	buf = AppendString(buf, e.Source)
	buf = append(buf, `,"`+Type+`":`...)
	buf = AppendString(buf, e.Type)
	buf = append(buf, `,"`+AccountID+`":`...)
	buf = AppendString(buf, e.AccountID)
	buf = append(buf, `,"`+OccurredAt+`":`...)
	buf = AppendString(buf, e.OccurredAt)
	if e.SystemModifiedAt != "" {
		buf = append(buf, `,"`+SystemModifiedAt+`":`...)
		buf = AppendString(buf, e.SystemModifiedAt)
	}
	buf = append(buf, `,"`+Key+`":`...)
	keyAt = len(buf) + 1
	buf = AppendString(buf, e.Key)
	buf = append(buf, `,"`+Data+`":`...)
	return buf, keyAt
}

// AppendString appends s as a JSON string exactly as encoding/json writes
// it: <, > and & escaped, invalid UTF-8 replaced by U+FFFD. The common
// case (printable ASCII needing no escape) appends without allocating.
func AppendString(buf []byte, s string) []byte {
	if plain(s) {
		buf = append(buf, '"')
		buf = append(buf, s...)
		return append(buf, '"')
	}
	b, _ := json.Marshal(s) // a string always marshals
	return append(buf, b...)
}

func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// Fields is an envelope as Read finds it: each value points into the body
// read (no copies), and one not found does not Exist.
type Fields struct {
	ID, Source, Type, AccountID, OccurredAt, SystemModifiedAt, Key, Data gjson.Result
}

// Read reads body's envelope fields in one pass over its top-level keys,
// stopping once the six every envelope has (id, source, type, account_id,
// occurred_at, data) are found: system_modified_at and key are read when
// they come before that point, as every writer puts them (before data).
// Waiting for a key some envelopes lack would walk past data to the end of
// every body. Of a key given twice the first counts. A body that is not an
// object leaves every field absent.
func Read(body string, f *Fields) {
	*f = Fields{}
	left := 6
	gjson.Parse(body).ForEach(func(k, v gjson.Result) bool {
		var p *gjson.Result
		required := true
		switch k.Str {
		case ID:
			p = &f.ID
		case Source:
			p = &f.Source
		case Type:
			p = &f.Type
		case AccountID:
			p = &f.AccountID
		case OccurredAt:
			p = &f.OccurredAt
		case Data:
			p = &f.Data
		case SystemModifiedAt:
			p, required = &f.SystemModifiedAt, false
		case Key:
			p, required = &f.Key, false
		}
		if p != nil && !p.Exists() {
			*p = v
			if required {
				left--
			}
		}
		return left > 0
	})
}
