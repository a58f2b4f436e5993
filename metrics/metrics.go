// Package metrics holds Carillon's Prometheus metrics, on a registry of its
// own (not the global one), served at GET /metrics. Every method is safe on
// a nil *Metrics, so components work without metrics in tests.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/carillon-chat/carillon"
)

// Metrics is the set of Carillon's metrics.
type Metrics struct {
	registry *prometheus.Registry

	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	messagesStored prometheus.Counter
	batchSize      prometheus.Histogram
	throttled      *prometheus.CounterVec
	streams        prometheus.Gauge
}

// New registers the metrics on a new registry.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carillon_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "carillon_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route (event streams excluded).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		messagesStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "carillon_messages_stored_total", Help: "Messages committed to storage.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "carillon_commit_batch_messages", Help: "Messages per storage commit (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carillon_throttled_total", Help: "Requests refused by a rate limit, by sender type.",
		}, []string{"sender"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "carillon_event_streams", Help: "Live event streams open.",
		}),
	}
	// Both sender types are listed from the start at 0, so that a scrape
	// shows the series before anything was ever throttled and a rate over
	// it starts at the first refusal rather than at the second.
	for _, sender := range []string{carillon.MemberTypeWebhook, carillon.MemberTypeUser} {
		m.throttled.WithLabelValues(sender)
	}
	m.registry.MustRegister(m.requests, m.latency, m.messagesStored, m.batchSize, m.throttled, m.streams,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Request records one answered request.
func (m *Metrics) Request(route string, status int, took time.Duration, timed bool) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	if timed {
		m.latency.WithLabelValues(route).Observe(took.Seconds())
	}
}

// Committed records a committed batch of messages.
func (m *Metrics) Committed(stored, batch int) {
	if m == nil {
		return
	}
	m.messagesStored.Add(float64(stored))
	m.batchSize.Observe(float64(batch))
}

// Throttled records a request refused by a rate limit.
func (m *Metrics) Throttled(senderType string) {
	if m == nil {
		return
	}
	m.throttled.WithLabelValues(senderType).Inc()
}

// StreamOpened records an event stream opening; call the result when it
// closes.
func (m *Metrics) StreamOpened() func() {
	if m == nil {
		return func() {}
	}
	m.streams.Inc()
	return m.streams.Dec
}
