package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/secret"
	"github.com/carillon-chat/carillon/server"
)

const metaKeyAdmin = "instance_admin_user_id"

// firstRun is what the first start created, for the banner.
type firstRun struct {
	Email, Password, Token string
	CredentialsFile        string
	RoomName, WebhookName  string
	WebhookURL             string
}

// bootstrap creates the instance admin, the room "General" and its webhook
// "Demo" on an empty database, and on every start makes
// CARILLON_ADMIN_TOKEN (when set) valid for the instance admin.
func bootstrap(ctx context.Context, store carillon.Store, key *secret.Key, cfg Config, publicURL string) (*firstRun, error) {
	n, err := store.CountUsers(ctx)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, keepAdminToken(ctx, store, cfg)
	}

	now := time.Now().UTC()
	email := cfg.AdminEmail
	if email == "" {
		email = "admin@localhost"
	}
	admin, err := server.NewUser(email, "Administrator", "", now)
	if err != nil {
		return nil, fmt.Errorf("CARILLON_ADMIN_EMAIL: %s", carillon.ErrorMessage(err))
	}
	admin.IsAdmin = true
	first := &firstRun{Email: admin.Email, Token: cfg.AdminToken, RoomName: "General", WebhookName: "Demo"}
	var pwHash string
	if first.Token == "" {
		first.Token = secret.NewAPIToken()
		first.Password = secret.RandomString(20)
		if pwHash, err = secret.HashPassword(first.Password); err != nil {
			return nil, err
		}
	}
	if err := store.CreateUser(ctx, admin, pwHash, secret.Hash(first.Token)); err != nil {
		if carillon.ErrorCode(err) == carillon.EConflict {
			// Another node of the cluster bootstrapped the same database.
			return nil, keepAdminToken(ctx, store, cfg)
		}
		return nil, err
	}
	if err := store.SetMeta(ctx, metaKeyAdmin, admin.UserID); err != nil {
		return nil, err
	}
	if first.Password != "" {
		first.CredentialsFile = filepath.Join(cfg.DataDir, "initial-admin.txt")
		os.Remove(first.CredentialsFile) // left over from an earlier database
		text := fmt.Sprintf("email: %s\npassword: %s\ntoken: %s\n", first.Email, first.Password, first.Token)
		if err := secret.WriteFileSync(first.CredentialsFile, []byte(text), 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", first.CredentialsFile, err)
		}
	}

	room := &carillon.Room{RoomID: uuid.NewString(), Name: first.RoomName, CreatedBy: admin.UserID, CreatedAt: now}
	if err := store.CreateRoom(ctx, room); err != nil {
		return nil, err
	}
	hook, err := server.NewWebhook(key, room.RoomID, first.WebhookName, now)
	if err != nil {
		return nil, err
	}
	if err := store.CreateWebhook(ctx, hook, admin.UserID); err != nil {
		return nil, err
	}
	token, err := key.Open(hook.TokenSeal)
	if err != nil {
		return nil, err
	}
	first.WebhookURL = server.WebhookURL(strings.TrimRight(publicURL, "/"), hook.WebhookID, token)
	return first, nil
}

// keepAdminToken makes CARILLON_ADMIN_TOKEN, when set, valid for the
// instance admin. The admin's id may still be on its way from another node
// bootstrapping the same database, so it is awaited briefly.
func keepAdminToken(ctx context.Context, store carillon.Store, cfg Config) error {
	if cfg.AdminToken == "" {
		return nil
	}
	for wait := 0; ; wait++ {
		adminID, err := store.Meta(ctx, metaKeyAdmin)
		if err != nil {
			return err
		}
		if adminID != "" {
			return store.AddAPIToken(ctx, adminID, secret.Hash(cfg.AdminToken))
		}
		if wait == 100 {
			return fmt.Errorf("the database has users but no instance admin")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
