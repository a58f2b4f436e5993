package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// apiClient holds what every admin subcommand needs to reach a server.
type apiClient struct {
	Server string `name:"server" default:"http://localhost:8080" env:"CARILLON_SERVER" help:"Base URL of the Carillon server."`
	Token  string `name:"token" required:"" env:"CARILLON_TOKEN" help:"API token (the instance admin's for user management)."`
}

// call sends a request and prints the JSON answer; an error answer becomes
// an error carrying the server's Message.
func (c *apiClient) call(method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, strings.TrimRight(c.Server, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Code, Message string }
		if json.Unmarshal(data, &e) == nil && e.Message != "" {
			return fmt.Errorf("%s (%s): %s", resp.Status, e.Code, e.Message)
		}
		return errors.New(resp.Status)
	}
	if len(data) > 0 {
		var out bytes.Buffer
		if json.Indent(&out, data, "", "  ") == nil {
			data = append(out.Bytes(), '\n')
		}
		os.Stdout.Write(data)
	}
	return nil
}

func fail(err error) error {
	if err != nil {
		fmt.Fprintln(os.Stderr, "carillon:", err)
	}
	return err
}

type usersCmd struct {
	Create struct {
		apiClient
		Email    string `arg:"" help:"E-mail address."`
		Name     string `help:"Full name."`
		Alias    string `help:"Alias for mentions (default: the e-mail's local part)."`
		Password string `help:"Password for the web app." env:"CARILLON_NEW_USER_PASSWORD"`
	} `cmd:"" help:"Create a user; prints the user and its API token."`
	Deactivate struct {
		apiClient
		UserID string `arg:"" help:"User id."`
	} `cmd:"" help:"Deactivate a user, ending their sessions and API tokens."`
}

type roomsCmd struct {
	List struct {
		apiClient
	} `cmd:"" help:"List your rooms."`
	Create struct {
		apiClient
		Name string `arg:"" help:"Room name."`
	} `cmd:"" help:"Create a room (you become its Administrator)."`
	Delete struct {
		apiClient
		RoomID string `arg:"" help:"Room id."`
	} `cmd:"" help:"Delete a room."`
	AddMember struct {
		apiClient
		RoomID string `arg:"" help:"Room id."`
		Email  string `arg:"" help:"E-mail of the user to add."`
		Admin  bool   `help:"Make the user an Administrator of the room."`
	} `cmd:"" help:"Add a user to a room."`
}

type webhooksCmd struct {
	List struct {
		apiClient
		RoomID string `arg:"" help:"Room id."`
	} `cmd:"" help:"List a room's webhooks with their URLs."`
	Create struct {
		apiClient
		RoomID string `arg:"" help:"Room id."`
		Name   string `arg:"" help:"Webhook name (shown as \"<name> (Webhook)\")."`
	} `cmd:"" help:"Create a webhook; prints its URL."`
	Rename struct {
		apiClient
		RoomID    string `arg:"" help:"Room id."`
		WebhookID string `arg:"" help:"Webhook id."`
		Name      string `arg:"" help:"New name."`
	} `cmd:"" help:"Rename a webhook."`
	Regenerate struct {
		apiClient
		RoomID    string `arg:"" help:"Room id."`
		WebhookID string `arg:"" help:"Webhook id."`
	} `cmd:"" help:"Give a webhook a new URL; the old one stops working."`
	Delete struct {
		apiClient
		RoomID    string `arg:"" help:"Room id."`
		WebhookID string `arg:"" help:"Webhook id."`
	} `cmd:"" help:"Delete a webhook; its URL stops working."`
}

func roomPath(roomID string, rest ...string) string {
	p := "/api/v1/rooms/" + url.PathEscape(roomID)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

// run dispatches the selected admin subcommand by its kong command path.
func runAdmin(command string) error {
	u, r, w := &cli.Users, &cli.Rooms, &cli.Webhooks
	switch command {
	case "users create <email>":
		c := &u.Create
		body := map[string]string{"Email": c.Email, "FullName": c.Name, "Alias": c.Alias}
		if c.Password != "" {
			body["Password"] = c.Password
		}
		return fail(c.call("POST", "/api/v1/users", body))
	case "users deactivate <user-id>":
		c := &u.Deactivate
		return fail(c.call("PATCH", "/api/v1/users/"+url.PathEscape(c.UserID), map[string]bool{"Active": false}))
	case "rooms list":
		return fail(r.List.call("GET", "/api/v1/rooms", nil))
	case "rooms create <name>":
		return fail(r.Create.call("POST", "/api/v1/rooms", map[string]string{"Name": r.Create.Name}))
	case "rooms delete <room-id>":
		return fail(r.Delete.call("DELETE", roomPath(r.Delete.RoomID), nil))
	case "rooms add-member <room-id> <email>":
		c := &r.AddMember
		role := "Member"
		if c.Admin {
			role = "Administrator"
		}
		return fail(c.call("POST", roomPath(c.RoomID, "memberships"), map[string]string{"Email": c.Email, "Role": role}))
	case "webhooks list <room-id>":
		return fail(w.List.call("GET", roomPath(w.List.RoomID, "webhooks"), nil))
	case "webhooks create <room-id> <name>":
		return fail(w.Create.call("POST", roomPath(w.Create.RoomID, "webhooks"), map[string]string{"Name": w.Create.Name}))
	case "webhooks rename <room-id> <webhook-id> <name>":
		c := &w.Rename
		return fail(c.call("PATCH", roomPath(c.RoomID, "webhooks", c.WebhookID), map[string]string{"Name": c.Name}))
	case "webhooks regenerate <room-id> <webhook-id>":
		c := &w.Regenerate
		return fail(c.call("POST", roomPath(c.RoomID, "webhooks", c.WebhookID, "regenerate"), nil))
	case "webhooks delete <room-id> <webhook-id>":
		c := &w.Delete
		return fail(c.call("DELETE", roomPath(c.RoomID, "webhooks", c.WebhookID), nil))
	}
	return fmt.Errorf("unknown command %q", command)
}
