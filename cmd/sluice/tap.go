package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/transforms/filter"
)

// withTap adds /tap (pipeline.TapHandler, with the filter transform's
// expressions) in front of the metrics handler h.
func withTap(p *pipeline.Pipeline, h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/tap", p.TapHandler(tapFilter))
	mux.Handle("/", h)
	return mux
}

// tapFilter compiles a --filter expression with the filter transform.
func tapFilter(expr string) (func(*pipeline.Event) bool, error) {
	f, err := filter.New(pipeline.NewBuildContext("tap", "filter", nil, nil), filter.Config{Keep: expr})
	if err != nil {
		return nil, err
	}
	return func(ev *pipeline.Event) bool {
		out, err := f.Apply(context.Background(), []*pipeline.Event{ev})
		return err == nil && len(out) == 1
	}, nil
}

type tapOptions struct {
	component, stage, filter, format string
	limit                            int
	rate                             float64
	timeout                          time.Duration
}

func tapCmd(stdout io.Writer) *cobra.Command {
	var o tapOptions
	cmd := &cobra.Command{
		Use:   "tap [URL]",
		Short: "Stream sampled live events from a running pipeline (metrics.tap: true)",
		Long: `Stream sampled events as they enter or leave one component of a running
pipeline, from its metrics server (default http://127.0.0.1:9102). The pipeline
must set metrics.tap: true. Events carry their payloads, which can hold personal
data: treat the output accordingly. See docs/tooling.md.`,
		Example: `  sluice tap --component transforms[1].enrich --limit 5
  sluice tap http://127.0.0.1:9102 --stage after:transforms[2] --filter 'type == "bounce"' --format table
  sluice tap --component sinks[0] --rate 100`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			base := "http://127.0.0.1:9102"
			if len(args) == 1 {
				base = args[0]
			}
			return runTap(cmd.Context(), base, o, stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.component, "component", "", `the component: its label (sinks[0].mongodb) or path (transforms[2])`)
	f.StringVar(&o.stage, "stage", "", `after:COMPONENT (leaving it, the default) or before:COMPONENT (entering it)`)
	f.StringVar(&o.filter, "filter", "", `only events for which this expression is true (the filter transform's language)`)
	f.IntVar(&o.limit, "limit", 0, "stop after this many events (0: until interrupted)")
	f.Float64Var(&o.rate, "rate", pipeline.TapDefaultRate, fmt.Sprintf("at most this many events a second (≤ %d)", pipeline.TapMaxRate))
	f.StringVar(&o.format, "format", "json", "json (one event a line) or table")
	f.DurationVar(&o.timeout, "timeout", 0, "stop after this long (0: until interrupted)")
	return cmd
}

func runTap(ctx context.Context, base string, o tapOptions, stdout io.Writer) error {
	stage := pipeline.TapAfter
	if o.stage != "" {
		s, comp, ok := strings.Cut(o.stage, ":")
		if !ok || (s != pipeline.TapAfter && s != pipeline.TapBefore) || comp == "" {
			return fmt.Errorf("--stage must be after:COMPONENT or before:COMPONENT, not %q", o.stage)
		}
		if o.component != "" && o.component != comp {
			return fmt.Errorf("--component %s and --stage %s name different components", o.component, o.stage)
		}
		stage, o.component = s, comp
	}
	if o.component == "" {
		return errors.New("name a component: --component transforms[0] or --stage after:transforms[0] (the error lists them when you guess wrong)")
	}
	if o.format != "json" && o.format != "table" {
		return fmt.Errorf("--format must be json or table, not %q", o.format)
	}
	u, err := url.Parse(strings.TrimRight(base, "/") + "/tap")
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL like http://127.0.0.1:9102", base)
	}
	q := url.Values{"component": {o.component}, "stage": {stage}, "rate": {strconv.FormatFloat(o.rate, 'f', -1, 64)}}
	if o.limit > 0 {
		q.Set("limit", strconv.Itoa(o.limit))
	}
	if o.filter != "" {
		q.Set("filter", o.filter)
	}
	u.RawQuery = q.Encode()
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("tap %s: no pipeline answers there (%v)", base, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode == http.StatusNotFound && !strings.Contains(string(msg), "tap is off") {
			return fmt.Errorf("tap %s: no /tap endpoint there (not a sluice metrics server, or an older sluice)", base)
		}
		return fmt.Errorf("tap %s: %s", base, strings.TrimSpace(string(msg)))
	}
	return printTap(ctx, resp.Body, o.format, stdout)
}

// printTap copies the event lines, or renders them as a table.
func printTap(ctx context.Context, r io.Reader, format string, stdout io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	table := format == "table"
	const row = "%-12s  %-22s  %-6s  %-22s  %-18s  %s\n"
	if table {
		fmt.Fprintf(stdout, row, "AT", "COMPONENT", "STAGE", "ID", "KEY", "BODY")
	}
	for sc.Scan() {
		if !table {
			fmt.Fprintf(stdout, "%s\n", sc.Bytes())
			continue
		}
		var te pipeline.TapEvent
		if err := json.Unmarshal(sc.Bytes(), &te); err != nil {
			continue
		}
		if te.Dropped > 0 {
			fmt.Fprintf(stdout, "(%d samples dropped: this terminal is slower than --rate)\n", te.Dropped)
		} else {
			body := string(te.Body)
			if body == "" {
				body = strconv.Quote(te.Text)
			}
			fmt.Fprintf(stdout, row, te.At.Format("15:04:05.000"), te.Component, te.Stage, te.ID, te.Key, truncate(body, 100))
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("tap: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
