package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestThrottledSeriesExistBeforeAnyRefusal(t *testing.T) {
	body := scrape(t, New())
	for _, want := range []string{
		`carillon_throttled_total{sender="Webhook"} 0`,
		`carillon_throttled_total{sender="User"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func TestRecordedValuesAreServed(t *testing.T) {
	m := New()
	m.Request("POST /incomingwebhooks/{WebhookId}", 200, 3*time.Millisecond, true)
	m.Request("POST /incomingwebhooks/{WebhookId}", 429, time.Millisecond, true)
	m.Committed(7, 8)
	m.Throttled("Webhook")
	closed := m.StreamOpened()
	m.StreamOpened()
	closed()
	body := scrape(t, m)
	for _, want := range []string{
		`carillon_http_requests_total{code="200",route="POST /incomingwebhooks/{WebhookId}"} 1`,
		`carillon_http_requests_total{code="429",route="POST /incomingwebhooks/{WebhookId}"} 1`,
		`carillon_http_request_duration_seconds_count{route="POST /incomingwebhooks/{WebhookId}"} 2`,
		`carillon_messages_stored_total 7`,
		`carillon_commit_batch_messages_count 1`,
		`carillon_throttled_total{sender="Webhook"} 1`,
		`carillon_event_streams 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
}

// BenchmarkRequest is what metrics add to every answered request (a
// counter and a histogram observation), from all cores at once. Compare
// with the server's CPU time per message in docs/performance.md.
func BenchmarkRequest(b *testing.B) {
	m := New()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			m.Request("POST /incomingwebhooks/{WebhookId}", 200, time.Since(start), true)
		}
	})
}

// BenchmarkCommitted is what metrics add to every commit of the writer.
func BenchmarkCommitted(b *testing.B) {
	m := New()
	for b.Loop() {
		m.Committed(32, 32)
	}
}
