package kafka

import (
	"bufio"
	"context"
	"net"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// readBufferSize is the read buffer of a partition's connection.
//
// kafka-go's Conn reads through a bufio.Reader of 4 KiB, so a fetch
// response of 4 MiB costs about a thousand read(2) calls: a third of the
// source's CPU at 1.7 KB records (bench/RESULTS.md, "sixth round"). Reading
// the socket through 64 KiB under kafka-go's buffer makes it ~64 calls, for
// one more copy of the bytes in memory.
const readBufferSize = 64 << 10

// bufferedConn is a net.Conn whose reads go through a buffer; deadlines,
// writes and Close are the connection's own.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// fetchDialer is d dialing connections read through readBufferSize, for
// the partitions' fetch connections. d's TLS and SASL apply on top.
func fetchDialer(d *kafkago.Dialer) *kafkago.Dialer {
	nd := &net.Dialer{Timeout: d.Timeout, KeepAlive: 30 * time.Second}
	d.DialFunc = func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := nd.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufferSize)}, nil
	}
	return d
}
