package mongodb

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sluicehq/sluice/pipeline"
)

func writeErr(i, code int, msg string, details bson.D) mongo.BulkWriteError {
	var raw bson.Raw
	if details != nil {
		raw, _ = bson.Marshal(details)
	}
	return mongo.BulkWriteError{WriteError: mongo.WriteError{Index: i, Code: code, Message: msg, Details: raw}}
}

// TestSettleMapsErrorsToEvents checks how a bulk write's outcome becomes
// per-event results: which events fail, permanently or not, and which
// duplicate keys count as already stored.
func TestSettleMapsErrorsToEvents(t *testing.T) {
	idKey := bson.D{{Key: "keyPattern", Value: bson.D{{Key: "_id", Value: 1}}}}
	emailKey := bson.D{{Key: "keyPattern", Value: bson.D{{Key: "email", Value: 1}}}}
	// want per op: "" stored, "P:<text>" permanent, "R:<text>" retryable,
	// "D" an upsert duplicate for checkApplied.
	tests := []struct {
		name string
		mode string
		err  error
		want []string
	}{
		{"success", ModeInsert, nil, []string{"", "", ""}},
		{"per-document errors by index", ModeInsert, mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{
			writeErr(0, 121, "Document failed validation", nil),
			writeErr(2, 10334, "object to insert too large", nil),
		}}, []string{"P:Document failed validation", "", "P:too large"}},
		{"insert: duplicate _id is already stored; a unique index is a conflict", ModeInsert, mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{
			writeErr(0, 11000, "E11000 duplicate key error collection: crm.c index: _id_ dup key", idKey),
			writeErr(1, 11000, "E11000 duplicate key error collection: crm.c index: email_1 dup key", emailKey),
		}}, []string{"", "P:email_1", ""}},
		{"upsert: duplicate _id goes to checkApplied", ModeUpsert, mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{
			writeErr(1, 11000, "E11000 duplicate key error collection: crm.c", nil),
		}}, []string{"", "D", ""}},
		{"replace: duplicate _id is a race, retried", ModeReplace, mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{
			writeErr(0, 11000, "E11000 duplicate key error index: _id_", idKey),
		}}, []string{"R:raced", "", ""}},
		{"transient per-document errors are retryable", ModeUpsert, mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{
			writeErr(0, 112, "WriteConflict", nil),
			writeErr(1, 10107, "not primary", nil),
			writeErr(2, 11602, "InterruptedDueToReplStateChange", nil),
		}}, []string{"R:WriteConflict", "R:not primary", "R:Interrupted"}},
		{"write concern error: everything not failed otherwise is retried", ModeInsert, mongo.BulkWriteException{
			WriteConcernError: &mongo.WriteConcernError{Name: "WriteConcernFailed", Code: 64, Message: "waiting for replication timed out"},
			WriteErrors:       []mongo.BulkWriteError{writeErr(1, 2, "invalid key", nil)},
		}, []string{"R:waiting for replication", "P:invalid key", "R:waiting for replication"}},
		{"the command failed as a whole", ModeInsert, fmt.Errorf("connection: %w", &net.OpError{Op: "read", Err: errors.New("connection reset")}),
			[]string{"R:connection reset", "R:connection reset", "R:connection reset"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newMetrics(nil)
			s := &Sink{cfg: Config{Mode: tt.mode, Database: "crm"}, m: m}
			ops := make([]op, 3)
			for i := range ops {
				ops[i] = op{index: 10 + i, id: fmt.Sprintf("id%d", i), event: &pipeline.Event{ID: fmt.Sprintf("e%d", i)}}
			}
			errs := make([]error, 13)
			dups := s.settle(ops, "c", tt.err, errs)
			isDup := map[int]bool{}
			for _, d := range dups {
				isDup[d.index-10] = true
			}
			for i, want := range tt.want {
				got := errs[10+i]
				switch {
				case want == "D":
					if !isDup[i] || got != nil {
						t.Errorf("op %d: dup %v err %v, want a duplicate for checkApplied", i, isDup[i], got)
					}
				case want == "":
					if got != nil || isDup[i] {
						t.Errorf("op %d: %v, want stored", i, got)
					}
				default:
					perm := want[0] == 'P'
					if got == nil || pipeline.IsPermanent(got) != perm || !strings.Contains(got.Error(), want[2:]) {
						t.Errorf("op %d: %v (permanent %v), want %s", i, got, got != nil && pipeline.IsPermanent(got), want)
					}
				}
			}
		})
	}
}
