// Command kfake runs an in-memory, Kafka-protocol-compatible cluster
// (github.com/twmb/franz-go/pkg/kfake) on fixed loopback ports for the
// sluice local test stack. All data is kept in RAM and lost on exit.
//
// It stops cleanly on SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("kfake: ")

	var (
		ports = flag.String("ports", envOr("SLUICE_TESTENV_KAFKA_PORTS", "19092,19093,19094"),
			"comma-separated broker ports on 127.0.0.1; one broker per port (env SLUICE_TESTENV_KAFKA_PORTS)")
		minSession = flag.Duration("min-session-timeout", durEnvOr("SLUICE_TESTENV_KAFKA_MIN_SESSION_TIMEOUT", 6*time.Second),
			"minimum consumer-group session timeout the brokers accept (env SLUICE_TESTENV_KAFKA_MIN_SESSION_TIMEOUT)")
		partitions = flag.Int("default-partitions", 0,
			"partitions for auto-created topics and CreateTopics with -1 partitions (0 keeps kfake's default)")
		autoCreate = flag.Bool("auto-create-topics", true, "allow metadata requests to auto-create topics")
		verbose    = flag.Bool("v", false, "log every request (kfake info level)")
	)
	flag.Parse()

	portList, err := parsePorts(*ports)
	if err != nil {
		log.Fatal(err)
	}

	level := kfake.LogLevelWarn
	if *verbose {
		level = kfake.LogLevelInfo
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(len(portList)),
		kfake.Ports(portList...),
		kfake.GroupMinSessionTimeout(*minSession),
		kfake.WithLogger(kfake.BasicLogger(os.Stderr, level)),
	}
	if *partitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(*partitions))
	}
	if *autoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		log.Fatalf("starting cluster: %v", err)
	}
	log.Printf("listening on %s", strings.Join(c.ListenAddrs(), ","))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Printf("got %v, shutting down", s)
	c.Close()
	log.Print("stopped")
}

func parsePorts(s string) ([]int, error) {
	var ports []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("bad port %q in %q", f, s)
		}
		ports = append(ports, p)
	}
	if len(ports) == 0 {
		return nil, fmt.Errorf("no ports in %q", s)
	}
	return ports, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func durEnvOr(key string, def time.Duration) time.Duration {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		log.Fatalf("%s=%q: %v", key, v, err)
	}
	return d
}
