package pipeline

import (
	"fmt"
	"net"
	"strconv"
)

// checkListen checks a listen address is host:port with a port number
// (host may be empty: all interfaces). "9102" alone would fail only when
// the pipeline starts, after the source connected.
func checkListen(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (write 127.0.0.1:%s, or :%s for every interface)", addr, addr, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: the port must be a number from 0 to 65535", addr)
	}
	return nil
}
