package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ErrNotFound is a missing row.
var ErrNotFound = errors.New("not found")

// ErrDuplicate is a username or email already taken.
var ErrDuplicate = errors.New("already taken")

// User is a person signed up to this app.
type User struct {
	ID           string
	Username     string
	Email        string
	PasswordHash string
	Created      time.Time
}

// Connection is a person's link to Picard; tokens are decrypted.
type Connection struct {
	UserID         string
	PicardUserID   string
	Method         string // "direct" or "oauth"
	AccessToken    string
	RefreshToken   string
	Expiry         time.Time
	NeedsReconnect bool
}

// Store reads and writes the app's own tables. Secrets are sealed before
// they reach the database.
type Store struct {
	db   *DB
	seal *Sealer
}

// CreateUser adds a person; ErrDuplicate when the username or email is taken.
func (s *Store) CreateUser(ctx context.Context, username, email, hash string) (*User, error) {
	u := &User{ID: uuid.NewString(), Username: username, Email: strings.ToLower(email), PasswordHash: hash, Created: time.Now().UTC()}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE username = $1 OR email = $2`, strings.ToLower(username), u.Email).Scan(&n); err != nil {
		return nil, fmt.Errorf("check user: %w", err)
	}
	if n > 0 {
		return nil, ErrDuplicate
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO users (id, username, email, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		u.ID, strings.ToLower(username), u.Email, hash, u.Created.Unix())
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "unique") {
			return nil, ErrDuplicate
		}
		return nil, fmt.Errorf("create user: %w", err)
	}
	u.Username = strings.ToLower(username)
	return u, nil
}

func (s *Store) userWhere(ctx context.Context, where string, arg any) (*User, error) {
	u := &User{}
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, username, email, password_hash, created_at FROM users WHERE `+where, arg).
		Scan(&u.ID, &u.Username, &u.Email, &u.PasswordHash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	u.Created = time.Unix(created, 0).UTC()
	return u, nil
}

// UserByID loads a person.
func (s *Store) UserByID(ctx context.Context, id string) (*User, error) {
	return s.userWhere(ctx, "id = $1", id)
}

// UserByUsername loads a person by username (case-insensitive).
func (s *Store) UserByUsername(ctx context.Context, username string) (*User, error) {
	return s.userWhere(ctx, "username = $1", strings.ToLower(username))
}

// SetPassword replaces a person's password hash.
func (s *Store) SetPassword(ctx context.Context, id, hash string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, hash, id)
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return nil
}

// DeleteUser removes a person and their connection.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if err := s.DeleteConnection(ctx, id); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	return nil
}

// SaveConnection stores (or replaces) a person's Picard tokens, sealed.
func (s *Store) SaveConnection(ctx context.Context, c *Connection) error {
	at, err := s.seal.Seal(c.AccessToken)
	if err != nil {
		return err
	}
	rt, err := s.seal.Seal(c.RefreshToken)
	if err != nil {
		return err
	}
	reconnect := 0
	if c.NeedsReconnect {
		reconnect = 1
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO connections (user_id, picard_user_id, method, access_token, refresh_token, expires_at, needs_reconnect, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (user_id) DO UPDATE SET picard_user_id = excluded.picard_user_id, method = excluded.method,
			access_token = excluded.access_token, refresh_token = excluded.refresh_token, expires_at = excluded.expires_at,
			needs_reconnect = excluded.needs_reconnect, updated_at = excluded.updated_at`,
		c.UserID, c.PicardUserID, c.Method, at, rt, c.Expiry.Unix(), reconnect, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("save connection: %w", err)
	}
	return nil
}

// Connection loads a person's Picard connection; ErrNotFound if none.
func (s *Store) Connection(ctx context.Context, userID string) (*Connection, error) {
	c := &Connection{UserID: userID}
	var at, rt string
	var exp int64
	var reconnect int
	err := s.db.QueryRowContext(ctx, `SELECT picard_user_id, method, access_token, refresh_token, expires_at, needs_reconnect FROM connections WHERE user_id = $1`, userID).
		Scan(&c.PicardUserID, &c.Method, &at, &rt, &exp, &reconnect)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load connection: %w", err)
	}
	c.Expiry = time.Unix(exp, 0).UTC()
	c.NeedsReconnect = reconnect != 0
	c.AccessToken, err = s.seal.Open(at)
	if err == nil {
		c.RefreshToken, err = s.seal.Open(rt)
	}
	if err != nil {
		// CLIENTAPP_SECRET_KEY changed or was lost: the tokens are gone,
		// the person connects again (which overwrites them).
		slog.Warn("stored Picard tokens cannot be decrypted (was CLIENTAPP_SECRET_KEY changed?); asking to reconnect", "user_id", userID)
		c.AccessToken, c.RefreshToken, c.NeedsReconnect = "", "", true
	}
	return c, nil
}

// MarkReconnect flags a connection whose refresh failed.
func (s *Store) MarkReconnect(ctx context.Context, userID string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE connections SET needs_reconnect = 1 WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("mark reconnect: %w", err)
	}
	return nil
}

// DeleteConnection forgets a person's Picard tokens.
func (s *Store) DeleteConnection(ctx context.Context, userID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM connections WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("delete connection: %w", err)
	}
	return nil
}

// Setting reads a setting; sealed ones are decrypted. "" when absent.
func (s *Store) Setting(ctx context.Context, name string, sealed bool) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("load setting %s: %w", name, err)
	}
	if sealed {
		return s.seal.Open(v)
	}
	return v, nil
}

// SetSetting writes a setting, sealing it if asked.
func (s *Store) SetSetting(ctx context.Context, name, value string, sealed bool) error {
	if sealed {
		var err error
		if value, err = s.seal.Seal(value); err != nil {
			return err
		}
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	if err != nil {
		return fmt.Errorf("save setting %s: %w", name, err)
	}
	return nil
}
