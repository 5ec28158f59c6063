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

// checkTap refuses the tap where it would expose payloads beyond this
// host without an explicit setting.
func (m *MetricsConfig) checkTap() []error {
	if !m.Tap {
		return nil
	}
	if m.Listen == "" {
		return []error{FieldErrorf("metrics.tap", "needs metrics.listen: the tap is served by the metrics server")}
	}
	host, _, err := net.SplitHostPort(m.Listen)
	if err != nil || m.TapAllowPublic || isLoopback(host) {
		return nil
	}
	return []error{FieldErrorf("metrics.tap", "metrics.listen %q is not a loopback address: the tap would serve live payloads (personal data) to anyone who reaches it; bind 127.0.0.1, or set metrics.tap_allow_public: true behind your own access control", m.Listen)}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
