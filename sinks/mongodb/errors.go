package mongodb

// errors.go classifies the server's errors and keeps credentials out of
// messages.

import (
	"errors"
	"net/url"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sluicehq/sluice/pipeline"
)

func isDuplicateKey(we mongo.WriteError) bool {
	return we.Code == 11000 || we.Code == 11001 || we.Code == 12582
}

// onID reports whether a duplicate-key error is about _id rather than a
// unique secondary index, which would be a real conflict.
func onID(we mongo.WriteError) bool {
	if kp, err := we.Details.LookupErr("keyPattern"); err == nil {
		if d, ok := kp.DocumentOK(); ok {
			elems, _ := d.Elements()
			return len(elems) == 1 && elems[0].Key() == "_id"
		}
	}
	// Servers that send no keyPattern name the index in the message.
	return strings.Contains(we.Message, "_id_") || strings.Contains(we.Message, "index: _id") || !strings.Contains(we.Message, "index:")
}

// retryableCodes are per-document errors a later attempt can get past:
// elections, conflicts, shutdowns, timeouts, throttling.
var retryableCodes = map[int]bool{
	6: true, 7: true, 24: true, 46: true, 50: true, 64: true, 89: true, 91: true,
	112: true, 117: true, 133: true, 134: true, 189: true, 262: true, 9001: true,
	10107: true, 11600: true, 11602: true, 13435: true, 13436: true, 16500: true,
}

// classifyWriteError marks per-document errors that the same document will
// hit again (validation, bad field names, too large) as permanent.
func classifyWriteError(err error, we mongo.WriteError) error {
	if retryableCodes[we.Code] {
		return err
	}
	return pipeline.Permanent(err)
}

// redactURI keeps the scheme and hosts of a connection string.
func redactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		if i := strings.LastIndex(uri, "@"); i >= 0 {
			return "mongodb://…@" + uri[i+1:]
		}
		return uri
	}
	return u.Scheme + "://" + u.Host
}

// redactErr removes the URI's password from an error message.
func redactErr(err error, uri string) error {
	if err == nil {
		return nil
	}
	u, perr := url.Parse(uri)
	if perr != nil || u.User == nil {
		return err
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}
