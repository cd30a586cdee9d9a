package agent

import (
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/jinglekit/jinglekit/omemo"
)

// metrics are the agent's Prometheus metrics, on a registry of the
// agent's own (prometheus/client_golang), with the process and Go runtime
// collectors.
type metrics struct {
	reg        *prometheus.Registry
	transfers  *prometheus.CounterVec // direction, outcome, transport
	bytes      *prometheus.CounterVec // direction
	retries    prometheus.Counter
	reconnects prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jinglectl_transfers_total",
			Help: "Files finished, by direction, outcome and transport."}, []string{"direction", "outcome", "transport"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "jinglectl_bytes_total",
			Help: "Bytes of file data carried, by direction."}, []string{"direction"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "jinglectl_retries_total",
			Help: "Send attempts that failed and were queued again."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "jinglectl_reconnects_total",
			Help: "Times the agent logged in again after losing its connection."}),
	}
	for _, d := range []string{Receive, Send} {
		m.bytes.WithLabelValues(d)
	}
	m.reg.MustRegister(m.transfers, m.bytes, m.retries, m.reconnects,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector())
	return m
}

// observe counts a file's final event.
func (m *metrics) observe(e Event) {
	if !e.Terminal() {
		return
	}
	m.transfers.WithLabelValues(e.Direction, e.Outcome, e.Transport).Inc()
	if moved := e.Bytes - e.Offset; moved > 0 {
		m.bytes.WithLabelValues(e.Direction).Add(float64(moved))
	}
}

func (m *metrics) retry() { m.retries.Inc() }

func (m *metrics) reconnect() { m.reconnects.Inc() }

// gauges are read at scrape time.
type gauges struct {
	connected bool
	server    string // "host:port" of the connection, "" when disconnected
	sessions  int
	queued    int
	active    int
	omemo     omemo.Stats // of every connection since the start
}

// gaugeCollector reads the gauges once per scrape.
type gaugeCollector struct {
	read                                func() gauges
	connected, sessions, active, queued *prometheus.Desc
	server                              *prometheus.Desc
	omemo                               *prometheus.Desc
}

func newGaugeCollector(read func() gauges) *gaugeCollector {
	return &gaugeCollector{read: read,
		connected: prometheus.NewDesc("jinglectl_connected", "Whether the agent is logged in.", nil, nil),
		sessions:  prometheus.NewDesc("jinglectl_active_sessions", "Live Jingle sessions.", nil, nil),
		active:    prometheus.NewDesc("jinglectl_active_transfers", "Files being sent or received.", nil, nil),
		queued:    prometheus.NewDesc("jinglectl_queued_transfers", "Files waiting to be sent.", nil, nil),
		server: prometheus.NewDesc("jinglectl_server_info", "The server endpoint the agent is logged in through (1; absent while disconnected).",
			[]string{"server"}, nil),
		omemo: prometheus.NewDesc("jinglectl_omemo_key_exchange_total",
			"OMEMO key-exchange steps since the start, by event: bundle_publish, bundle_fetch, session_built, prekey_message_sent, "+
				"prekey_message_received, prekey_used, ack_sent, ack_received (see omemo.Stats). "+
				"A peer with a kept session costs no bundle_fetch, session_built nor prekey_message_sent.",
			[]string{"event"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connected, c.sessions, c.active, c.queued, c.server, c.omemo} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.read()
	connected := 0.0
	if g.connected {
		connected = 1
	}
	for _, x := range []struct {
		d *prometheus.Desc
		v float64
	}{{c.connected, connected}, {c.sessions, float64(g.sessions)}, {c.active, float64(g.active)}, {c.queued, float64(g.queued)}} {
		ch <- prometheus.MustNewConstMetric(x.d, prometheus.GaugeValue, x.v)
	}
	if g.server != "" {
		ch <- prometheus.MustNewConstMetric(c.server, prometheus.GaugeValue, 1, g.server)
	}
	o := g.omemo
	for _, x := range []struct {
		event string
		n     uint64
	}{{"bundle_publish", o.BundlePublishes}, {"bundle_fetch", o.BundleFetches}, {"session_built", o.SessionsBuilt},
		{"prekey_message_sent", o.PreKeyMessagesSent}, {"prekey_message_received", o.PreKeyMessagesReceived},
		{"prekey_used", o.PreKeysUsed}, {"ack_sent", o.AcksSent}, {"ack_received", o.AcksReceived}} {
		ch <- prometheus.MustNewConstMetric(c.omemo, prometheus.CounterValue, float64(x.n), x.event)
	}
}

// gatherer is the agent's registry with the gauges of g.
func (m *metrics) gatherer(g func() gauges) prometheus.Gatherer {
	gr := prometheus.NewRegistry()
	gr.MustRegister(newGaugeCollector(g))
	return prometheus.Gatherers{m.reg, gr}
}

// write writes the metrics in the text exposition format.
func (m *metrics) write(w io.Writer, g gauges) error {
	mfs, err := m.gatherer(func() gauges { return g }).Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// handler serves /metrics.
func (m *metrics) handler(g func() gauges) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.gatherer(g), promhttp.HandlerOpts{}))
	return mux
}
