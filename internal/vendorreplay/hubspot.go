package vendorreplay

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

type hsError struct {
	Status        string `json:"status"`
	Message       string `json:"message"`
	CorrelationID string `json:"correlationId"`
	Category      string `json:"category,omitempty"`
	ErrorType     string `json:"errorType,omitempty"`
	PolicyName    string `json:"policyName,omitempty"`
}

// hsSearch is the part of a CRM v3 search request the replay reads.
type hsSearch struct {
	FilterGroups []struct {
		Filters []struct {
			PropertyName string `json:"propertyName"`
			Operator     string `json:"operator"`
			Value        string `json:"value"`
		} `json:"filters"`
	} `json:"filterGroups"`
	Properties []string `json:"properties"`
	Limit      int      `json:"limit"`
	After      string   `json:"after"`
}

// hubspotSearch answers POST /crm/v3/objects/{object}/search with a single
// GTE filter on the object's modification property, sorted by it.
func (a *API) hubspotSearch(w http.ResponseWriter, r *http.Request) {
	const correlation = "aeb5f871-7f07-4993-9211-075dc63e7cbf"
	if r.Header.Get("Authorization") != "Bearer "+a.creds.HubSpotToken {
		a.unauthorized(w, HubSpot, hsError{Status: "error", Message: "Authentication credentials not found. This API supports OAuth 2.0 authentication.", CorrelationID: correlation, Category: "INVALID_AUTHENTICATION"})
		return
	}
	a.mu.Lock()
	a.hsSearches++
	throttle := a.hsThrottleEvery > 0 && a.hsSearches%a.hsThrottleEvery == 0
	a.mu.Unlock()
	w.Header().Set("X-HubSpot-RateLimit-Interval-Milliseconds", "1000")
	w.Header().Set("X-HubSpot-RateLimit-Max", "5")
	if throttle {
		a.count(HubSpot, func(s *VendorStats) { s.Throttled++ })
		w.Header().Set("Retry-After", "1")
		w.Header().Set("X-HubSpot-RateLimit-Remaining", "0")
		writeJSON(w, http.StatusTooManyRequests, hsError{Status: "error", Message: "You have reached your secondly limit.", CorrelationID: correlation, ErrorType: "RATE_LIMIT", PolicyName: "SECONDLY"})
		return
	}
	w.Header().Set("X-HubSpot-RateLimit-Remaining", "4")
	object := r.PathValue("object")
	recs, ok := a.set.objects[HubSpot][object]
	if !ok {
		writeJSON(w, http.StatusBadRequest, hsError{Status: "error", Message: "Unable to infer object type from: " + object, CorrelationID: correlation, Category: "OBJECT_NOT_FOUND"})
		return
	}
	var q hsSearch
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
		writeJSON(w, http.StatusBadRequest, hsError{Status: "error", Message: "Invalid input JSON: " + err.Error(), CorrelationID: correlation, Category: "VALIDATION_ERROR"})
		return
	}
	prop := strings.TrimPrefix(stampOf[HubSpot][object], "properties.")
	if prop == "" {
		prop = strings.TrimPrefix(stampOf[HubSpot][""], "properties.")
	}
	from := time.Unix(0, 0)
	for _, g := range q.FilterGroups {
		for _, f := range g.Filters {
			ms, err := strconv.ParseInt(f.Value, 10, 64)
			if f.PropertyName != prop || f.Operator != "GTE" || err != nil {
				writeJSON(w, http.StatusBadRequest, hsError{Status: "error", Message: "the replay answers only " + prop + " GTE <epoch ms> filters", CorrelationID: correlation, Category: "VALIDATION_ERROR"})
				return
			}
			from = time.UnixMilli(ms)
		}
	}
	limit := q.Limit
	if limit <= 0 || limit > 200 {
		limit = 10
	}
	after := 0
	if q.After != "" {
		var err error
		if after, err = strconv.Atoi(q.After); err != nil || after < 0 {
			writeJSON(w, http.StatusBadRequest, hsError{Status: "error", Message: "after must be a non-negative integer offset", CorrelationID: correlation, Category: "VALIDATION_ERROR"})
			return
		}
	}
	matched := since(recs, from, false, byStampThenID)
	after = min(after, len(matched))
	page := matched[after:min(after+limit, len(matched))]
	results := make([]json.RawMessage, len(page))
	for i, rec := range page {
		results[i] = hubspotProperties(rec.raw, q.Properties, prop)
	}
	body := map[string]any{"total": len(matched), "results": results}
	if after+limit < len(matched) {
		next := strconv.Itoa(after + limit)
		body["paging"] = map[string]any{"next": map[string]string{"after": next, "link": "?after=" + next}}
	}
	a.page(HubSpot, len(results))
	writeJSON(w, http.StatusOK, body)
}

// hubspotProperties keeps the requested properties and the ones HubSpot
// always returns; a requested property the record lacks is null.
func hubspotProperties(raw json.RawMessage, want []string, modified string) json.RawMessage {
	if len(want) == 0 {
		return raw
	}
	keep := append(slices.Clone(want), "createdate", "hs_object_id", modified)
	props := []byte(`{}`)
	for _, p := range keep {
		v := gjson.GetBytes(raw, "properties."+p)
		val := "null"
		if v.Exists() {
			val = v.Raw
		}
		props, _ = sjson.SetRawBytes(props, p, []byte(val))
	}
	out, _ := sjson.SetRawBytes(raw, "properties", props)
	return out
}
