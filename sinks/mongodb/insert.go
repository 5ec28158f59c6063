package mongodb

// insert.go sends insert mode's documents as the server's own insert
// command. The driver's InsertOne/InsertMany/BulkWrite copy every
// document once more and decode it again to find its _id (mongo.ensureID
// reads each document through a fresh 4 KiB bufio.Reader and a struct
// decoder): on the consumer's hot path that was about a third of the
// sink's CPU and most of its allocations, for an _id this sink already
// put first. The command built here holds the documents as encoded.

import (
	"context"
	"errors"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// maxCommandDocs bounds the bytes of the documents array of one insert
// command. A server takes a command of up to its maxBsonObjectSize (16 MiB)
// plus 16 KiB for the command's own fields; max_document_bytes is at most
// 16 MiB, so one document always fits alone.
const maxCommandDocs = 16 << 20

// insertCommand is how insert mode writes: true unless the write concern
// is w:0, which the driver sends unacknowledged (a command always waits
// for its reply).
func insertCommand(c Config) bool { return c.Mode == ModeInsert && c.WriteConcern != "0" }

// insert writes ops (insert mode: each op's doc) with unordered insert
// commands of at most maxCommandDocs bytes of documents each. It returns
// the number inserted and an error shaped as the driver's BulkWrite
// returns it: a mongo.BulkWriteException with indexes into ops for write
// errors and write concern errors, else the error of the command that
// failed as a whole (later commands are not sent, as with BulkWrite).
func (s *Sink) insert(ctx context.Context, coll *mongo.Collection, ops []op) (int64, error) {
	bufp := s.cmdBufs.Get()
	defer func() {
		if cap(*bufp) <= 2*maxCommandDocs+1<<20 {
			s.cmdBufs.Put(bufp)
		}
	}()
	var (
		inserted int64
		bwe      mongo.BulkWriteException
		failed   bool
	)
	for first := 0; first < len(ops); {
		cmd, next := s.appendInsert((*bufp)[:0], coll.Name(), ops[first:])
		*bufp = cmd
		res := s.db.RunCommand(ctx, bson.Raw(cmd))
		raw, err := res.Raw()
		var we mongo.WriteException
		switch {
		case err == nil:
		case errors.As(err, &we):
			raw = we.Raw
			failed = true
			for _, e := range we.WriteErrors {
				e.Index += first
				bwe.WriteErrors = append(bwe.WriteErrors, mongo.BulkWriteError{WriteError: e})
			}
			if we.WriteConcernError != nil {
				bwe.WriteConcernError = we.WriteConcernError
			}
			bwe.Labels = append(bwe.Labels, we.Labels...)
		default:
			return inserted, err
		}
		if n, ok := raw.Lookup("n").AsInt64OK(); ok {
			inserted += n
		}
		first += next
	}
	if failed {
		return inserted, bwe
	}
	return inserted, nil
}

// appendInsert appends the insert command for the longest prefix of ops
// whose documents fit in s.maxCmdDocs (maxCommandDocs; at least one), and
// returns how many ops it holds. The write concern is the sink's, as the driver would
// send it.
func (s *Sink) appendInsert(dst []byte, coll string, ops []op) ([]byte, int) {
	start, dst := bsoncore.AppendDocumentStart(dst)
	dst = bsoncore.AppendStringElement(dst, "insert", coll)
	arr, dst := bsoncore.AppendArrayElementStart(dst, "documents")
	var key [20]byte
	size, n := 0, 0
	for _, o := range ops {
		if n > 0 && size+len(o.doc) > s.maxCmdDocs {
			break
		}
		dst = bsoncore.AppendDocumentElement(dst, string(strconv.AppendInt(key[:0], int64(n), 10)), o.doc)
		size += len(o.doc)
		n++
	}
	dst, _ = bsoncore.AppendArrayEnd(dst, arr)
	dst = bsoncore.AppendBooleanElement(dst, "ordered", false)
	wc, dst := bsoncore.AppendDocumentElementStart(dst, "writeConcern")
	if s.cfg.WriteConcern == "majority" {
		dst = bsoncore.AppendStringElement(dst, "w", "majority")
	} else {
		w, _ := strconv.Atoi(s.cfg.WriteConcern) // Validate checked it
		dst = bsoncore.AppendInt32Element(dst, "w", int32(w))
	}
	if s.cfg.Journal {
		dst = bsoncore.AppendBooleanElement(dst, "j", true)
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, wc)
	dst, _ = bsoncore.AppendDocumentEnd(dst, start)
	return dst, n
}
