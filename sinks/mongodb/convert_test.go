package mongodb

import (
	"hash/maphash"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sluicehq/sluice/pipeline"
)

func testEvent(id string, body string) *pipeline.Event {
	return &pipeline.Event{
		ID: id, Key: []byte("contact:1"),
		Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Body: []byte(body), Payload: []byte(body),
	}
}

func extJSON(t *testing.T, d bson.D) string {
	t.Helper()
	b, err := bson.MarshalExtJSON(d, false, false)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func defaults(mutate func(*UpdateConfig)) UpdateConfig {
	var c Config
	c.SetDefaults()
	if mutate != nil {
		mutate(&c.Update)
	}
	return c.Update
}

func TestUpdateDocument(t *testing.T) {
	const body = `{"id":"e1","type":"contact.updated","data":{"Email":"ada@x.io","Name":"Ada","Score":7,"Ratio":0.5,"Tags":["a","b"]},"_id":"ignored","_applied":"ignored"}`
	tests := []struct {
		name   string
		update func(*UpdateConfig)
		want   string
	}{
		{
			name: "default: $set the body, guard with the applied list",
			want: `{"$set":{"id":"e1","type":"contact.updated","data":{"Email":"ada@x.io","Name":"Ada","Score":7,"Ratio":0.5,"Tags":["a","b"]}},` +
				`"$push":{"_applied":{"$each":["e1"],"$slice":-100}}}`,
		},
		{
			name: "every operator, a bounded timeline, typed values",
			update: func(u *UpdateConfig) {
				u.Set = map[string]string{"email": "data.Email", "name": "data.Name", "score": "data.Score", "ratio": "data.Ratio", "tags": "data.Tags", "missing": "data.Nope"}
				u.SetOnInsert = map[string]string{"first_seen": "$time", "first_event": "$id"}
				u.Inc = map[string]int64{"stats.events": 1}
				u.Max = map[string]string{"last_seen": "$time"}
				u.Push = map[string]PushConfig{"timeline": {Keep: 20, Value: map[string]string{"id": "$id", "type": "type", "at": "$time"}}}
				u.AppliedKeep = 50
			},
			want: `{"$set":{"email":"ada@x.io","name":"Ada","ratio":0.5,"score":7,"tags":["a","b"]},` +
				`"$setOnInsert":{"first_event":"e1","first_seen":{"$date":"2026-03-01T12:00:00Z"}},` +
				`"$inc":{"stats.events":1},` +
				`"$max":{"last_seen":{"$date":"2026-03-01T12:00:00Z"}},` +
				`"$push":{"_applied":{"$each":["e1"],"$slice":-50},` +
				`"timeline":{"$each":[{"at":{"$date":"2026-03-01T12:00:00Z"},"id":"e1","type":"contact.updated"}],"$slice":-20}}}`,
		},
		{
			name: "set_body with operators: body fields the operators own are left to them",
			update: func(u *UpdateConfig) {
				yes := true
				u.SetBody = &yes
				u.Inc = map[string]int64{"data.Score": 1}
				u.AppliedField = "_seen"
				u.AppliedKeep = 3
			},
			want: `{"$set":{"id":"e1","type":"contact.updated","_applied":"ignored"},"$inc":{"data.Score":1},` +
				`"$push":{"_seen":{"$each":["e1"],"$slice":-3}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := defaults(tt.update)
			if err := errorsOf(u.validate()); err != "" {
				t.Fatalf("config invalid: %s", err)
			}
			ev := testEvent("e1", body)
			bd, err := bodyDoc(ev)
			if err != nil {
				t.Fatal(err)
			}
			upd, err := u.updateDoc(ev, bd)
			if err != nil {
				t.Fatal(err)
			}
			if got := extJSON(t, upd); got != tt.want {
				t.Errorf("update\n got %s\nwant %s", got, tt.want)
			}
			// The same event always yields the same bytes (map order
			// must not leak in), and the filter excludes replays.
			again, _ := u.updateDoc(ev, bd)
			if extJSON(t, again) != extJSON(t, upd) {
				t.Error("updateDoc is not deterministic")
			}
			wantFilter := `{"_id":"c1","` + u.AppliedField + `":{"$ne":"e1"}}`
			if got := extJSON(t, u.upsertFilter("c1", ev)); got != wantFilter {
				t.Errorf("filter %s, want %s", got, wantFilter)
			}
		})
	}
}

func errorsOf(errs []error) string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Error())
	}
	return strings.Join(s, "; ")
}

func TestFullDocAndBody(t *testing.T) {
	tests := []struct {
		name, body, want, err string
	}{
		{"_id first, body _id replaced", `{"_id":"x","a":1,"b":{"c":[1,2.5,"s",null,true]}}`, `{"_id":"k","a":1,"b":{"c":[1,2.5,"s",null,true]}}`, ""},
		{"extended JSON dates", `{"at":{"$date":"2026-03-01T12:00:00Z"}}`, `{"_id":"k","at":{"$date":"2026-03-01T12:00:00Z"}}`, ""},
		{"large integers stay integers", `{"n":9007199254740993}`, `{"_id":"k","n":9007199254740993}`, ""},
		{"no body", ``, "", "no decoded body"},
		{"not an object", `[1,2]`, "", "not a BSON-compatible JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := testEvent("e1", tt.body)
			if tt.body == "" {
				ev.Body = nil
			}
			d, err := bodyDoc(ev)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := extJSON(t, fullDoc("k", d)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// The fast path (plain JSON) and the driver's Extended JSON reader build
// the same BSON bytes.
func TestFastPathMatchesExtendedJSON(t *testing.T) {
	for _, body := range []string{
		`{"a":1,"b":-2147483649,"c":2.5,"d":1e3,"e":"s\u00e9\"q","f":null,"g":[true,false,{"h":[]}],"i":{},"j":{"k":{"l":9007199254740993}}}`,
		`{"unicode":"日本","esc":"a\nb","neg":-0.0,"big":123456789012345678901234567890}`,
	} {
		ev := testEvent("e1", body)
		fast, err := bodyDoc(ev)
		if err != nil {
			t.Fatal(err)
		}
		var slow bson.D
		if err := bson.UnmarshalExtJSON([]byte(body), false, &slow); err != nil {
			t.Fatal(err)
		}
		fb, _ := bson.Marshal(fast)
		sb, _ := bson.Marshal(slow)
		if string(fb) != string(sb) {
			t.Errorf("body %s\nfast %s\nslow %s", body, bson.Raw(fb), bson.Raw(sb))
		}
	}
}

func TestSplitKeepsOneIDInOneTaskAndBoundsBulks(t *testing.T) {
	s := &Sink{cfg: Config{MaxBatch: 10, Parallelism: 3}, seed: maphash.MakeSeed()}
	var ops []op
	for i := range 95 {
		ops = append(ops, op{index: i, id: string(rune('a' + i%7))})
	}
	tasks := s.split("c", ops)
	if len(tasks) < 2 || len(tasks) > 3 {
		t.Fatalf("%d tasks, want 2 or 3", len(tasks))
	}
	owner := map[string]int{}
	total := 0
	for ti, task := range tasks {
		last := -1
		for _, chunk := range task.chunks {
			if len(chunk) > 10 {
				t.Fatalf("chunk of %d ops over max_batch 10", len(chunk))
			}
			for _, o := range chunk {
				total++
				if prev, ok := owner[o.id]; ok && prev != ti {
					t.Fatalf("_id %s split across tasks %d and %d", o.id, prev, ti)
				}
				owner[o.id] = ti
				if o.index < last {
					t.Fatalf("task %d runs op %d after %d", ti, o.index, last)
				}
				last = o.index
			}
		}
	}
	if total != 95 {
		t.Fatalf("%d ops in tasks, want 95", total)
	}
}

func TestRedact(t *testing.T) {
	uri := "mongodb://app:s3cret@db1:27017,db2:27017/?replicaSet=rs0"
	if got := redactURI(uri); strings.Contains(got, "s3cret") || !strings.Contains(got, "db1") {
		t.Errorf("redactURI = %q", got)
	}
	if got := redactErr(errSample("auth failed for app:s3cret"), uri).Error(); strings.Contains(got, "s3cret") {
		t.Errorf("redactErr = %q", got)
	}
}

type errSample string

func (e errSample) Error() string { return string(e) }
