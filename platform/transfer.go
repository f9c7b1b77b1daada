package platform

import (
	"bufio"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// transferCommands are `picard export` and `picard import`: a whole
// instance (users with their password hashes, groups, every memory
// decrypted) as JSON Lines, for migration to another instance.
func (p *Picard) transferCommands() []*cobra.Command {
	var out string
	export := &cobra.Command{
		Use:          "export --out FILE",
		Short:        "Write every user, group and memory (decrypted) as JSON Lines, for migration",
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out FILE is required")
			}
			if err := p.RunAllMigrations(); err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("export: %w (the file must not exist yet)", err)
			}
			w := bufio.NewWriter(f)
			n, err := p.Memories.ExportInstance(c.Context(), w)
			if err == nil {
				err = w.Flush()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				_ = os.Remove(out)
				return fmt.Errorf("export: %w", err)
			}
			fmt.Fprintf(c.ErrOrStderr(), "WARNING: %s holds every memory in clear text and the users' password hashes; it is readable by you only (0600). Keep it safe and delete it after the migration.\n", out)
			fmt.Fprintf(c.OutOrStdout(), "exported %d memories to %s\n", n, out)
			return nil
		},
	}
	export.Flags().StringVar(&out, "out", "", "file to write (created 0600; must not exist)")
	imp := &cobra.Command{
		Use:          "import FILE",
		Short:        "Load a `picard export` file: missing users and groups are created, memories re-encrypted and re-indexed (all or nothing; idempotent)",
		Args:         cobra.ExactArgs(1),
		SilenceUsage: true,
		RunE: func(c *cobra.Command, args []string) error {
			if err := p.RunAllMigrations(); err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("import: %w", err)
			}
			defer f.Close()
			res, err := p.Memories.ImportInstance(c.Context(), f)
			if err != nil {
				return fmt.Errorf("import: nothing imported: %w", err)
			}
			// index now when this process can (the server indexes pending
			// memories at start otherwise)
			n, ierr := p.Memories.Reconcile(c.Context())
			fmt.Fprintf(c.OutOrStdout(), "users created %d, groups created %d, memories created %d, updated %d, unchanged %d, skipped (expired) %d; indexed %d\n",
				res.Users, res.Groups, res.Created, res.Updated, res.Unchanged, res.Expired, n)
			if ierr != nil {
				fmt.Fprintf(c.ErrOrStderr(), "indexing is not finished (%v); the server indexes the rest when it starts\n", ierr)
			}
			return nil
		},
	}
	return []*cobra.Command{export, imp}
}
