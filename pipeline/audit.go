package pipeline

import "context"

// Auditor is implemented by the config of a sink whose store can be read
// back (the file, mongodb and elasticsearch sinks' Config types). The bench
// audit discovers it on each sink's decoded config (Spec.Config), so adding
// a store sink needs no change to the bench: implement Auditor next to the
// sink. The config rather than the sink implements it so that reading a
// store back opens no writer and runs no Start.
type Auditor interface {
	// Audit returns a reader of the store the config writes to; label is
	// the sink's Spec.Label, for the store's Name. It may fail for a config
	// the audit cannot read (a templated collection).
	Audit(ctx context.Context, label string) (StoreAudit, error)
}

// StoreAudit reads back what a sink stored, by event id.
type StoreAudit interface {
	// Name is how the audit's report names the store.
	Name() string
	// Reset empties the store before a run.
	Reset(ctx context.Context) error
	// Counts returns how many times each id is stored. want holds the ids
	// sent (nil when unknown, as for a dead-letter store) and lets a store
	// that cannot list everything look them up; a stored document no id
	// of want explains appears under a key want lacks.
	Counts(ctx context.Context, want map[string]int) (map[string]int, error)
	// Idempotent reports whether the store holds an id once however often
	// it was written (a document store), or once per write (a log).
	Idempotent() bool
}

// Cleaner is implemented by a StoreAudit whose store the bench deletes
// after a run (the mongodb and elasticsearch sinks' audits). The bench
// passes the run's stamp, which every name it made for the run contains
// (${BENCH_GROUP}, ${BENCH_TOPIC}); a store whose configured name lacks it
// is a user's fixed collection or index and is never dropped.
type Cleaner interface {
	// Target names the store's data for the report, e.g. "collection
	// bench.events_bench-x" or "indices bench-x-*". It holds no secret.
	Target() string
	// Drop deletes the store's data when its configured name contains
	// stamp and reports whether it did; a name without stamp is left
	// alone (false, nil). What was already gone counts as dropped.
	Drop(ctx context.Context, stamp string) (bool, error)
}
