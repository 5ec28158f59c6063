package vendorreplay

import (
	"cmp"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
)

// leverList answers GET /v1/opportunities: Basic auth with the API key as
// user name, updated_at_start in epoch milliseconds, and limit/offset
// paging where offset is the opaque `next` of the page before.
func (a *API) leverList(w http.ResponseWriter, r *http.Request) {
	if !basicKey(r, a.creds.LeverAPIKey) {
		a.unauthorized(w, Lever, map[string]string{"code": "Unauthorized", "message": "Invalid API key"})
		return
	}
	recs, ok := a.set.objects[Lever][r.PathValue("object")]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"code": "ResourceNotFound", "message": "Resource not found"})
		return
	}
	q := r.URL.Query()
	badRequest := func(msg string) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"code": "BadRequestError", "message": msg})
	}
	startMS, err := strconv.ParseInt(cmp.Or(q.Get("updated_at_start"), "0"), 10, 64)
	if err != nil {
		badRequest("updated_at_start must be a timestamp in milliseconds")
		return
	}
	limit, err := strconv.Atoi(cmp.Or(q.Get("limit"), "100"))
	if err != nil || limit < 1 || limit > 100 {
		badRequest("limit must be 1 to 100")
		return
	}
	offset := 0
	if o := q.Get("offset"); o != "" {
		b, derr := base64.RawURLEncoding.DecodeString(o)
		n, perr := strconv.Atoi(string(b))
		if derr != nil || perr != nil || n < 0 {
			badRequest("invalid offset")
			return
		}
		offset = n
	}
	// Lever lists by creation, newest first, not by update time: the
	// connector must read every page before its cursor can move.
	matched := since(recs, time.UnixMilli(startMS), false, func(a, b record) int {
		return cmp.Compare(gjson.GetBytes(b.raw, "createdAt").Int(), gjson.GetBytes(a.raw, "createdAt").Int())
	})
	offset = min(offset, len(matched)) // also keeps offset+limit from overflowing
	page := matched[offset:min(offset+limit, len(matched))]
	body := map[string]any{"data": raws(page), "hasNext": offset+limit < len(matched)}
	if offset+limit < len(matched) {
		body["next"] = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(offset + limit)))
	}
	a.page(Lever, len(page))
	writeJSON(w, http.StatusOK, body)
}
