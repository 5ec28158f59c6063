package generate

import (
	"bytes"
	"strconv"
	"testing"
	"time"
)

// oldAppendEvent is appendEvent as it wrote the envelope's head by hand
// before internal/envelope owned it, kept as the reference its output must
// match byte for byte (the data and notes after the head are appendData's
// in both). It returns the index in buf where the partition key's text
// starts.
func (g *Generator) oldAppendEvent(buf []byte, id string, family, entity int, now time.Time, target int) ([]byte, int) {
	start := len(buf)
	vendor := vendorOf(family, entity)
	p := person(entity, g.w.Accounts)
	buf = append(buf, `{"id":"`...)
	buf = append(buf, id...)
	buf = append(buf, `","source":"`...)
	buf = append(buf, vendor...)
	buf = append(buf, `","type":"`...)
	kind := g.rng.IntN(len(emailKinds))
	switch family {
	case 0:
		buf = append(buf, crmTypes[g.rng.IntN(len(crmTypes))]...)
	case 1:
		buf = append(buf, atsTypes[g.rng.IntN(len(atsTypes))]...)
	default:
		buf = append(buf, emailKinds[kind]...)
	}
	buf = append(buf, `","account_id":"acct_`...)
	buf = strconv.AppendInt(buf, int64(p.account), 10)
	buf = append(buf, `","occurred_at":"`...)
	buf = now.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","key":"`...)
	keyStart := len(buf)
	buf = append(buf, vendor...)
	buf = append(buf, ':')
	buf = strconv.AppendInt(buf, int64(entity), 10)
	buf = append(buf, `","data":`...)
	return g.appendData(buf, vendor, p, entity, kind, now, start, target), keyStart
}

func TestAppendEventMatchesOldWriter(t *testing.T) {
	w := Workload{Mix: Mix{CRM: 1, ATS: 1, Email: 1}, MinSize: 200, MaxSize: 3000, Entities: 100000, Accounts: 50, Seed: 7}
	clock := func() time.Time { return time.Date(2026, 11, 19, 11, 18, 52, 120000000, time.UTC) }
	gNew, gOld := NewGenerator(w, clock), NewGenerator(w, clock)
	times := []time.Time{clock(), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 987654321, time.UTC)}
	for i := 0; i < 3000; i++ {
		family, entity := i%3, (i*7919)%w.Entities
		target := 100 + (i*37)%2000 // some below the envelope's size: no notes
		id := "evt_" + strconv.Itoa(i)
		now := times[i%len(times)]
		prefix := []byte("prefix")
		got, gotKey := gNew.appendEvent(append([]byte(nil), prefix...), id, family, entity, now, target)
		want, wantKey := gOld.oldAppendEvent(append([]byte(nil), prefix...), id, family, entity, now, target)
		if !bytes.Equal(got, want) || gotKey != wantKey {
			t.Fatalf("event %d differs (key at %d, want %d):\n got %s\nwant %s", i, gotKey, wantKey, got, want)
		}
	}
}

// The envelope writer adds no allocation per event to the generator.
func TestAppendEventAllocatesNoMoreThanOldWriter(t *testing.T) {
	w := Workload{Mix: Mix{CRM: 1, ATS: 1, Email: 1}, MinSize: 900, MaxSize: 1100, Entities: 1000, Seed: 3}
	clock := func() time.Time { return time.Date(2026, 11, 19, 11, 18, 52, 120000000, time.UTC) }
	gNew, gOld := NewGenerator(w, clock), NewGenerator(w, clock)
	buf := make([]byte, 0, 1<<16)
	i := 0
	allocs := func(f func(buf []byte, id string, family, entity int, now time.Time, target int) ([]byte, int)) float64 {
		return testing.AllocsPerRun(300, func() {
			i++
			f(buf[:0], "evt_1", i%3, i%1000, clock(), 1000)
		})
	}
	newAllocs, oldAllocs := allocs(gNew.appendEvent), allocs(gOld.oldAppendEvent)
	if newAllocs > oldAllocs {
		t.Fatalf("appendEvent allocates %.2f per event, the old writer %.2f", newAllocs, oldAllocs)
	}
	t.Logf("allocs per event: new %.2f, old %.2f", newAllocs, oldAllocs)
}
