package top

import (
	"context"
	"net/http"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// Model is the bubbletea model of `sluice top`.
type Model struct {
	URLs     []string
	Interval time.Duration
	// Scrape is how a refresh reads the replicas (Scrape with a client in
	// production; recorded snapshots in tests).
	Scrape     func(ctx context.Context, urls []string) *Snapshot
	prev, cur  *Snapshot
	ctx        context.Context
	cancel     context.CancelFunc
	quitting   bool
	scrapeBusy bool
}

// NewModel scrapes urls every interval with client.
func NewModel(ctx context.Context, urls []string, interval time.Duration, client *http.Client) *Model {
	ctx, cancel := context.WithCancel(ctx)
	return &Model{URLs: urls, Interval: interval, ctx: ctx, cancel: cancel,
		Scrape: func(ctx context.Context, urls []string) *Snapshot { return Scrape(ctx, client, urls) }}
}

type scrapedMsg struct{ s *Snapshot }
type tickMsg struct{}

func (m *Model) scrape() tea.Cmd {
	m.scrapeBusy = true
	ctx, urls, scrape := m.ctx, m.URLs, m.Scrape
	return func() tea.Msg { return scrapedMsg{scrape(ctx, urls)} }
}

func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.Interval, func(time.Time) tea.Msg { return tickMsg{} })
}

// Init scrapes at once.
func (m *Model) Init() tea.Cmd { return m.scrape() }

// Update handles keys, ticks and scrapes.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "Q", "ctrl+c", "esc":
			m.quitting = true
			if m.cancel != nil {
				m.cancel()
			}
			return m, tea.Quit
		}
	case scrapedMsg:
		m.scrapeBusy = false
		m.prev, m.cur = m.cur, msg.s
		if m.prev != nil && len(m.prev.Errors) == len(m.URLs) {
			m.prev = nil // nothing to compare with
		}
		return m, m.tick()
	case tickMsg:
		if !m.scrapeBusy {
			return m, m.scrape()
		}
	}
	return m, nil
}

// View renders the latest scrapes.
func (m *Model) View() string {
	if m.quitting {
		return ""
	}
	if m.cur == nil {
		return "sluice top: scraping " + joinURLs(m.URLs) + "…\n"
	}
	return Render(m.URLs, m.prev, m.cur)
}

func joinURLs(urls []string) string {
	s := ""
	for i, u := range urls {
		if i > 0 {
			s += ", "
		}
		s += u
	}
	return s
}
