package vendorreplay

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// greenhouseList answers GET /v1/{candidates,applications,jobs} of the
// Harvest API: Basic auth with the API key as user name, the object's
// *_after filter, page/per_page paging with RFC 5988 Link headers, and the
// per-10-seconds rate-limit headers.
func (a *API) greenhouseList(w http.ResponseWriter, r *http.Request) {
	if !basicKey(r, a.creds.GreenhouseAPIKey) {
		a.unauthorized(w, Greenhouse, map[string]string{"message": "Invalid Basic Auth credentials"})
		return
	}
	w.Header().Set("X-RateLimit-Limit", "50")
	w.Header().Set("X-RateLimit-Remaining", "49")
	object := r.PathValue("object")
	recs, ok := a.set.objects[Greenhouse][object]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Resource not found"})
		return
	}
	q := r.URL.Query()
	param := "updated_after"
	if object == "applications" {
		param = "last_activity_after"
	}
	from := time.Unix(0, 0)
	if v := q.Get(param); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": []map[string]string{{"message": "Invalid " + param + " timestamp", "field": param}}})
			return
		}
		from = t
	}
	perPage, err := strconv.Atoi(cmp.Or(q.Get("per_page"), "100"))
	if err != nil || perPage < 1 || perPage > 500 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"errors": []map[string]string{{"message": "per_page must be 1 to 500", "field": "per_page"}}})
		return
	}
	pageNo, err := strconv.Atoi(cmp.Or(q.Get("page"), "1"))
	if err != nil || pageNo < 1 {
		pageNo = 1
	}
	// Harvest lists by id, not by update time: the connector must read
	// every page before its cursor can move.
	matched := since(recs, from, false, func(a, b record) int {
		ai, _ := strconv.ParseInt(a.id, 10, 64)
		bi, _ := strconv.ParseInt(b.id, 10, 64)
		return cmp.Compare(ai, bi)
	})
	start := len(matched)
	if pageNo-1 <= len(matched)/perPage { // a page past the end is empty, and the product cannot overflow
		start = min((pageNo-1)*perPage, len(matched))
	}
	page := matched[start:min(start+perPage, len(matched))]
	last := max(1, (len(matched)+perPage-1)/perPage)
	link := func(n int, rel string) string {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("page", strconv.Itoa(n))
		return fmt.Sprintf(`<http://%s%s?%s>; rel="%s"`, r.Host, r.URL.Path, v.Encode(), rel)
	}
	var links []string
	if pageNo < last {
		links = append(links, link(pageNo+1, "next"))
	}
	if pageNo > 1 {
		links = append(links, link(pageNo-1, "prev"))
	}
	links = append(links, link(last, "last"))
	w.Header().Set("Link", strings.Join(slices.Clip(links), ", "))
	a.page(Greenhouse, len(page))
	writeJSON(w, http.StatusOK, raws(page))
}
