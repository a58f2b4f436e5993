package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// api is a small client of the management API (SPEC §3), used to set up
// the scenarios: rooms, webhooks, users, memberships.
type api struct {
	base  string
	token string // the instance admin's API token
	hc    *http.Client
}

func newAPI(base, token string, conns int) *api {
	tr := newLoadTransport(max(conns, 4))
	return &api{base: strings.TrimRight(base, "/"), token: token, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// apiError is a refused API call.
type apiError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %.300s", e.Method, e.Path, e.Status, e.Body)
}

// call sends a JSON request as token (the admin's when "") and decodes the
// answer into out when its status is want. 429 and 503 are retried after
// their Retry-After (at most 8 times).
func (a *api) call(ctx context.Context, method, path, token string, in, out any, want int) error {
	if token == "" {
		token = a.token
	}
	var data []byte
	if in != nil {
		var err error
		if data, err = json.Marshal(in); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		var body io.Reader
		if data != nil {
			body = bytes.NewReader(data)
		}
		req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if data != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := a.hc.Do(req)
		if err != nil {
			if attempt < 3 && ctx.Err() == nil {
				time.Sleep(time.Second)
				continue
			}
			return fmt.Errorf("%s %s: %s", method, path, classifyErr(err))
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: reading answer: %s", method, path, classifyErr(err))
		}
		if (resp.StatusCode == 429 || resp.StatusCode == 503) && attempt < 8 {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(min(max(wait, 1), 10)) * time.Second):
			}
			continue
		}
		if resp.StatusCode != want {
			return &apiError{Method: method, Path: path, Status: resp.StatusCode, Body: string(b)}
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				return fmt.Errorf("%s %s: answer is not the expected JSON: %v", method, path, err)
			}
		}
		return nil
	}
}

func (a *api) createRoom(ctx context.Context, name string) (string, error) {
	var out struct{ Room struct{ RoomId string } }
	if err := a.call(ctx, "POST", "/api/v1/rooms", "", map[string]string{"Name": name}, &out, 201); err != nil {
		return "", err
	}
	return out.Room.RoomId, nil
}

func (a *api) createWebhook(ctx context.Context, roomID, name string) (benchHook, error) {
	var out struct {
		Webhook struct{ WebhookId, Url string }
	}
	if err := a.call(ctx, "POST", "/api/v1/rooms/"+roomID+"/webhooks", "", map[string]string{"Name": name}, &out, 201); err != nil {
		return benchHook{}, err
	}
	i := strings.Index(out.Webhook.Url, "/incomingwebhooks/")
	if i < 0 {
		return benchHook{}, fmt.Errorf("webhook %s: the API gave no usable Url", out.Webhook.WebhookId)
	}
	return benchHook{WebhookID: out.Webhook.WebhookId, Path: out.Webhook.Url[i:]}, nil
}

func (a *api) createUser(ctx context.Context, email, fullName string) (benchUser, error) {
	var out struct {
		User  struct{ UserId string }
		Token string
	}
	if err := a.call(ctx, "POST", "/api/v1/users", "", map[string]string{"Email": email, "FullName": fullName}, &out, 201); err != nil {
		return benchUser{}, err
	}
	return benchUser{UserID: out.User.UserId, Email: email, Token: out.Token}, nil
}

func (a *api) addMember(ctx context.Context, roomID, userID string) error {
	return a.call(ctx, "POST", "/api/v1/rooms/"+roomID+"/memberships", "",
		map[string]string{"MemberId": userID, "Role": "Member"}, nil, 201)
}

// setupCache is what a scenario created on a server, saved (mode 0600: it
// holds webhook tokens and API tokens) so that a later run against the
// same data directory skips the setup.
type setupCache struct {
	URL      string      `json:"url"`
	Scenario string      `json:"scenario"`
	Rooms    []benchRoom `json:"rooms"`
	Users    []benchUser `json:"users,omitempty"`
	// Filled counts the messages the read scenario stored in Rooms[0].
	Filled int64 `json:"filled,omitempty"`
}

type benchRoom struct {
	RoomID   string      `json:"roomId"`
	Webhooks []benchHook `json:"webhooks"`
	Members  int         `json:"members,omitempty"` // users added by the bench
}

type benchHook struct {
	WebhookID string `json:"webhookId"`
	Path      string `json:"path"` // /incomingwebhooks/{id}?token=…
}

type benchUser struct {
	UserID string `json:"userId"`
	Email  string `json:"email"`
	Token  string `json:"token"`
	RoomID string `json:"roomId,omitempty"` // the bench room it was added to
}

// loadCache reads a cache file; a missing file is an empty cache.
func loadCache(path, url, scenario string) (*setupCache, error) {
	c := &setupCache{URL: url, Scenario: scenario}
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("setup cache %s: %v", path, err)
	}
	if c.URL != url || c.Scenario != scenario {
		return nil, fmt.Errorf("setup cache %s was made by %q for %s; use another file for %q at %s", path, c.Scenario, c.URL, scenario, url)
	}
	return c, nil
}

func (c *setupCache) save(path string) error {
	if path == "" {
		return nil
	}
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// checkCache makes sure the server still knows the cached rooms (a cache
// kept across a wiped data directory would only produce 403s).
func (c *setupCache) check(ctx context.Context, a *api) error {
	if len(c.Rooms) == 0 {
		return nil
	}
	for _, r := range []benchRoom{c.Rooms[0], c.Rooms[len(c.Rooms)-1]} {
		if err := a.call(ctx, "GET", "/api/v1/rooms/"+r.RoomID, "", nil, nil, 200); err != nil {
			return fmt.Errorf("the setup cache does not match this server (delete the file to set up again): %w", err)
		}
	}
	return nil
}

// runTag is a random tag that keeps bench names (e-mails, aliases)
// unique across runs against one database.
func runTag() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// parallel runs f(0 … n-1) on conc goroutines, stopping at the first
// error, printing progress every 2 s.
func parallel(ctx context.Context, n, conc int, what string, logf func(string, ...any), f func(ctx context.Context, i int) error) error {
	if n <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, done atomic.Int64
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d := done.Load()
				logf("%s: %d/%d (%.0f/s)", what, d, n, float64(d)/time.Since(start).Seconds())
			}
		}
	}()
	for w := 0; w < max(1, min(conc, n)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr == nil {
		logf("%s: %d done in %.1fs", what, n, time.Since(start).Seconds())
	}
	return firstErr
}

// ensureRooms makes c hold at least n rooms with hooksPerRoom webhooks
// each, creating what is missing, and saves the cache as it goes.
func ensureRooms(ctx context.Context, a *api, c *setupCache, cachePath, prefix string, n, hooksPerRoom, conc int, logf func(string, ...any)) error {
	var mu sync.Mutex
	// Complete the webhooks of cached rooms first (an interrupted setup).
	for i := range c.Rooms {
		if len(c.Rooms[i].Webhooks) >= hooksPerRoom {
			continue
		}
		for j := len(c.Rooms[i].Webhooks); j < hooksPerRoom; j++ {
			h, err := a.createWebhook(ctx, c.Rooms[i].RoomID, fmt.Sprintf("bench-%d", j+1))
			if err != nil {
				return err
			}
			c.Rooms[i].Webhooks = append(c.Rooms[i].Webhooks, h)
		}
	}
	missing := n - len(c.Rooms)
	if missing <= 0 {
		return nil
	}
	tag := runTag()
	lastSave := time.Now()
	err := parallel(ctx, missing, conc, fmt.Sprintf("creating rooms with %d webhooks each", hooksPerRoom), logf, func(ctx context.Context, i int) error {
		id, err := a.createRoom(ctx, fmt.Sprintf("%s %s-%d", prefix, tag, i+1))
		if err != nil {
			return err
		}
		r := benchRoom{RoomID: id}
		for j := 0; j < hooksPerRoom; j++ {
			h, err := a.createWebhook(ctx, id, fmt.Sprintf("bench-%d", j+1))
			if err != nil {
				return err
			}
			r.Webhooks = append(r.Webhooks, h)
		}
		mu.Lock()
		defer mu.Unlock()
		c.Rooms = append(c.Rooms, r)
		if time.Since(lastSave) > 5*time.Second {
			lastSave = time.Now()
			return c.save(cachePath)
		}
		return nil
	})
	if serr := c.save(cachePath); err == nil {
		err = serr
	}
	return err
}

// ensureUsers makes c hold at least n users, each a member of the room
// roomOf(i) returns for the i-th user ("" for none), and saves the cache.
func ensureUsers(ctx context.Context, a *api, c *setupCache, cachePath string, n, conc int, roomOf func(i int) string, logf func(string, ...any)) error {
	missing := n - len(c.Users)
	if missing <= 0 {
		return nil
	}
	tag := runTag()
	base := len(c.Users)
	users := make([]benchUser, missing)
	err := parallel(ctx, missing, conc, "creating users and memberships", logf, func(ctx context.Context, i int) error {
		k := base + i
		u, err := a.createUser(ctx, fmt.Sprintf("bench-%s-%d@example.com", tag, k+1), fmt.Sprintf("Bench User %d", k+1))
		if err != nil {
			return err
		}
		if room := roomOf(k); room != "" {
			if err := a.addMember(ctx, room, u.UserID); err != nil {
				return err
			}
			u.RoomID = room
		}
		users[i] = u
		return nil
	})
	// Keep the users that were fully set up, even after an error (an
	// entry is filled only once its membership exists).
	for _, u := range users {
		if u.UserID != "" {
			c.Users = append(c.Users, u)
		}
	}
	if serr := c.save(cachePath); err == nil {
		err = serr
	}
	return err
}
