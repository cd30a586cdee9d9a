package agent

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// metrics are the agent's Prometheus metrics, written in the text
// exposition format (version 0.0.4) by hand.
type metrics struct {
	mu         sync.Mutex
	transfers  map[[3]string]float64 // direction, outcome, transport → count
	bytes      map[string]float64    // direction → bytes carried
	retries    float64
	reconnects float64
}

func newMetrics() *metrics {
	return &metrics{transfers: map[[3]string]float64{}, bytes: map[string]float64{}}
}

// observe counts a file's final event.
func (m *metrics) observe(e Event) {
	if !e.Terminal() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.transfers[[3]string{e.Direction, e.Outcome, e.Transport}]++
	if moved := e.Bytes - e.Offset; moved > 0 {
		m.bytes[e.Direction] += float64(moved)
	}
}

func (m *metrics) retry() {
	m.mu.Lock()
	m.retries++
	m.mu.Unlock()
}

func (m *metrics) reconnect() {
	m.mu.Lock()
	m.reconnects++
	m.mu.Unlock()
}

// gauges are read at scrape time.
type gauges struct {
	connected bool
	sessions  int
	queued    int
	active    int
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}

func (m *metrics) write(w io.Writer, g gauges) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := &strings.Builder{}
	fmt.Fprintln(b, "# HELP jinglectl_transfers_total Files finished, by direction, outcome and transport.")
	fmt.Fprintln(b, "# TYPE jinglectl_transfers_total counter")
	keys := make([][3]string, 0, len(m.transfers))
	for k := range m.transfers {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [3]string) int { return strings.Compare(a[0]+a[1]+a[2], b[0]+b[1]+b[2]) })
	for _, k := range keys {
		fmt.Fprintf(b, "jinglectl_transfers_total{direction=\"%s\",outcome=\"%s\",transport=\"%s\"} %g\n",
			escapeLabel(k[0]), escapeLabel(k[1]), escapeLabel(k[2]), m.transfers[k])
	}
	fmt.Fprintln(b, "# HELP jinglectl_bytes_total Bytes of file data carried, by direction.")
	fmt.Fprintln(b, "# TYPE jinglectl_bytes_total counter")
	for _, d := range []string{Receive, Send} {
		fmt.Fprintf(b, "jinglectl_bytes_total{direction=\"%s\"} %g\n", d, m.bytes[d])
	}
	fmt.Fprintln(b, "# HELP jinglectl_retries_total Send attempts that failed and were queued again.")
	fmt.Fprintln(b, "# TYPE jinglectl_retries_total counter")
	fmt.Fprintf(b, "jinglectl_retries_total %g\n", m.retries)
	fmt.Fprintln(b, "# HELP jinglectl_reconnects_total Times the agent logged in again after losing its connection.")
	fmt.Fprintln(b, "# TYPE jinglectl_reconnects_total counter")
	fmt.Fprintf(b, "jinglectl_reconnects_total %g\n", m.reconnects)
	fmt.Fprintln(b, "# HELP jinglectl_connected Whether the agent is logged in.")
	fmt.Fprintln(b, "# TYPE jinglectl_connected gauge")
	connected := 0
	if g.connected {
		connected = 1
	}
	fmt.Fprintf(b, "jinglectl_connected %d\n", connected)
	fmt.Fprintln(b, "# HELP jinglectl_active_sessions Live Jingle sessions.")
	fmt.Fprintln(b, "# TYPE jinglectl_active_sessions gauge")
	fmt.Fprintf(b, "jinglectl_active_sessions %d\n", g.sessions)
	fmt.Fprintln(b, "# HELP jinglectl_active_transfers Files being sent or received.")
	fmt.Fprintln(b, "# TYPE jinglectl_active_transfers gauge")
	fmt.Fprintf(b, "jinglectl_active_transfers %d\n", g.active)
	fmt.Fprintln(b, "# HELP jinglectl_queued_transfers Files waiting to be sent.")
	fmt.Fprintln(b, "# TYPE jinglectl_queued_transfers gauge")
	fmt.Fprintf(b, "jinglectl_queued_transfers %d\n", g.queued)
	io.WriteString(w, b.String())
}

// handler serves /metrics.
func (m *metrics) handler(g func() gauges) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.write(w, g())
	})
	return mux
}
