package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Event streams (SPEC §4): GET /api/v1/events, one HTTP/1.1 connection
// each (a response that never ends keeps its connection to itself).

// newStreamTransport is the transport of event streams: no limit on
// connections, small buffers (10,000 streams mostly idle), no timeout
// once the answer has begun.
func newStreamTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   16,
		DisableCompression:    true,
		ResponseHeaderTimeout: 30 * time.Second,
		ReadBufferSize:        8 << 10,
		WriteBufferSize:       1 << 10,
	}
}

// openStream opens one event stream as token and returns the answer
// once its headers arrived (200 and text/event-stream).
func openStream(ctx context.Context, c *http.Client, base, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s", classifyErr(err))
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return resp, nil
}

// openStreams opens n streams (stream i as tokens[i%len(tokens)]) with
// conc at a time, hands each to serve on its own goroutine, and returns
// how many opened and the errors of those that did not. The streams live
// until ctx ends; wait waits for every serve to return.
func openStreams(ctx context.Context, base string, tokens []string, n, conc int, logf func(string, ...any),
	serve func(i int, body io.Reader)) (opened int, failures map[string]int, wait func()) {
	c := &http.Client{Transport: newStreamTransport()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures = map[string]int{}
	var ok atomic.Int64
	parallel(ctx, n, conc, fmt.Sprintf("opening %d event streams", n), logf, func(_ context.Context, i int) error {
		// parallel's own context ends when the opening is done; the
		// streams live in ctx.
		resp, err := openStream(ctx, c, base, tokens[i%len(tokens)])
		if err != nil {
			mu.Lock()
			failures[err.Error()]++
			mu.Unlock()
			return nil
		}
		ok.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			serve(i, resp.Body)
		}()
		return nil
	})
	return int(ok.Load()), failures, wg.Wait
}

// sseReader reads Server-Sent Events line by line and calls onMessage
// with the MessageId of every `message` event, as soon as its data line
// is read.
type sseReader struct {
	br *bufio.Reader
}

var (
	prefixEvent     = []byte("event:")
	prefixData      = []byte("data:")
	keyMessageID    = []byte(`"MessageId":"`)
	eventMessageTxt = []byte("message")
)

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{br: bufio.NewReaderSize(r, 16<<10)}
}

// run reads until the stream ends.
func (s *sseReader) run(onMessage func(id []byte, at time.Time)) error {
	var long []byte
	isMessage := false
	for {
		line, err := s.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: assemble it.
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = s.br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			isMessage = false // end of an event
		case line[0] == ':':
			// comment (keep-alive)
		case bytes.HasPrefix(line, prefixEvent):
			v := bytes.TrimPrefix(line[len(prefixEvent):], []byte(" "))
			isMessage = bytes.Equal(v, eventMessageTxt)
		case isMessage && bytes.HasPrefix(line, prefixData):
			at := time.Now()
			// In the JSON of a message the first "MessageId":" is its key:
			// a quote inside a string value is escaped.
			if i := bytes.Index(line, keyMessageID); i >= 0 && len(line) >= i+len(keyMessageID)+36 {
				onMessage(line[i+len(keyMessageID):i+len(keyMessageID)+36], at)
			}
		}
	}
}
