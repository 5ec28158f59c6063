package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/top"
)

func topCmd(stdout io.Writer) *cobra.Command {
	var interval time.Duration
	var once bool
	cmd := &cobra.Command{
		Use:   "top [URL...]",
		Short: "Live view of running pipelines from their /metrics: events/s per component, bottleneck, lag",
		Long: `A terminal view over one or several replicas' metrics servers (default
http://127.0.0.1:9102): events in/out/dropped/dead-lettered per second per
component, retries by class, how busy each component is (the bottleneck is
highlighted), batches in flight, p99 end-to-end latency and Kafka lag per
partition (Kinesis: seconds behind per shard), summed over the replicas.
Refreshes every second; q quits. --once prints one frame and exits.`,
		Example: `  sluice top
  sluice top http://pod-a:9102 http://pod-b:9102
  sluice top --once 127.0.0.1:9102`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"http://127.0.0.1:9102"}
			}
			urls := make([]string, len(args))
			for i, a := range args {
				u, err := metricsURL(a)
				if err != nil {
					return err
				}
				urls[i] = u
			}
			client := &http.Client{Timeout: max(interval, 2*time.Second)}
			first := top.Scrape(cmd.Context(), client, urls)
			if len(first.Errors) == len(urls) {
				return allDown(first)
			}
			if len(first.Components) == 0 {
				return fmt.Errorf("no sluice metrics at %s (is metrics.listen set in the pipeline?)", strings.Join(urls, ", "))
			}
			if once {
				select {
				case <-time.After(interval):
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				}
				second := top.Scrape(cmd.Context(), client, urls)
				_, err := io.WriteString(stdout, top.Render(urls, first, second))
				return err
			}
			m := top.NewModel(cmd.Context(), urls, interval, client)
			_, err := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(cmd.Context())).Run()
			if errors.Is(err, tea.ErrProgramKilled) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "refresh interval")
	cmd.Flags().BoolVar(&once, "once", false, "print one frame (two scrapes, --interval apart) and exit, without the terminal UI")
	return cmd
}

// metricsURL accepts host:port, http://host:port or a full /metrics URL.
func metricsURL(a string) (string, error) {
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%q is not an address like http://127.0.0.1:9102", a)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/metrics"
	}
	return u.String(), nil
}

func allDown(s *top.Snapshot) error {
	lines := make([]string, 0, len(s.Errors))
	for u, err := range s.Errors {
		lines = append(lines, fmt.Sprintf("%s: %v", u, err))
	}
	sort.Strings(lines)
	return fmt.Errorf("no pipeline answers: %s", strings.Join(lines, "; "))
}
