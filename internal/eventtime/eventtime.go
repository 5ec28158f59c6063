// Package eventtime reads the event times vendors send as numbers: Unix
// seconds with a decimal fraction (SendGrid, Mailgun: 1772445607.318224) or
// Unix milliseconds (Lever, HubSpot). The digits are read exactly, never
// through float64 (which turns .318224 into .318223953), and a time outside
// the range an event can have (before 1970 or after 9999) is an error, so a
// hostile `timestamp: 1e300` is refused rather than becoming year
// 292277026304.
package eventtime

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Unit is what one unit of a number counts.
type Unit int

const (
	// Seconds: Unix seconds, any fraction.
	Seconds Unit = iota
	// Millis: Unix milliseconds, any fraction.
	Millis
)

// Min and Max bound the event times this package returns.
var (
	Min = time.Unix(0, 0).UTC()
	Max = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// ErrOutOfRange is wrapped by the error of a number that is a valid
// number but no event time: before Min or after Max.
var ErrOutOfRange = errors.New("event time out of range (want 1970-01-01 to 9999-12-31)")

// ErrSyntax is wrapped by the error of a string that is not a decimal
// number.
var ErrSyntax = errors.New("not a decimal number")

// maxLen bounds the input: no event time needs more digits, and the
// parser's work stays small whatever arrives.
const maxLen = 64

// maxExp bounds the exponent; anything past it is out of range (or zero).
const maxExp = 64

// Parse reads s, a JSON number (an optional '-', digits, an optional
// fraction, an optional exponent), as a time in unit. Nanoseconds past
// the ninth fractional digit of a second are truncated.
func Parse(s string, unit Unit) (time.Time, error) {
	if len(s) > maxLen {
		return time.Time{}, fmt.Errorf("%w: %d characters", ErrSyntax, len(s))
	}
	neg, digits, point, err := scan(s)
	if err != nil {
		return time.Time{}, err
	}
	if unit == Millis {
		point -= 3
	}
	// digits has no leading zeros; point is where the decimal point falls
	// in it (negative: zeros before the digits, past len: zeros after).
	if len(digits) == 0 {
		return Min, nil
	}
	if neg {
		return time.Time{}, fmt.Errorf("%w: %s", ErrOutOfRange, s)
	}
	if point > 12 { // more than 12 integer digits: past year 9999
		return time.Time{}, fmt.Errorf("%w: %s", ErrOutOfRange, s)
	}
	var sec, nsec int64
	for i := 0; i < point; i++ {
		d := int64(0)
		if i < len(digits) {
			d = int64(digits[i] - '0')
		}
		sec = sec*10 + d
	}
	for i := point; i < point+9; i++ {
		d := int64(0)
		if i >= 0 && i < len(digits) {
			d = int64(digits[i] - '0')
		}
		nsec = nsec*10 + d
	}
	t := time.Unix(sec, nsec).UTC()
	if t.After(Max) {
		return time.Time{}, fmt.Errorf("%w: %s", ErrOutOfRange, s)
	}
	return t, nil
}

// scan splits a JSON number into its significant digits (no leading
// zeros) and the position of the decimal point in them.
func scan(s string) (neg bool, digits []byte, point int, err error) {
	bad := func() (bool, []byte, int, error) {
		return false, nil, 0, fmt.Errorf("%w: %s", ErrSyntax, strconv.Quote(s))
	}
	i := 0
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	start := i
	digits = make([]byte, 0, len(s))
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		digits = append(digits, s[i])
	}
	if i == start {
		return bad()
	}
	point = len(digits)
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			digits = append(digits, s[i])
		}
		if i == fs {
			return bad()
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		es := i
		exp := 0
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if exp <= maxExp*10 {
				exp = exp*10 + int(s[i]-'0')
			}
		}
		if i == es {
			return bad()
		}
		exp = min(exp, maxExp*10)
		if eneg {
			exp = -exp
		}
		point += exp
	}
	if i != len(s) {
		return bad()
	}
	for len(digits) > 0 && digits[0] == '0' {
		digits = digits[1:]
		point--
	}
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
	}
	return neg, digits, point, nil
}

// Number reads a JSON number as the connectors' and decode's convention
// has it: Unix seconds, or milliseconds when it is above 1e12 (a time in
// seconds that large is past year 33000).
func Number(s string) (time.Time, error) {
	if len(s) <= maxLen {
		if neg, digits, point, err := scan(s); err == nil && !neg && (point > 13 || point == 13 && string(digits) != "1") {
			return Parse(s, Millis)
		}
	}
	return Parse(s, Seconds)
}

// Check reports whether t is within [Min, Max].
func Check(t time.Time) error {
	if t.Before(Min) || t.After(Max) {
		return fmt.Errorf("%w: %s", ErrOutOfRange, t.UTC().Format(time.RFC3339Nano))
	}
	return nil
}
