package enrich

// times.go reads and writes the canonical event's times.

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/internal/eventtime"
	"github.com/tidwall/gjson"
)

// appendTimes appends occurred_at (see occurredAt) and, when the envelope
// has one, system_modified_at.
func appendTimes(buf []byte, envelope, vendor, system gjson.Result, fallback time.Time) ([]byte, error) {
	buf = append(buf, `,"occurred_at":`...)
	t, err := occurredAt(envelope, vendor, fallback)
	if err != nil {
		return buf, err
	}
	if !t.IsZero() {
		buf = append(buf, '"')
		buf = t.UTC().AppendFormat(buf, time.RFC3339Nano)
		buf = append(buf, '"')
	} else {
		buf = append(buf, "null"...)
	}
	if system.Type == gjson.String {
		st, err := time.Parse(time.RFC3339Nano, system.Str)
		if err == nil {
			err = eventtime.Check(st)
		}
		if err != nil {
			return buf, fmt.Errorf("system_modified_at: %w", err)
		}
		buf = append(buf, `,"system_modified_at":"`...)
		buf = st.UTC().AppendFormat(buf, time.RFC3339Nano)
		buf = append(buf, '"')
	}
	return buf, nil
}

// occurredAt prefers the envelope's time, then the vendor's own, then the
// event time the source or decode step set. A time outside 1970..9999
// (a hostile `timestamp: 1e300`) is an error: the event is dead-lettered.
func occurredAt(envelope, v gjson.Result, fallback time.Time) (time.Time, error) {
	if envelope.Type == gjson.String {
		if t, err := time.Parse(time.RFC3339Nano, envelope.Str); err == nil {
			return t, eventtime.Check(t)
		}
	}
	switch v.Type {
	case gjson.String:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700"} {
			if t, err := time.Parse(layout, v.Str); err == nil {
				return t, eventtime.Check(t)
			}
		}
		if _, err := parseInt(v.Str); err == nil {
			return eventtime.Parse(v.Str, eventtime.Seconds)
		}
	case gjson.Number:
		// The digits as sent: Mailgun's 1772445607.318224 stays .318224.
		return eventtime.Number(v.Raw)
	}
	if fallback.IsZero() {
		return fallback, nil
	}
	return fallback, eventtime.Check(fallback)
}

func parseInt(s string) (int64, error) {
	var n int64
	if s == "" {
		return 0, errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a number")
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, nil
}
