package pipeline

// EachEvent applies fn to every event of in and returns the events fn
// succeeded on, in order, with a *BatchError naming the others. Their
// errors are kept as fn returned them: wrap with Permanent what a retry
// cannot fix. When every event succeeds it returns in itself and allocates
// nothing, which is the common case on the hot path.
func EachEvent(in []*Event, fn func(ev *Event) error) ([]*Event, error) {
	var out []*Event
	var be *BatchError
	for i, ev := range in {
		err := fn(ev)
		if err == nil {
			if out != nil {
				out = append(out, ev)
			}
			continue
		}
		if out == nil {
			out = make([]*Event, i, len(in))
			copy(out, in[:i])
			be = NewBatchError()
		}
		be.Fail(i, err)
	}
	if out == nil {
		return in, nil
	}
	return out, be.Err()
}
