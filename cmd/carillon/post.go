package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/carillon-chat/carillon/secret"
)

// postCmd is a client for any Chime-format webhook URL: it retries 429 and
// 503 honouring Retry-After, with jitter, under one Idempotency-Key so a
// retry never posts twice.
type postCmd struct {
	URL      string        `arg:"" help:"Webhook URL (https://…/incomingwebhooks/ID?token=…)."`
	Content  string        `arg:"" optional:"" help:"Message text, or - to read it from standard input."`
	Attempts int           `default:"6" help:"How many times to try."`
	Timeout  time.Duration `default:"10s" help:"Timeout of each attempt."`
}

func (c *postCmd) Run() error {
	content := c.Content
	if content == "" || content == "-" {
		data, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		if err != nil {
			return err
		}
		// A line read from a pipe ends with a newline the message does not
		// mean to carry.
		content = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	}
	body, _ := json.Marshal(map[string]string{"Content": content})
	key := secret.RandomString(32)
	client := &http.Client{Timeout: c.Timeout}
	var lastErr error
	for attempt := 1; attempt <= max(c.Attempts, 1); attempt++ {
		wait, err := c.try(client, body, key)
		if err == nil {
			return nil
		}
		lastErr = err
		if wait < 0 {
			break
		}
		if attempt < c.Attempts {
			// Jitter spreads the retries of many clients.
			time.Sleep(wait + time.Duration(rand.Int64N(int64(wait/2)+1)))
		}
	}
	fmt.Fprintln(os.Stderr, "carillon post:", lastErr)
	return lastErr
}

// try posts once. It returns how long to wait before retrying, or a
// negative wait when retrying cannot help.
func (c *postCmd) try(client *http.Client, body []byte, key string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return -1, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return time.Second, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		fmt.Println(string(bytes.TrimSpace(data)))
		return 0, nil
	}
	var e struct{ Code, Message string }
	msg := resp.Status
	if json.Unmarshal(data, &e) == nil && e.Message != "" {
		msg = fmt.Sprintf("%s: %s", resp.Status, e.Message)
	}
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return -1, errors.New(msg)
	}
	wait := time.Second
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		wait = time.Duration(secs) * time.Second
	}
	return wait, errors.New(msg)
}
