package eventtime

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		unit Unit
		want string // RFC 3339 nano, or the error kind
	}{
		{"1772445607.318224", Seconds, "2026-03-02T10:00:07.318224Z"}, // Mailgun's event-data.timestamp
		{"1772445607", Seconds, "2026-03-02T10:00:07Z"},               // SendGrid's timestamp
		{"1772445607.1234567891", Seconds, "2026-03-02T10:00:07.123456789Z"},
		{"1.772445607318224e9", Seconds, "2026-03-02T10:00:07.318224Z"},
		{"17724456073182.24E-4", Seconds, "2026-03-02T10:00:07.318224Z"},
		{"1772445607318", Millis, "2026-03-02T10:00:07.318Z"}, // Lever's updatedAt
		{"1772445607318.5", Millis, "2026-03-02T10:00:07.3185Z"},
		{"0", Seconds, "1970-01-01T00:00:00Z"},
		{"-0", Seconds, "1970-01-01T00:00:00Z"},
		{"0.000000001", Seconds, "1970-01-01T00:00:00.000000001Z"},
		{"1e-400", Seconds, "1970-01-01T00:00:00Z"},
		{"253402300799.999999999", Seconds, "9999-12-31T23:59:59.999999999Z"},
		{"253402300800", Seconds, "range"},
		{"1e300", Seconds, "range"},
		{"1E+300", Millis, "range"},
		{"-1", Seconds, "range"},
		{"-1772445607.5", Seconds, "range"},
		{"", Seconds, "syntax"},
		{"1.", Seconds, "syntax"},
		{".5", Seconds, "syntax"},
		{"1e", Seconds, "syntax"},
		{"0x10", Seconds, "syntax"},
		{"1 ", Seconds, "syntax"},
		{"NaN", Seconds, "syntax"},
		{strings.Repeat("1", 65), Seconds, "syntax"},
	} {
		got, err := Parse(tc.in, tc.unit)
		switch tc.want {
		case "range":
			if !errors.Is(err, ErrOutOfRange) {
				t.Errorf("Parse(%q) = %v, %v; want ErrOutOfRange", tc.in, got, err)
			}
		case "syntax":
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("Parse(%q) = %v, %v; want ErrSyntax", tc.in, got, err)
			}
		default:
			if err != nil || got.Format(time.RFC3339Nano) != tc.want {
				t.Errorf("Parse(%q) = %s, %v; want %s", tc.in, got.Format(time.RFC3339Nano), err, tc.want)
			}
		}
	}
}

func TestNumber(t *testing.T) {
	for in, want := range map[string]string{
		"1772445607.318224": "2026-03-02T10:00:07.318224Z",
		"1772445607318":     "2026-03-02T10:00:07.318Z", // above 1e12: milliseconds
		"1000000000000":     "33658-09-27T01:46:40Z",    // 1e12 itself is seconds: out of range
		"1e13":              "2286-11-20T17:46:40Z",
	} {
		got, err := Number(in)
		if want[0] == '3' {
			if !errors.Is(err, ErrOutOfRange) {
				t.Errorf("Number(%q) = %v, %v; want out of range", in, got, err)
			}
			continue
		}
		if err != nil || got.Format(time.RFC3339Nano) != want {
			t.Errorf("Number(%q) = %s, %v; want %s", in, got.Format(time.RFC3339Nano), err, want)
		}
	}
}

// FuzzParse checks Parse against exact rational arithmetic: every input is
// either refused or read to the nanosecond (truncated), never rounded.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"1772445607.318224", "1e300", "-0.5", "1.5e-3", "253402300799.9999999999", "00012.50", "1E+2", strings.Repeat("9", 40)} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, millis bool) {
		unit := Seconds
		if millis {
			unit = Millis
		}
		got, err := Parse(s, unit)
		if err != nil {
			if !errors.Is(err, ErrOutOfRange) && !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q): unclassified error %v", s, err)
			}
			return
		}
		if got.Before(Min) || got.After(Max) {
			t.Fatalf("Parse(%q) = %v outside the range", s, got)
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok && strings.ContainsAny(s, "eE") {
			return // big.Rat refuses exponents past its range; zero times them is still zero
		}
		if !ok {
			t.Fatalf("Parse(%q) accepted what big.Rat refuses", s)
		}
		if unit == Millis {
			r.Quo(r, big.NewRat(1000, 1))
		}
		// want = floor(r * 1e9) nanoseconds
		r.Mul(r, big.NewRat(1e9, 1))
		want := new(big.Int).Quo(r.Num(), r.Denom())
		if r.Sign() < 0 && want.Sign() != 0 {
			t.Fatalf("Parse(%q) = %v for a negative number", s, got)
		}
		gotNs := new(big.Int).Mul(big.NewInt(got.Unix()), big.NewInt(1e9))
		gotNs.Add(gotNs, big.NewInt(int64(got.Nanosecond())))
		if gotNs.Cmp(want) != 0 {
			t.Fatalf("Parse(%q) = %s (%s ns), want %s ns", s, got.Format(time.RFC3339Nano), gotNs, want)
		}
	})
}
