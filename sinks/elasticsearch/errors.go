package elasticsearch

// errors.go holds the sink's error types and their classification.

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"
)

// ItemError is one document's failure as Elasticsearch reported it.
type ItemError struct {
	Status   int
	Type     string
	Reason   string
	CausedBy string
}

func (e *ItemError) Error() string {
	s := fmt.Sprintf("elasticsearch rejected the document (%d %s): %s", e.Status, e.Type, e.Reason)
	if e.CausedBy != "" && e.CausedBy != ": " {
		s += " (caused by " + e.CausedBy + ")"
	}
	return s
}

// Retryable reports whether the same document may succeed later: the
// cluster was busy or failing, or the failure is about the cluster's
// state (missing index, closed or read-only index, permissions) rather
// than about the document.
func (e *ItemError) Retryable() bool {
	switch {
	case e.Status == http.StatusTooManyRequests, e.Status >= 500, e.Status == 0:
		return true
	case e.Status == http.StatusUnauthorized, e.Status == http.StatusForbidden,
		e.Status == http.StatusNotFound, e.Status == http.StatusRequestTimeout,
		e.Status == http.StatusConflict:
		return true
	}
	return false
}

// ErrorClass names the failure for the runner's retries metric. A
// cluster_block_exception other than 429 (index.blocks.write, read_only,
// a closed index) is "blocked": an operator's setting, not a credentials
// problem, so it is not reported as auth.
func (e *ItemError) ErrorClass() string {
	if e.Type == "cluster_block_exception" && e.Status != http.StatusTooManyRequests {
		return "blocked"
	}
	return statusClass(e.Status)
}

func statusClass(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "throttled"
	case status >= 500:
		return "unavailable"
	case status == http.StatusConflict:
		return "conflict"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "auth"
	}
	return "rejected"
}

// requestError is a bulk request the cluster answered with an error
// status as a whole: retryable, since it is not any one document's fault.
type requestError struct {
	status int
	reason string
}

func (e *requestError) Error() string {
	msg := fmt.Sprintf("elasticsearch bulk request failed with %d: %s", e.status, e.reason)
	if e.status == http.StatusUnauthorized {
		msg += " (check the credentials)"
	}
	return msg
}

func (e *requestError) ErrorClass() string { return statusClass(e.status) }

// transportError is a request that got no answer.
type transportError struct{ err error }

func (e *transportError) Error() string { return "elasticsearch bulk request: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// errorSummary pulls "type: reason" out of an Elasticsearch error body, or
// returns the start of the body.
func errorSummary(body []byte) string {
	e := gjson.GetBytes(body, "error")
	if e.IsObject() {
		s := e.Get("type").String() + ": " + e.Get("reason").String()
		if rc := e.Get("root_cause.0.reason"); rc.Exists() && rc.String() != e.Get("reason").String() {
			s += " (" + rc.String() + ")"
		}
		return s
	}
	if e.Exists() {
		return e.String()
	}
	return truncate(strings.TrimSpace(string(body)), 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
