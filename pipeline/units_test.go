package pipeline_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/pipeline"
)

func TestDurationYAML(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "100ms", want: 100 * time.Millisecond},
		{in: "10m", want: 10 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: `"250us"`, want: 250 * time.Microsecond},
		{in: "10", wantErr: "is not a duration"},
		{in: "ten seconds", wantErr: "is not a duration"},
		{in: "5d", wantErr: "is not a duration"},
		{in: `""`, wantErr: "is not a duration"},
		{in: "-1s", wantErr: "is negative"},
		{in: "[1s]", wantErr: "expected a duration"},
		{in: "{a: 1s}", wantErr: "expected a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var v struct {
				D pipeline.Duration `yaml:"d"`
			}
			v.D = pipeline.Duration(time.Hour) // must be overwritten on success
			err := yaml.Unmarshal([]byte("d: "+tt.in), &v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.D.D() != tt.want {
				t.Errorf("got %v, want %v", v.D.D(), tt.want)
			}
			if v.D.String() != tt.want.String() {
				t.Errorf("String() = %q, want %q", v.D.String(), tt.want.String())
			}
		})
	}
}

func TestByteSizeYAML(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "4MiB", want: 4 << 20},
		{in: "512KB", want: 512000},
		{in: "512KiB", want: 512 << 10},
		{in: "1GB", want: 1_000_000_000},
		{in: "1.5KiB", want: 1536},
		{in: "1024", want: 1024},
		{in: "100B", want: 100},
		{in: "0", want: 0},
		{in: "4 MiB", want: 4 << 20},
		{in: "lots", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "12XB", wantErr: true},
		{in: `""`, wantErr: true},
		{in: "[4MiB]", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var v struct {
				S pipeline.ByteSize `yaml:"s"`
			}
			err := yaml.Unmarshal([]byte("s: "+tt.in), &v)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %d, want an error", v.S)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if int64(v.S) != tt.want {
				t.Errorf("got %d, want %d", v.S, tt.want)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr string
	}{
		{in: "3333/s", want: 3333},
		{in: "1.5/sec", want: 1.5},
		{in: "10/second", want: 10},
		{in: "200000/min", want: 200000.0 / 60},
		{in: "60/m", want: 1},
		{in: "120/minute", want: 2},
		{in: "1000/h", want: 1000.0 / 3600},
		{in: "7200/hour", want: 2},
		{in: " 50 / s ", want: 50},
		{in: "1e3/s", want: 1000},
		{in: "3333", wantErr: "is not a rate"},
		{in: "", wantErr: "is not a rate"},
		{in: "0/s", wantErr: "not a positive number"},
		{in: "-5/s", wantErr: "not a positive number"},
		{in: "fast/s", wantErr: "not a positive number"},
		{in: "/s", wantErr: "not a positive number"},
		{in: "1e400/s", wantErr: "not a positive number"},
		{in: "10/d", wantErr: `unit "d"`},
		{in: "10/", wantErr: "is not one of"},
		{in: "10/S", wantErr: "is not one of"},
		{in: "NaN/s", wantErr: "not a positive number"},
		{in: "Inf/s", wantErr: "not a positive number"},
		{in: "+Infinity/min", wantErr: "not a positive number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := pipeline.ParseRate(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRate(%q) = %+v, %v; want error %q", tt.in, r, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(r.PerSecond-tt.want) > 1e-9*tt.want {
				t.Errorf("ParseRate(%q) = %v/s, want %v/s", tt.in, r.PerSecond, tt.want)
			}
		})
	}
}

func TestRateYAML(t *testing.T) {
	var v struct {
		R  pipeline.Rate  `yaml:"r"`
		P  *pipeline.Rate `yaml:"p"`
		NP *pipeline.Rate `yaml:"np"`
	}
	if err := yaml.Unmarshal([]byte("r: 120/min\np: 5/s\n"), &v); err != nil {
		t.Fatal(err)
	}
	if v.R.PerSecond != 2 || v.P == nil || v.P.PerSecond != 5 || v.NP != nil {
		t.Errorf("decoded %+v %+v %+v", v.R, v.P, v.NP)
	}
	for _, bad := range []string{"r: [1/s]", "r: {n: 1}", "r: 1/fortnight", "r: 12"} {
		if err := yaml.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%q decoded without an error", bad)
		}
	}
}
