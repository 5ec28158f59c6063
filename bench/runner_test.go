package bench

import (
	"context"
	"io"
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
)

// fixedSource returns the same prepared batches over and over until it
// has returned n events: a source that costs nothing per event.
type fixedSource struct {
	batches [][]*pipeline.Event
	i, n    int
}

func (s *fixedSource) Read(ctx context.Context) ([]*pipeline.Event, pipeline.AckFunc, error) {
	if s.n <= 0 {
		return nil, nil, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	b := s.batches[s.i%len(s.batches)]
	s.i++
	s.n -= len(b)
	return b, func(error) {}, nil
}
func (s *fixedSource) Close(context.Context) error { return nil }

// BenchmarkRunnerDiscard is the runner's own cost per event (dispatch by
// key to the lanes, the discarding sink, settle, ack, the latency
// histogram), with a source that costs nothing: batches of 500 prepared
// events with Kafka-like ids, keys and meta. The share of
// BenchmarkKafkaConsumeDiscard that is neither kafka-go nor the kafka
// source (BenchmarkBatchPath in sources/kafka) is this.
func BenchmarkRunnerDiscard(b *testing.B) {
	src := &fixedSource{n: b.N}
	for k := 0; k < 32; k++ {
		evs := make([]*pipeline.Event, 500)
		for i := range evs {
			off := strconv.Itoa(k*500 + i)
			evs[i] = &pipeline.Event{ID: "t/1/" + off, Key: []byte("key-" + strconv.Itoa(i%97)), Payload: []byte(`{"a":1}`), Meta: pipeline.Meta{{Key: "kafka.offset", Value: off}}}
		}
		src.batches = append(src.batches, evs)
	}
	sink := &discard{}
	reg := pipeline.NewRegistry()
	pipeline.RegisterSource(reg, "fixed", "x", func(pipeline.BuildContext, *struct{}) (pipeline.Source, error) { return src, nil })
	pipeline.RegisterSink(reg, "discard", "drops events", func(pipeline.BuildContext, *struct{}) (pipeline.Sink, error) { return sink, nil })
	doc := "name: r\nsource: {fixed: {}}\nsinks: [{discard: {}}]\n"
	p := pipelinetest.Build(b, "bench.yaml", doc, reg)
	cpu := runTimed(b, p)
	b.ReportMetric(cpu.Seconds()/float64(b.N)*1e6, "cpu-s/Mevents")
	if got := sink.events.Load(); got < int64(b.N) {
		b.Fatalf("sink got %d events, want at least %d", got, b.N)
	}
}
