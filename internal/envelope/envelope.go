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

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/pipeline"
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
	buf = pipeline.AppendJSONString(buf, e.ID)
	buf = append(buf, `,"`+Source+`":`...)
	buf = pipeline.AppendJSONString(buf, e.Source)
	buf = append(buf, `,"`+Type+`":`...)
	buf = pipeline.AppendJSONString(buf, e.Type)
	buf = append(buf, `,"`+AccountID+`":`...)
	buf = pipeline.AppendJSONString(buf, e.AccountID)
	buf = append(buf, `,"`+OccurredAt+`":`...)
	buf = pipeline.AppendJSONString(buf, e.OccurredAt)
	if e.SystemModifiedAt != "" {
		buf = append(buf, `,"`+SystemModifiedAt+`":`...)
		buf = pipeline.AppendJSONString(buf, e.SystemModifiedAt)
	}
	buf = append(buf, `,"`+Key+`":`...)
	keyAt = len(buf) + 1
	buf = pipeline.AppendJSONString(buf, e.Key)
	buf = append(buf, `,"`+Data+`":`...)
	return buf, keyAt
}

// Fields is an envelope as Read finds it, one accessor per field: each
// value points into the body read (no copies), and one not found does not
// Exist. The values are kept in an array because indexing it keeps Read as
// fast as the by-position reader enrich had (named fields measured ~8%
// slower in BenchmarkRead).
type Fields struct {
	r [nFields]gjson.Result // by the indexes below
}

// Indexes into Fields.r: the six every envelope has first.
const (
	iID = iota
	iSource
	iType
	iAccountID
	iOccurredAt
	iData
	iSystemModifiedAt
	iKey
	nFields
)

func (f *Fields) ID() gjson.Result               { return f.r[iID] }
func (f *Fields) Source() gjson.Result           { return f.r[iSource] }
func (f *Fields) Type() gjson.Result             { return f.r[iType] }
func (f *Fields) AccountID() gjson.Result        { return f.r[iAccountID] }
func (f *Fields) OccurredAt() gjson.Result       { return f.r[iOccurredAt] }
func (f *Fields) SystemModifiedAt() gjson.Result { return f.r[iSystemModifiedAt] }
func (f *Fields) Key() gjson.Result              { return f.r[iKey] }
func (f *Fields) Data() gjson.Result             { return f.r[iData] }

// Read reads body's envelope fields in one pass over its top-level keys,
// stopping once the six every envelope has (id, source, type, account_id,
// occurred_at, data) are found: system_modified_at and key are read when
// they come before that point, as every writer puts them (before data).
// Waiting for a key some envelopes lack would walk past data to the end of
// every body. Of a key given twice the first counts. A body that is not an
// object leaves every field absent.
func Read(body string, f *Fields) {
	f.r = [nFields]gjson.Result{}
	left := 6
	gjson.Parse(body).ForEach(func(k, v gjson.Result) bool {
		i := -1
		switch k.Str {
		case ID:
			i = iID
		case Source:
			i = iSource
		case Type:
			i = iType
		case AccountID:
			i = iAccountID
		case OccurredAt:
			i = iOccurredAt
		case Data:
			i = iData
		case SystemModifiedAt:
			i = iSystemModifiedAt
		case Key:
			i = iKey
		}
		if i >= 0 && !f.r[i].Exists() {
			f.r[i] = v
			if i < iSystemModifiedAt { // one of the six every envelope has
				left--
			}
		}
		return left > 0
	})
}
