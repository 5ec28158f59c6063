package pipeline

import "sync/atomic"

// Stats counts what happened to the events of settled batches.
type Stats struct {
	// Read is every event of a batch that was settled successfully.
	Read int64
	// Written reached every sink.
	Written int64
	// Dropped were left out on purpose by a transform (filter, dedupe).
	Dropped int64
	// DeadLettered failed permanently and are in the dead-letter sink.
	DeadLettered int64
	// Abandoned were in batches the pipeline stopped before settling:
	// acked with an error, so the source redelivers them.
	Abandoned int64
}

type stats struct {
	read, written, dropped, dead, abandoned atomic.Int64
}

func (s *stats) add(st Stats) {
	s.read.Add(st.Read)
	s.written.Add(st.Written)
	s.dropped.Add(st.Dropped)
	s.dead.Add(st.DeadLettered)
}

// Stats returns the counts so far; safe to call while Run runs.
func (p *Pipeline) Stats() Stats {
	return Stats{
		Read: p.stats.read.Load(), Written: p.stats.written.Load(), Dropped: p.stats.dropped.Load(),
		DeadLettered: p.stats.dead.Load(), Abandoned: p.stats.abandoned.Load(),
	}
}
