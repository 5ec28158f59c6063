// Package generate is a source of realistic synthetic CRM, ATS and email
// events: the demo's input and the bench's workload.
package generate

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
	"unsafe"

	"github.com/sluicehq/sluice/internal/envelope"
	"github.com/sluicehq/sluice/pipeline"
)

// Mix is the share of each event family; it need not sum to 1.
type Mix struct {
	CRM   float64 `yaml:"crm"`
	ATS   float64 `yaml:"ats"`
	Email float64 `yaml:"email"`
}

// Workload describes what a Generator produces.
type Workload struct {
	Mix Mix
	// Duplicates is the share of events that repeat an earlier event with
	// the same ID and payload, as a redelivering source would.
	Duplicates float64
	// Poison is the share of events whose payload is malformed JSON: they
	// must end in the dead-letter sink.
	Poison float64
	// Entities is how many distinct records (contacts, candidates,
	// recipients) events are about; events of one entity share a key.
	Entities int
	// Accounts is how many customer accounts the entities belong to.
	Accounts int
	Seed     uint64
	// MinSize and MaxSize bound payload sizes in bytes.
	MinSize, MaxSize int
}

// Generator produces a deterministic sequence of events for a Workload.
// It is not safe for concurrent use.
type Generator struct {
	w       Workload
	rng     *rand.Rand
	n       uint64
	recent  []recentEvent // ring of emitted events, for duplicates
	recentI int
	cum     [3]float64
	now     func() time.Time
	scratch []byte // appendEvent's envelope strings
}

type recentEvent struct {
	id      string
	key     []byte
	payload []byte
	time    time.Time
}

const recentSize = 4096

// NewGenerator returns a generator for w; now stamps event times. It is
// the library under the generate source, not a component constructor:
// benchmarks and tests draw events from it directly, at no rate and with a
// clock of their own.
func NewGenerator(w Workload, now func() time.Time) *Generator {
	if w.Entities <= 0 {
		w.Entities = 10000
	}
	if w.Accounts <= 0 {
		w.Accounts = 200
	}
	if w.MinSize <= 0 {
		w.MinSize = 512
	}
	if w.MaxSize < w.MinSize {
		w.MaxSize = 5 * 1024
	}
	total := w.Mix.CRM + w.Mix.ATS + w.Mix.Email
	if total <= 0 {
		w.Mix, total = Mix{CRM: 0.5, ATS: 0.2, Email: 0.3}, 1
	}
	g := &Generator{w: w, rng: rand.New(rand.NewPCG(w.Seed, w.Seed^0x9e3779b97f4a7c15)), now: now}
	g.cum = [3]float64{w.Mix.CRM / total, (w.Mix.CRM + w.Mix.ATS) / total, 1}
	return g
}

// Emitted is how many events Next produced, duplicates included.
func (g *Generator) Emitted() uint64 { return g.n }

// Next fills ev with the next event, appending its payload to buf, and
// returns buf. The event's Payload and Key point into buf, capped so that
// later appends never write through them.
func (g *Generator) Next(ev *pipeline.Event, buf []byte) []byte {
	g.n++
	if len(g.recent) > 0 && g.w.Duplicates > 0 && g.rng.Float64() < g.w.Duplicates {
		r := &g.recent[g.rng.IntN(len(g.recent))]
		ev.ID, ev.Key, ev.Payload, ev.Time = r.id, r.key, r.payload, r.time
		ev.Body, ev.Meta = nil, nil
		return buf
	}
	now := g.now().UTC()
	entity := g.rng.IntN(g.w.Entities)
	family := g.pickFamily()
	target := g.pickSize()
	start := len(buf)
	id := g.eventID()
	buf, keyStart := g.appendEvent(buf, id, family, entity, now, target)
	payload := buf[start:len(buf):len(buf)]
	if g.w.Poison > 0 && g.rng.Float64() < g.w.Poison {
		payload = payload[: len(payload)/2 : len(payload)/2]
	}
	keyEnd := keyStart
	for keyEnd < len(buf) && buf[keyEnd] != '"' {
		keyEnd++
	}
	ev.ID = id
	ev.Key = buf[keyStart:keyEnd:keyEnd]
	ev.Payload = payload
	ev.Time = now
	ev.Body, ev.Meta = nil, nil
	g.remember(ev)
	return buf
}

func (g *Generator) remember(ev *pipeline.Event) {
	r := recentEvent{id: ev.ID, key: ev.Key, payload: ev.Payload, time: ev.Time}
	if len(g.recent) < recentSize {
		g.recent = append(g.recent, r)
		return
	}
	g.recent[g.recentI] = r
	g.recentI = (g.recentI + 1) % recentSize
}

func (g *Generator) pickFamily() int {
	x := g.rng.Float64()
	switch {
	case x < g.cum[0]:
		return 0
	case x < g.cum[1]:
		return 1
	}
	return 2
}

// pickSize skews towards small payloads, as real traffic does: most events
// are around 1 KB, a few carry long notes or email bodies.
func (g *Generator) pickSize() int {
	span := float64(g.w.MaxSize - g.w.MinSize)
	x := g.rng.Float64()
	return g.w.MinSize + int(span*x*x*x)
}

func (g *Generator) eventID() string {
	var b [20]byte
	out := append(b[:0], "evt_"...)
	out = strconv.AppendUint(out, g.w.Seed%1000, 36)
	out = append(out, '_')
	out = strconv.AppendUint(out, g.n, 36)
	return string(out)
}

// Source names per family, in the order the vendor is picked.
var (
	crmVendors   = [...]string{"salesforce", "hubspot"}
	atsVendors   = [...]string{"greenhouse", "lever"}
	emailVendors = [...]string{"sendgrid", "mailgun", "ses"}
)

// vendorOf picks the vendor of an entity of a family (0 CRM, 1 ATS, 2
// email).
func vendorOf(family, entity int) string {
	switch family {
	case 0:
		return crmVendors[entity%len(crmVendors)]
	case 1:
		return atsVendors[entity%len(atsVendors)]
	}
	return emailVendors[entity%len(emailVendors)]
}

// appendData writes an event's envelope from its data on: the vendor's
// record, free-text notes that pad the event (from start) to target
// bytes, and the envelope's closing brace.
func (g *Generator) appendData(buf []byte, vendor string, p profile, entity, kind int, now time.Time, start, target int) []byte {
	switch vendor {
	case "salesforce":
		buf = appendSalesforce(buf, p, entity, now)
	case "hubspot":
		buf = appendHubSpot(buf, p, entity, now)
	case "greenhouse":
		buf = appendGreenhouse(buf, p, entity, now, g.rng)
	case "lever":
		buf = appendLever(buf, p, entity, now, g.rng)
	case "sendgrid":
		buf = appendSendGrid(buf, p, g.n, now, kind)
	case "mailgun":
		buf = appendMailgun(buf, p, g.n, now, kind)
	default:
		buf = appendSES(buf, p, g.n, now, kind, g.rng)
	}
	// Pad with free text (notes, email bodies) up to the target size, then
	// close the envelope. The text offset is drawn either way: the number
	// of draws must not depend on the clock (timestamps vary in length), or
	// the same seed would not give the same events.
	off := g.rng.IntN(len(loremText))
	if pad := target - (len(buf) - start) - len(`,"notes":""}`); pad > 0 {
		buf = append(buf, `,"notes":"`...)
		buf = appendText(buf, pad, off)
		buf = append(buf, '"')
	}
	buf = append(buf, '}')
	return buf
}

// appendEvent writes the envelope (internal/envelope's head, then the
// vendor record as data and free-text notes) and returns the index in buf
// where the partition key's text starts.
func (g *Generator) appendEvent(buf []byte, id string, family, entity int, now time.Time, target int) ([]byte, int) {
	start := len(buf)
	vendor := vendorOf(family, entity)
	p := person(entity, g.w.Accounts)
	kind := g.rng.IntN(len(emailKinds))
	var typ string
	switch family {
	case 0:
		typ = crmTypes[g.rng.IntN(len(crmTypes))]
	case 1:
		typ = atsTypes[g.rng.IntN(len(atsTypes))]
	default:
		typ = emailKinds[kind]
	}
	// account, time and key are formatted into scratch and viewed as
	// strings only while the head is appended: no allocation per event.
	s := append(g.scratch[:0], "acct_"...)
	s = strconv.AppendInt(s, int64(p.account), 10)
	accountEnd := len(s)
	s = now.AppendFormat(s, time.RFC3339Nano)
	timeEnd := len(s)
	s = append(s, vendor...)
	s = append(s, ':')
	s = strconv.AppendInt(s, int64(entity), 10)
	g.scratch = s
	str := func(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
	env := envelope.Envelope{ID: id, Source: vendor, Type: typ, AccountID: str(s[:accountEnd]),
		OccurredAt: str(s[accountEnd:timeEnd]), Key: str(s[timeEnd:])}
	buf, keyStart := env.AppendHead(buf)
	return g.appendData(buf, vendor, p, entity, kind, now, start, target), keyStart
}

var (
	crmTypes = [...]string{"contact.created", "contact.updated", "contact.updated", "contact.updated", "lead.converted", "opportunity.stage_changed", "task.completed"}
	atsTypes = [...]string{"candidate.created", "candidate.updated", "application.stage_changed", "application.rejected", "interview.scheduled"}
	// emailKinds are the canonical email event types; each vendor names
	// them its own way (sendgridEvents, mailgunEvents, sesEvents).
	emailKinds     = [...]string{"delivered", "delivered", "delivered", "open", "open", "click", "bounce", "complaint", "unsubscribe"}
	sendgridEvents = [...]string{"delivered", "delivered", "delivered", "open", "open", "click", "bounce", "spamreport", "unsubscribe"}
	mailgunEvents  = [...]string{"delivered", "delivered", "delivered", "opened", "opened", "clicked", "failed", "complained", "unsubscribed"}
	sesEvents      = [...]string{"Delivery", "Delivery", "Delivery", "Open", "Open", "Click", "Bounce", "Complaint", "Subscription"}
)

// String describes the workload for logs.
func (w Workload) String() string {
	return fmt.Sprintf("mix crm=%.2f ats=%.2f email=%.2f, duplicates=%.3f, poison=%.4f, %d entities", w.Mix.CRM, w.Mix.ATS, w.Mix.Email, w.Duplicates, w.Poison, w.Entities)
}
