package vendorreplay

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// sfCursor is the unread rest of a query, behind a nextRecordsUrl.
type sfCursor struct {
	version string
	total   int
	rest    []json.RawMessage
}

type sfError struct {
	Message   string `json:"message"`
	ErrorCode string `json:"errorCode"`
}

// soql matches the query the connector sends; the replay understands that
// one shape, as a vendor fake should, and rejects others as MALFORMED_QUERY.
var soql = regexp.MustCompile(`^SELECT (.+) FROM (\w+) WHERE SystemModstamp >= (\S+) ORDER BY SystemModstamp, Id$`)

// salesforceToken is the OAuth 2.0 client-credentials token endpoint; the
// client may authenticate in the form or with Basic auth.
func (a *API) salesforceToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "error_description": "grant type not supported"})
		return
	}
	if id != a.creds.SalesforceClientID || secret != a.creds.SalesforceClientSecret {
		a.count(Salesforce, func(s *VendorStats) { s.Unauthorized++ })
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client", "error_description": "invalid client credentials"})
		return
	}
	tok := "00DDEMO!" + rand.Text()
	a.mu.Lock()
	a.sfTokens[tok] = a.sfTokenUses
	if a.sfTokenUses == 0 {
		a.sfTokens[tok] = -1
	}
	a.mu.Unlock()
	base := "http://" + r.Host + "/salesforce"
	writeJSON(w, http.StatusOK, map[string]string{
		"access_token": tok, "instance_url": base, "id": base + "/id/00DDEMO0000000001/005DEMO0000000001",
		"token_type": "Bearer", "issued_at": strconv.FormatInt(a.now().UnixMilli(), 10), "signature": "ZGVtbw==",
	})
}

// salesforceAuth spends one call of the request's token; false means the
// 401 is written.
func (a *API) salesforceAuth(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a.mu.Lock()
	left, known := a.sfTokens[tok]
	switch {
	case !ok || !known || left == 0:
		delete(a.sfTokens, tok)
		ok = false
	case left > 0:
		a.sfTokens[tok] = left - 1
	}
	a.mu.Unlock()
	if !ok {
		a.unauthorized(w, Salesforce, []sfError{{Message: "Session expired or invalid", ErrorCode: "INVALID_SESSION_ID"}})
		return false
	}
	a.mu.Lock()
	used := 0
	for _, s := range a.stats {
		used += s.Requests
	}
	a.mu.Unlock()
	w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/15000", used))
	return true
}

// salesforceQuery runs GET .../query?q= (queryAll includes deleted
// records) and answers the first page.
func (a *API) salesforceQuery(w http.ResponseWriter, r *http.Request) {
	if !a.salesforceAuth(w, r) {
		return
	}
	endpoint := r.PathValue("endpoint")
	if endpoint != "query" && endpoint != "queryAll" {
		writeJSON(w, http.StatusNotFound, []sfError{{Message: "The requested resource does not exist", ErrorCode: "NOT_FOUND"}})
		return
	}
	m := soql.FindStringSubmatch(r.URL.Query().Get("q"))
	if m == nil {
		writeJSON(w, http.StatusBadRequest, []sfError{{Message: "unexpected query: " + r.URL.Query().Get("q"), ErrorCode: "MALFORMED_QUERY"}})
		return
	}
	fields, object := m[1], m[2]
	from, err := time.Parse("2006-01-02T15:04:05Z", m[3])
	if err != nil {
		writeJSON(w, http.StatusBadRequest, []sfError{{Message: "value of filter criterion for field 'SystemModstamp' must be of type dateTime", ErrorCode: "INVALID_FIELD"}})
		return
	}
	recs, ok := a.set.objects[Salesforce][object]
	if !ok {
		writeJSON(w, http.StatusBadRequest, []sfError{{Message: fmt.Sprintf("sObject type '%s' is not supported.", object), ErrorCode: "INVALID_TYPE"}})
		return
	}
	matched := since(recs, from, endpoint == "queryAll", byStampThenID)
	out := make([]json.RawMessage, len(matched))
	for i, rec := range matched {
		out[i] = selectFields(rec.raw, fields)
	}
	a.salesforcePage(w, r.PathValue("version"), len(out), out)
}

// salesforceMore follows a nextRecordsUrl.
func (a *API) salesforceMore(w http.ResponseWriter, r *http.Request) {
	if !a.salesforceAuth(w, r) {
		return
	}
	a.mu.Lock()
	c, ok := a.sfCursors[r.PathValue("locator")]
	delete(a.sfCursors, r.PathValue("locator"))
	a.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusBadRequest, []sfError{{Message: "invalid query locator", ErrorCode: "INVALID_QUERY_LOCATOR"}})
		return
	}
	a.salesforcePage(w, c.version, c.total, c.rest)
}

func (a *API) salesforcePage(w http.ResponseWriter, version string, total int, recs []json.RawMessage) {
	body := struct {
		TotalSize      int               `json:"totalSize"`
		Done           bool              `json:"done"`
		NextRecordsURL string            `json:"nextRecordsUrl,omitempty"`
		Records        []json.RawMessage `json:"records"`
	}{TotalSize: total, Done: len(recs) <= a.sfBatch, Records: recs}
	if !body.Done {
		body.Records = recs[:a.sfBatch]
		a.mu.Lock()
		a.sfSeq++
		locator := fmt.Sprintf("01gDEMO%011d-%d", a.sfSeq, total-len(recs)+a.sfBatch)
		a.sfCursors[locator] = sfCursor{version: version, total: total, rest: recs[a.sfBatch:]}
		a.mu.Unlock()
		body.NextRecordsURL = "/services/data/" + version + "/query/" + locator
	}
	a.page(Salesforce, len(body.Records))
	writeJSON(w, http.StatusOK, body)
}

// selectFields keeps the SELECTed fields (and attributes), as Salesforce
// answers; FIELDS(STANDARD) keeps them all. A field the record lacks is
// null.
func selectFields(raw json.RawMessage, fields string) json.RawMessage {
	if strings.TrimSpace(fields) == "FIELDS(STANDARD)" {
		return raw
	}
	out := []byte(`{}`)
	if attrs := gjson.GetBytes(raw, "attributes"); attrs.Exists() {
		out, _ = sjson.SetRawBytes(out, "attributes", []byte(attrs.Raw))
	}
	all := gjson.ParseBytes(raw).Map()
	for f := range strings.SplitSeq(fields, ",") {
		f = strings.TrimSpace(f)
		val := "null"
		for k, v := range all {
			if strings.EqualFold(k, f) {
				f, val = k, v.Raw
				break
			}
		}
		out, _ = sjson.SetRawBytes(out, f, []byte(val))
	}
	return out
}
