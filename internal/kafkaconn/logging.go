package kafkaconn

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"strings"

	"github.com/segmentio/kafka-go"
)

// unknownReadError is how kafka-go's Reader reports a fetch that failed
// with an error it has no case for; it then closes the connection and
// fetches again from the same offset.
const unknownReadError = "the kafka reader got an unknown error reading partition"

// ReaderErrorLogger is the ErrorLogger for a kafka-go Reader.
//
// kafka-go sets the connection's read deadline of each fetch at MaxWait and
// asks the broker to wait a little less: MaxWait less a quarter of it (up to
// 1s), less one second above that. On a partition with nothing new the broker holds
// the fetch for that wait and answers empty; when the answer arrives after
// the deadline (a busy machine, a GC pause) the Reader reports the read
// timeout as "an unknown error", reconnects and fetches again from the same
// offset. Nothing is lost or delayed, so such a timeout at an offset idle
// confirms (the partition was read up to its high watermark) is logged at
// Debug. A timeout while records are waiting, and every other error, stays
// a Warn.
func ReaderErrorLogger(log *slog.Logger, idle func(offset int64) bool) kafka.Logger {
	return kafka.LoggerFunc(func(msg string, args ...any) {
		if offset, ok := IdleFetchTimeout(msg, args, idle); ok {
			log.Debug("kafka fetch: the broker's long poll outlived the read deadline on an idle partition; fetching again", "offset", offset)
			return
		}
		log.Warn("kafka reader: " + fmt.Sprintf(msg, args...))
	})
}

// IdleFetchTimeout reports whether a kafka-go Reader error message is a
// read timeout of a fetch at an offset idle says the partition had no
// records past, and that offset.
func IdleFetchTimeout(msg string, args []any, idle func(offset int64) bool) (int64, bool) {
	// "... reading partition %d of %s at offset %d: %s": partition, topic,
	// offset, error.
	if !strings.HasPrefix(msg, unknownReadError) || len(args) != 4 {
		return 0, false
	}
	err, _ := args[3].(error)
	if !IsTimeout(err) {
		return 0, false
	}
	v := reflect.ValueOf(args[2])
	if !v.IsValid() || !v.CanInt() {
		return 0, false
	}
	offset := v.Int()
	if idle == nil || !idle(offset) {
		return offset, false
	}
	return offset, true
}

// IsTimeout reports whether err is a network read or write deadline
// passing (kafka-go's "i/o timeout").
func IsTimeout(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
