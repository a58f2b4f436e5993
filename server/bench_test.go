package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/carillon-chat/carillon/apptest"
)

// chimeSample is Amazon Chime's own sample webhook message.
const chimeSample = `{"Content":"Message Body emoji test: :) :+1: link test: http://sample.com email test: marymajor@example.com All Members: @All All Present Members: @Present"}`

// BenchmarkWebhookPost measures durable webhook posts end to end over
// loopback HTTP (client and server share the machine), 32 at a time.
func BenchmarkWebhookPost(b *testing.B) {
	in := apptest.Start(b, apptest.Options{WebhookRate: 1e9, WebhookBurst: 1 << 30})
	var urls []string
	for r := 0; r < 4; r++ {
		room := in.CreateRoom(b, in.AdminToken, fmt.Sprintf("Bench %d", r))
		for i := 0; i < 10; i++ {
			urls = append(urls, in.CreateWebhook(b, in.AdminToken, room, fmt.Sprintf("h%d", i)).URL)
		}
	}
	var next atomic.Int64
	runParallelRequests(b, func() *http.Request {
		url := urls[next.Add(1)%int64(len(urls))]
		req, _ := http.NewRequest("POST", url, strings.NewReader(chimeSample))
		req.Header.Set("Content-Type", "application/json")
		return req
	})
}

// runParallelRequests sends the requests newRequest makes, 32 at a time,
// for the benchmark's iterations; any answer but 200 fails it.
func runParallelRequests(b *testing.B, newRequest func() *http.Request) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var failed atomic.Int64
	b.SetParallelism(16) // 2 cores × 16 = 32 concurrent clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Do(newRequest())
			if err != nil {
				failed.Add(1)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		}
	})
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
}

// BenchmarkAuthenticatedRead measures a small authenticated API call (a
// room's details, by API token or by the web app's session cookie) end to
// end over loopback HTTP, 32 at a time: the fixed cost of every API request.
func BenchmarkAuthenticatedRead(b *testing.B) {
	in := apptest.Start(b, apptest.Options{})
	const password = "bench password 1234"
	user := in.CreateUser(b, password)
	room := in.CreateRoom(b, user.Token, "Bench")
	login := apptest.Must(b, in.Do(b, "POST", "/api/v1/sessions", "", map[string]string{"Email": user.Email, "Password": password}), 200)
	cookie := (&http.Response{Header: login.Header}).Cookies()
	if len(cookie) != 1 {
		b.Fatalf("login set cookies %v, want the session's", cookie)
	}
	b.Run("token", func(b *testing.B) {
		runParallelRequests(b, func() *http.Request {
			req, _ := http.NewRequest("GET", in.URL+"/api/v1/rooms/"+room, nil)
			req.Header.Set("Authorization", "Bearer "+user.Token)
			return req
		})
	})
	b.Run("session", func(b *testing.B) {
		runParallelRequests(b, func() *http.Request {
			req, _ := http.NewRequest("GET", in.URL+"/api/v1/rooms/"+room, nil)
			req.AddCookie(cookie[0])
			return req
		})
	})
}
