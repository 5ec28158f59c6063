package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
)

// fakeResponse is one fetch response: n records from offset from, then
// end (io.EOF, or the error the response broke with).
type fakeResponse struct {
	from int64
	n    int
	end  error
	read int
}

func (r *fakeResponse) ReadMessage() (kafkago.Message, error) {
	if r.read == r.n {
		return kafkago.Message{}, r.end
	}
	off := r.from + int64(r.read)
	r.read++
	return kafkago.Message{Offset: off, HighWaterMark: r.from + int64(r.n), Value: fmt.Appendf(nil, `{"o":%d}`, off)}, nil
}

// TestDrainFetchHandsOverTheWholeResponse: one fetch response becomes
// batches of batch_size, fewer when max_in_flight_per_partition leaves less
// room (the partition then waits for acks in the middle of the response
// and resumes, renewing its read deadline), every record once and in
// order; a response that breaks hands over what was read before the break
// and returns its error with the offset to fetch from next.
func TestDrainFetchHandsOverTheWholeResponse(t *testing.T) {
	broken := errors.New("connection reset by peer")
	tests := []struct {
		name        string
		batchSize   int
		maxInFlight int
		records     int
		end         error
		batches     []int // sizes handed over
		resumes     int
	}{
		{"one batch", 500, 5000, 120, io.EOF, []int{120}, 0},
		{"batch_size splits a response", 500, 5000, 1200, io.EOF, []int{500, 500, 200}, 2},
		{"a response of exactly batch_size", 500, 5000, 500, io.EOF, []int{500}, 1},
		{"max_in_flight limits a batch", 500, 700, 1200, io.EOF, []int{500, 200, 500}, 3},
		{"an empty response", 500, 5000, 0, io.EOF, nil, 0},
		{"a broken response", 500, 5000, 730, broken, []int{500, 230}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, p := testSource(t, tt.batchSize)
			s.cfg.MaxInFlightPerPartition = tt.maxInFlight
			const from = 1000
			r := &fakeResponse{from: from, n: tt.records, end: tt.end}
			ctx := context.Background()
			// Read every batch as the runner does; ack what was read only
			// when max_in_flight is reached or the response was drained, so
			// the batch sizes do not depend on how fast acks come.
			var mu sync.Mutex
			var sizes []int
			var order []string
			readCtx, stopReading := context.WithCancel(ctx)
			defer stopReading()
			go func() {
				var held []pipeline.AckFunc
				defer func() {
					for _, ack := range held {
						ack(nil)
					}
				}()
				for {
					evs, ack, err := s.Read(readCtx)
					if err != nil {
						return
					}
					mu.Lock()
					sizes = append(sizes, len(evs))
					for _, ev := range evs {
						order = append(order, ev.ID)
					}
					mu.Unlock()
					held = append(held, ack)
					if p.tracker.InFlight() >= tt.maxInFlight {
						for _, ack := range held {
							ack(nil)
						}
						held = held[:0]
					}
				}
			}()
			resumes := 0
			next, err := s.drainFetch(ctx, p, r, from, func() { resumes++ })
			testwait.For(t, "every batch read", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(order) == tt.records
			}, nil)
			stopReading()
			testwait.For(t, "every record acked", func() bool { return p.tracker.InFlight() == 0 }, nil)
			mu.Lock()
			defer mu.Unlock()
			for i, id := range order {
				if want := fmt.Sprintf("crm/11/%d", from+i); id != want {
					t.Fatalf("event %d is %q, want %q: out of order or repeated", i, id, want)
				}
			}
			want := int64(from + len(order))
			res := struct {
				next int64
				err  error
			}{next, err}
			if fmt.Sprint(sizes) != fmt.Sprint(tt.batches) {
				t.Errorf("batches of %v, want %v", sizes, tt.batches)
			}
			if want != from+int64(tt.records) || res.next != want {
				t.Errorf("read up to %d, next offset %d; want %d for both", want, res.next, from+int64(tt.records))
			}
			if tt.end == io.EOF && res.err != nil || tt.end != io.EOF && !errors.Is(res.err, tt.end) {
				t.Errorf("err %v, want %v", res.err, tt.end)
			}
			if resumes != tt.resumes {
				t.Errorf("resumed %d times, want %d (once after every batch that reached its limit)", resumes, tt.resumes)
			}
		})
	}
}

// TestDrainFetchStopsWhenRevokedWhileWaitingForRoom: a partition waiting
// for acks in the middle of a response returns when its context ends,
// without reading on.
func TestDrainFetchStopsWhenRevokedWhileWaitingForRoom(t *testing.T) {
	s, p := testSource(t, 10)
	s.cfg.MaxInFlightPerPartition = 10
	r := &fakeResponse{from: 0, n: 30, end: io.EOF}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.drainFetch(ctx, p, r, 0, func() { t.Error("resumed after the revocation") })
		done <- err
	}()
	testwait.For(t, "the first batch", func() bool { return p.tracker.InFlight() == 10 }, nil)
	cancel()
	if err := testwait.Recv(t, done, "drainFetch's return", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
	if r.read != 10 {
		t.Errorf("read %d records, want the first batch's 10 only", r.read)
	}
	evs, ack, err := s.Read(context.Background())
	if err != nil || len(evs) != 10 {
		t.Fatalf("Read: %d events, %v", len(evs), err)
	}
	ack(pipeline.ErrAbandoned)
}
