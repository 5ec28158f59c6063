package elasticsearch_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/sluicehq/sluice/internal/testenv"
	"github.com/sluicehq/sluice/internal/testwait"
	"github.com/sluicehq/sluice/pipeline"
	essink "github.com/sluicehq/sluice/sinks/elasticsearch"
)

// The tests in this file run against the shared test stack's
// Elasticsearch-API server, whichever it is (OpenSearch by default,
// ZincSearch with SLUICE_TESTENV_ES=zinc): they only use what both answer.

// search returns the ids of the documents in index (ZincSearch has no
// Count API: search with track_total_hits).
func search(t *testing.T, url, user, pass, index string, size int) (total int, ids []string) {
	t.Helper()
	q := fmt.Sprintf(`{"size":%d,"track_total_hits":true,"query":{"match_all":{}}}`, size)
	req, _ := http.NewRequest(http.MethodPost, url+"/"+index+"/_search", strings.NewReader(q))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(user, pass)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusBadRequest {
		return 0, nil // index not created yet
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("search %s: %d %s", index, res.StatusCode, body)
	}
	for _, h := range gjson.GetBytes(body, "hits.hits").Array() {
		ids = append(ids, h.Get("_id").String())
	}
	return int(gjson.GetBytes(body, "hits.total.value").Int()), ids
}

// waitTotal polls until index holds want documents (neither server makes
// documents searchable at once), then checks a while longer that no more
// appear.
func waitTotal(t *testing.T, url, user, pass, index string, want int) []string {
	t.Helper()
	deadline := time.Now().Add(testwait.Bound())
	for {
		total, _ := search(t, url, user, pass, index, want+10)
		if total > want {
			t.Fatalf("%s holds %d documents, want %d", index, total, want)
		}
		if total == want {
			time.Sleep(1500 * time.Millisecond) // a duplicate would show up by now
			total, ids := search(t, url, user, pass, index, want+10)
			if total != want {
				t.Fatalf("%s holds %d documents after settling, want %d", index, total, want)
			}
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d documents after %s, want %d", index, total, testwait.Bound(), want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// deleteIndexAfter deletes index when the test ends: a long-lived stack
// otherwise keeps every run's indices.
func deleteIndexAfter(t *testing.T, url, user, pass, index string) {
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, url+"/"+index, nil)
		req.SetBasicAuth(user, pass)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("delete index %s: %v", index, err)
			return
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusNotFound {
			body, _ := io.ReadAll(res.Body)
			t.Errorf("delete index %s: %d %s", index, res.StatusCode, body)
		}
	})
}

func TestServerIndexReindexNoDuplicatesDatedIndices(t *testing.T) {
	url, user, pass := testenv.ElasticsearchURL(t)
	prefix := "sluice-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s, _ := newSink(t, url, func(c *essink.Config) {
		c.Username, c.Password = user, pass
		c.Flavor = testenv.ElasticsearchFlavor()
		c.Index = *pipeline.MustParseTemplate(prefix + "-{2006.01.02}")
		c.MaxBatch.Events = 37 // several requests per batch
	})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	days := []time.Time{day, day.Add(24 * time.Hour)}
	for _, ts := range days {
		deleteIndexAfter(t, url, user, pass, prefix+"-"+ts.Format("2006.01.02"))
	}
	const per = 100
	var batch []*pipeline.Event
	for i := range 2 * per {
		batch = append(batch, event(i, 0, days[i%2].Add(time.Duration(i)*time.Second)))
	}
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	// Redelivery: the same events again must overwrite, not add.
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	for d, ts := range days {
		index := prefix + "-" + ts.Format("2006.01.02")
		ids := waitTotal(t, url, user, pass, index, per)
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("%s: duplicate _id %s", index, id)
			}
			seen[id] = true
			n, _ := strconv.Atoi(strings.TrimPrefix(id, "e"))
			if n%2 != d {
				t.Fatalf("%s holds %s, whose event time is on the other day", index, id)
			}
		}
		if len(seen) != per {
			t.Fatalf("%s: %d distinct ids, want %d", index, len(seen), per)
		}
	}
}

func TestServerStart(t *testing.T) {
	url, user, pass := testenv.ElasticsearchURL(t)
	flavor := testenv.ElasticsearchFlavor()
	t.Run("bad credentials", func(t *testing.T) {
		if user == "" {
			t.Skip("the server takes no credentials (OpenSearch without its security plugin): nothing to refuse")
		}
		s, _ := newSink(t, url, func(c *essink.Config) { c.Username, c.Password, c.Flavor = user, pass+"-wrong", flavor })
		err := s.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), "refused the credentials") || !strings.Contains(err.Error(), "401") {
			t.Fatalf("Start with a wrong password: %v", err)
		}
		if strings.Contains(err.Error(), pass) {
			t.Fatal("the password is in the error")
		}
	})
	t.Run("good credentials and index template", func(t *testing.T) {
		name := "sluice-test-tmpl-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		file := t.TempDir() + "/t.json"
		writeFile(t, file, `{"index_patterns":["`+name+`-*"],"template":{"mappings":{"properties":{"amount":{"type":"long"}}}}}`)
		s, _ := newSink(t, url, func(c *essink.Config) {
			c.Username, c.Password, c.Flavor = user, pass, flavor
			c.IndexTemplate = &essink.IndexTemplate{Name: name, File: file}
		})
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Ready(); err != nil {
			t.Fatalf("Ready after Start: %v", err)
		}
	})
}
