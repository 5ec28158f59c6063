package elasticsearch

// bodytrack.go tells a Write whether net/http is done reading its bulk
// bodies. A cluster may answer before it has read a request (a 429 or 413
// as soon as the headers are in); net/http then returns the response while
// its write loop still copies the body, and closes the body only when it
// stops ("RoundTrip must always close the body ... may do so in a separate
// goroutine even after RoundTrip returns"). The bodies are slices of the
// Write's buffer, kept for the next Write: it may only be reused once every
// body handed to the transport was closed.

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// bodyTrack counts one Write's request bodies handed to the transport and
// not closed yet.
type bodyTrack struct{ open atomic.Int64 }

type bodyTrackKey struct{}

// withBodyTrack makes the bulk requests sent with ctx counted in t.
func withBodyTrack(ctx context.Context, t *bodyTrack) context.Context {
	return context.WithValue(ctx, bodyTrackKey{}, t)
}

// done reports whether every body counted was closed: the transport's
// reads of them happened before.
func (t *bodyTrack) done() bool { return t.open.Load() == 0 }

func (t *bodyTrack) wrap(rc io.ReadCloser) io.ReadCloser {
	t.open.Add(1)
	return &trackedBody{ReadCloser: rc, t: t}
}

type trackedBody struct {
	io.ReadCloser
	t    *bodyTrack
	once sync.Once
}

func (b *trackedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { b.t.open.Add(-1) })
	return err
}

// WriteTo keeps the body's own WriteTo (a bytes.Reader's) for the copy.
func (b *trackedBody) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, b.ReadCloser) }

// track returns req with its body (and the bodies of its retries) counted
// in the request context's bodyTrack, if it has one.
func track(req *http.Request) *http.Request {
	t, ok := req.Context().Value(bodyTrackKey{}).(*bodyTrack)
	if !ok || req.Body == nil || req.Body == http.NoBody {
		return req
	}
	r := *req // RoundTrip must not change the caller's request
	r.Body = t.wrap(req.Body)
	if get := req.GetBody; get != nil {
		r.GetBody = func() (io.ReadCloser, error) {
			rc, err := get()
			if err != nil {
				return nil, err
			}
			return t.wrap(rc), nil
		}
	}
	return &r
}
