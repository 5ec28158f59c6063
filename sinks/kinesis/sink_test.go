package kinesis_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/awskinesis"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/pipeline/pipelinetest"
	kinesissink "github.com/sluicehq/sluice/sinks/kinesis"
)

func newSink(t *testing.T, endpoint, key string) *kinesissink.Sink {
	t.Helper()
	c := kinesissink.Config{Stream: "s", Region: "us-east-1", Endpoint: endpoint, PartitionKey: key,
		Credentials: &awskinesis.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := kinesissink.New(pipelinetest.BuildContext(), c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ev(id, key, body string) *pipeline.Event {
	return &pipeline.Event{ID: id, Key: []byte(key), Payload: []byte(body), Body: []byte(body)}
}

// TestPartialFailuresAndLimits answers PutRecords as the Kinesis API
// documents a partial failure: per-record ErrorCode entries in request order.
func TestPartialFailuresAndLimits(t *testing.T) {
	var calls []int
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutRecords") {
			http.Error(w, "unexpected", 400)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var in struct {
			Records []struct{ PartitionKey string }
		}
		if err := json.Unmarshal(body, &in); err != nil {
			t.Errorf("request: %v", err)
		}
		calls = append(calls, len(in.Records))
		type rec struct {
			SequenceNumber string `json:",omitempty"`
			ShardId        string `json:",omitempty"`
			ErrorCode      string `json:",omitempty"`
			ErrorMessage   string `json:",omitempty"`
		}
		out := struct {
			FailedRecordCount int
			Records           []rec
		}{}
		for i, r := range in.Records {
			keys = append(keys, r.PartitionKey)
			if i == 1 {
				out.FailedRecordCount++
				out.Records = append(out.Records, rec{ErrorCode: "ProvisionedThroughputExceededException", ErrorMessage: "Rate exceeded for shard shardId-000000000000"})
				continue
			}
			out.Records = append(out.Records, rec{SequenceNumber: "4959", ShardId: "shardId-000000000000"})
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(out)
	}))
	defer srv.Close()
	s := newSink(t, srv.URL, "data.Id")
	batch := []*pipeline.Event{
		ev("e0", "k0", `{"data":{"Id":"003A"}}`),
		ev("e1", "k1", `{"data":{"Id":"003B"}}`),                                      // throttled by the server
		ev("e2", "k2", `{"data":{"Id":"003C"},"x":"`+strings.Repeat("a", 1<<20)+`"}`), // over 1 MiB
		ev("e3", "k3", `{"nodata":true}`),                                             // no partition key field
		ev("e4", "k4", `{"data":{"Id":"003E"}}`),
	}
	err := s.Write(context.Background(), batch)
	var be *pipeline.BatchError
	if !errors.As(err, &be) || be.Len() != 3 {
		t.Fatalf("err = %v, want failures for e1, e2, e3", err)
	}
	got := map[int]bool{}
	for _, f := range be.Failures {
		got[f.Index] = pipeline.IsPermanent(f.Err)
	}
	if got[1] || !got[2] || !got[3] {
		t.Fatalf("permanent by index = %v: throttling must be retryable, oversize and missing key permanent", got)
	}
	if len(calls) != 1 || calls[0] != 3 || strings.Join(keys, ",") != "003A,003B,003E" {
		t.Fatalf("calls %v keys %v, want one PutRecords of the 3 valid records keyed by data.Id", calls, keys)
	}
}

func TestSplitsAtFiveHundredRecords(t *testing.T) {
	var calls []int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Records []json.RawMessage }
		_ = json.NewDecoder(r.Body).Decode(&in)
		calls = append(calls, len(in.Records))
		recs := make([]map[string]string, len(in.Records))
		for i := range recs {
			recs[i] = map[string]string{"SequenceNumber": "1", "ShardId": "shardId-000000000000"}
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(map[string]any{"FailedRecordCount": 0, "Records": recs})
	}))
	defer srv.Close()
	s := newSink(t, srv.URL, "")
	var batch []*pipeline.Event
	for i := range 1201 {
		batch = append(batch, ev("e", "k", `{"i":`+strings.Repeat("1", 1+i%3)+`}`))
	}
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 3 || calls[0] != 500 || calls[1] != 500 || calls[2] != 201 {
		t.Fatalf("PutRecords sizes %v, want 500, 500, 201", calls)
	}
}

func TestWholeRequestFailureIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(400)
		_, _ = io.WriteString(w, `{"__type":"ResourceNotFoundException","message":"Stream s under account 000000000000 not found."}`)
	}))
	defer srv.Close()
	err := newSink(t, srv.URL, "").Write(context.Background(), []*pipeline.Event{ev("e", "k", `{}`)})
	if err == nil || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v, want a retryable error naming the cause", err)
	}
}
