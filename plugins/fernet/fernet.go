package fernet

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// Config says which collection fields are encrypted and with what.
type Config struct {
	Cipher     *Cipher
	Collection string   // e.g. "memories"
	Fields     []string // e.g. ["text"]
}

// MustRegister is Register that panics on error.
func MustRegister(app core.App, cfg Config) {
	if err := Register(app, cfg); err != nil {
		panic(err)
	}
}

// Register binds the hooks that encrypt cfg.Fields before every insert and
// update, and decrypt them for superusers reading through the dashboard.
func Register(app core.App, cfg Config) error {
	if cfg.Cipher == nil || cfg.Collection == "" || len(cfg.Fields) == 0 {
		return errors.New("fernet: Config needs Cipher, Collection and Fields")
	}
	p := &plugin{cfg: cfg}
	app.OnRecordCreateExecute(cfg.Collection).BindFunc(p.encryptOnWrite)
	app.OnRecordUpdateExecute(cfg.Collection).BindFunc(p.encryptOnWrite)
	app.OnRecordEnrich(cfg.Collection).BindFunc(p.decryptForSuperuser)
	return nil
}

type plugin struct{ cfg Config }

// encryptOnWrite runs after validation, right before the SQL write, so
// the plaintext limits apply to what the user typed and the database gets
// tokens. Every value that changed is encrypted, even one that happens to be
// a valid token already: a user who submits a token copied from a database
// backup must get back that token, never its plaintext. Only a value left
// exactly as it was loaded from the database is kept. After the write the
// record holds the token; readers decrypt it (Cipher.Decrypt).
func (p *plugin) encryptOnWrite(e *core.RecordEvent) error {
	orig := e.Record.Original()
	for _, f := range p.cfg.Fields {
		v := e.Record.GetString(f)
		if v == "" {
			continue
		}
		if !e.Record.IsNew() && v == orig.GetString(f) && p.cfg.Cipher.IsToken(v) {
			if p.cfg.Cipher.IsCurrent(v) {
				continue
			}
			// An unchanged value under an older key: write it back under the
			// current one. A `keys rotate` running next to the server may
			// have rotated this row after it was loaded; writing the loaded
			// old token back would undo that, and the row would become
			// unreadable once the old key is dropped.
			plain, err := p.cfg.Cipher.Decrypt(v)
			if err != nil {
				return err
			}
			v = plain
		}
		tok, err := p.cfg.Cipher.Encrypt(v)
		if err != nil {
			return err
		}
		e.Record.Set(f, tok)
	}
	return e.Next()
}

func (p *plugin) decryptForSuperuser(e *core.RecordEnrichEvent) error {
	if e.RequestInfo == nil || !e.RequestInfo.HasSuperuserAuth() {
		return e.Next()
	}
	for _, f := range p.cfg.Fields {
		if v, err := p.cfg.Cipher.Decrypt(e.Record.GetString(f)); err == nil {
			e.Record.Set(f, v)
		}
	}
	return e.Next()
}

// RotateStats is what a rotation did.
type RotateStats struct {
	Total, Rotated, AlreadyCurrent int
	// Changed counts rows rewritten by someone else between the read and
	// the rewrite (a running server); it re-encrypts under its own first
	// key, so run the rotation after restarting the server with NEW,OLD.
	Changed int
}

// Rotate re-encrypts every value of the configured fields that is not yet
// under the first key. Rows are rewritten in small transactions, so an
// interrupted rotation (ctx cancelled, process killed) loses nothing and a
// second run resumes where the first stopped. progress, if not nil, is
// called after each batch with done and total.
func Rotate(ctx context.Context, app core.App, cfg Config, progress func(done, total int)) (RotateStats, error) {
	var st RotateStats
	table := cfg.Collection
	var total int
	if err := app.DB().Select("count(*)").From(table).Row(&total); err != nil {
		return st, fmt.Errorf("fernet: count %s: %w", table, err)
	}
	st.Total = total
	const batch = 200
	lastID := ""
	done := 0
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		var rows []dbx.NullStringMap
		cols := append([]string{"id"}, cfg.Fields...)
		err := app.DB().Select(cols...).From(table).
			Where(dbx.NewExp("id > {:last}", dbx.Params{"last": lastID})).
			OrderBy("id").Limit(batch).All(&rows)
		if err != nil {
			return st, fmt.Errorf("fernet: read %s: %w", table, err)
		}
		if len(rows) == 0 {
			break
		}
		err = app.RunInTransaction(func(tx core.App) error {
			for _, row := range rows {
				set := dbx.Params{}
				for _, f := range cfg.Fields {
					v := row[f].String
					if v == "" || cfg.Cipher.IsCurrent(v) {
						continue
					}
					plain, err := cfg.Cipher.Decrypt(v)
					if err != nil {
						// plaintext written around the hooks: encrypt it now
						plain = v
					}
					tok, err := cfg.Cipher.Encrypt(plain)
					if err != nil {
						return err
					}
					set[f] = tok
				}
				if len(set) == 0 {
					st.AlreadyCurrent++
					continue
				}
				// Compare-and-set: only if the row still holds what was read.
				// A server running next to the rotation may have rewritten
				// it since (an update, under its first key); that write wins.
				where := dbx.HashExp{"id": row["id"].String}
				for f := range set {
					where[f] = row[f].String
				}
				res, err := tx.DB().Update(table, set, where).Execute()
				if err != nil {
					return fmt.Errorf("fernet: rewrite %s: %w", row["id"].String, err)
				}
				if n, err := res.RowsAffected(); err == nil && n == 0 {
					st.Changed++
					continue
				}
				st.Rotated++
			}
			return nil
		})
		if err != nil {
			return st, err
		}
		lastID = rows[len(rows)-1]["id"].String
		done += len(rows)
		if progress != nil {
			progress(done, total)
		}
	}
	return st, nil
}

// ProgressBar returns a progress callback drawing a text bar on w.
func ProgressBar(w io.Writer, label string) func(done, total int) {
	return func(done, total int) {
		const width = 30
		filled := width
		if total > 0 {
			filled = done * width / total
		}
		if filled > width {
			filled = width
		}
		bar := make([]byte, width)
		for i := range bar {
			bar[i] = '.'
			if i < filled {
				bar[i] = '#'
			}
		}
		fmt.Fprintf(w, "\r%s [%s] %d/%d", label, bar, done, total)
		if done >= total {
			fmt.Fprintln(w)
		}
	}
}
