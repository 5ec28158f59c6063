package pipeline

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testwait"
)

func TestTapHubCostsNothingWhenIdle(t *testing.T) {
	var off *tapHub // metrics.tap: false
	if off.on() {
		t.Fatal("a nil hub is on")
	}
	h := newTapHub()
	if h.on() {
		t.Fatal("a hub with no tapper is on")
	}
	s := &tapSub{component: "c", stage: TapAfter, rate: 10, out: make(chan []byte, 1)}
	h.subscribe(s)
	if !h.on() {
		t.Fatal("a hub with a tapper is off")
	}
	h.unsubscribe(s)
	if h.on() {
		t.Fatal("the hub stays on after its tapper left")
	}
}

// TestTapNeverBlocks: a tapper that reads nothing costs the pipeline dropped
// samples, never a wait.
func TestTapNeverBlocks(t *testing.T) {
	h := newTapHub()
	s := &tapSub{component: "c", stage: TapAfter, rate: TapMaxRate, out: make(chan []byte, 2)}
	h.subscribe(s)
	evs := make([]*Event, 500)
	for i := range evs {
		evs[i] = &Event{ID: fmt.Sprint(i), Payload: []byte(`{"a":1}`)}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10 {
			h.publish("c", TapAfter, evs)
		}
	}()
	testwait.Recv(t, done, "publish return with a tapper that does not read", nil)
	if len(s.out) != 2 || s.dropped.Load() == 0 {
		t.Fatalf("buffered %d, dropped %d: want the buffer full and the rest dropped", len(s.out), s.dropped.Load())
	}
	// Other components' and stages' events are not offered to it.
	before := s.dropped.Load()
	h.publish("other", TapAfter, evs)
	h.publish("c", TapBefore, evs)
	if s.dropped.Load() != before {
		t.Fatal("a tapper got events of another component or stage")
	}
}

func TestTapRateLimit(t *testing.T) {
	s := &tapSub{rate: 5}
	now := time.Unix(0, 0)
	n := 0
	for range 100 {
		if s.take(now) {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("took %d at once, want a burst of 5", n)
	}
	if !s.take(now.Add(200 * time.Millisecond)) {
		t.Fatal("no token after 1/rate seconds")
	}
	if s.take(now.Add(200 * time.Millisecond)) {
		t.Fatal("two tokens after 1/rate seconds")
	}
}

func TestTapConfig(t *testing.T) {
	reg := NewRegistry()
	RegisterSource(reg, "src", "", func(BuildContext, *struct{}) (Source, error) { return nil, nil })
	RegisterSink(reg, "snk", "", func(BuildContext, *struct{}) (Sink, error) { return nil, nil })
	for _, tc := range []struct{ metrics, wantErr string }{
		{`{listen: "127.0.0.1:9102", tap: true}`, ""},
		{`{listen: "[::1]:9102", tap: true}`, ""},
		{`{listen: "localhost:9102", tap: true}`, ""},
		{`{listen: "0.0.0.0:9102"}`, ""},
		{`{listen: "0.0.0.0:9102", tap: true}`, `p.yaml:4: metrics.tap: metrics.listen "0.0.0.0:9102" is not a loopback address`},
		{`{listen: ":9102", tap: true}`, "is not a loopback address"},
		{`{listen: "10.0.0.5:9102", tap: true}`, "is not a loopback address"},
		{`{listen: "0.0.0.0:9102", tap: true, tap_allow_public: true}`, ""},
		{`{tap: true}`, "metrics.tap: needs metrics.listen"},
	} {
		t.Run(tc.metrics, func(t *testing.T) {
			_, err := Load("p.yaml", []byte("name: x\nsource: {src: {}}\nsinks: [{snk: {}}]\nmetrics: "+tc.metrics+"\n"), reg, func(string) (string, bool) { return "", false })
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
