package elasticsearch_test

import (
	"context"
	"fmt"
	"github.com/sluicehq/sluice/internal/testwait"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/conformance"
	essink "github.com/sluicehq/sluice/sinks/elasticsearch"
)

// TestConformance runs the sink table against the shared Elasticsearch-API
// server, a fresh index per case. Only OpenSearch maps fields strictly, so
// only there does the poison event exist: "seq" as text in an index that
// maps it as a long (a 400 mapper_parsing_exception for that item). On
// ZincSearch the poison cases skip.
func TestConformance(t *testing.T) {
	base, user, pass := testenv.ElasticsearchURL(t)
	flavor := testenv.ElasticsearchFlavor()
	do := func(ctx context.Context, method, path, body string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(user, pass)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, b, err
	}
	conformance.TestSink(t, func(t *testing.T) *conformance.SinkUnderTest {
		index := "sluice-conf-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		t.Cleanup(func() { _, _, _ = do(context.Background(), http.MethodDelete, "/"+index, "") })
		mutate := func(c *essink.Config) {
			c.Flavor = flavor
			c.Username, c.Password = user, pass
			c.Index = *pipeline.MustParseTemplate(index)
			c.Timeout = pipeline.Duration(30 * time.Second)
		}
		s, _ := newSink(t, base, mutate)
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		su := &conformance.SinkUnderTest{
			Sink: s,
			Kind: conformance.Store,
			ReadBack: func(ctx context.Context) ([]conformance.Record, error) {
				// One poll must not wait long on a busy server: the suite
				// polls again.
				ctx, cancel := context.WithTimeout(ctx, testwait.Bound())
				defer cancel()
				if flavor == essink.FlavorOpenSearch { // ZincSearch has no refresh API
					_, _, _ = do(ctx, http.MethodPost, "/"+index+"/_refresh", "")
				}
				status, body, err := do(ctx, http.MethodPost, "/"+index+"/_search", `{"size":1000,"query":{"match_all":{}}}`)
				switch {
				case err != nil:
					return nil, err
				case status == http.StatusNotFound || status == http.StatusBadRequest:
					return nil, nil // not created yet
				case status != http.StatusOK:
					return nil, fmt.Errorf("search %s: %d %s", index, status, body)
				}
				var recs []conformance.Record
				for _, h := range gjson.GetBytes(body, "hits.hits").Array() {
					recs = append(recs, conformance.Record{ID: h.Get("_id").String(), Body: []byte(h.Get("_source").Raw)})
				}
				return recs, nil
			},
			Unreachable: func(t *testing.T) pipeline.Sink {
				u, _ := newSink(t, "http://127.0.0.1:1", func(c *essink.Config) {
					mutate(c)
					c.Timeout = pipeline.Duration(2 * time.Second)
				})
				return u
			},
		}
		if flavor == essink.FlavorOpenSearch {
			status, body, err := do(context.Background(), http.MethodPut, "/"+index, `{"mappings":{"properties":{"seq":{"type":"long"}}}}`)
			if err != nil || status/100 != 2 {
				t.Fatalf("create %s: %d %s %v", index, status, body, err)
			}
			su.Poison = func(id, key string) *pipeline.Event {
				ev := conformance.Event(id, key, 0)
				ev.Body = fmt.Appendf(nil, `{"id":%q,"seq":"not a number"}`, id)
				return ev
			}
		}
		return su
	})
}
