package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/accessgate/accessgate/keystore"
)

// stdio names standard input or output in --input and --output.
const stdio = "-"

func newExportCommand(g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "export [--output <file>]",
		Short: "Writes every record to a file (JSON lines): a logical backup, or the first half of a move",
		Long: `Writes every record of the store as JSON lines, to standard output or to
--output: a header (format, version, export ID, prefix, time, counts), the
two policies, roles, users and service accounts, key records with their
last use, and an end line counting the records. Keys are stored and
exported as hashes of their secrets only: no plaintext secret exists.
A key rotated out and still in its grace is exported with the end of
its grace; a rotation in progress (its pending successor) is not.

Memory stays constant whatever the number of keys: records are read in
pages, on every master of a Redis Cluster. An export is not a snapshot:
a record changed while it runs may be exported before or after the
change. For a point-in-time backup, take a Redis RDB snapshot as well.

--output writes the file with mode 0600 (it holds the secret hashes)
under a temporary name, renamed when complete. A progress bar shows on
a terminal; otherwise one summary line is printed. The export is
recorded as an AccessKeysExported audit event.`,
		Args: cobra.NoArgs,
	}
	c.RunE = g.run(func(e *env, _ []string) error { return exportStore(e, output) })
	c.Flags().StringVarP(&output, "output", "o", stdio, "File to write (- for standard output)")
	return c
}

func exportStore(e *env, output string) error {
	counts, err := e.store.Counts(e.ctx)
	if err != nil {
		return err
	}
	bar := newProgress(e.errOut, "export")
	progress := func(n int) { bar.update(n, counts.Total()) }
	var sum keystore.ExportSummary
	report := e.out
	if output == stdio {
		// Standard output holds the export: the summary goes with the
		// progress, to standard error.
		report = e.errOut
		sum, err = e.store.Export(e.ctx, e.out, progress)
	} else {
		sum, err = exportToFile(e.ctx, e.store, output, progress)
	}
	bar.done()
	if err != nil {
		return err
	}
	_ = e.store.AppendEvent(context.WithoutCancel(e.ctx), keystore.Event{EventName: keystore.EventKeysExported, Operator: e.op,
		Details: map[string]any{"exportId": sum.ExportID, "records": sum.Records, "keys": sum.Keys + sum.RotatedKeys}})
	if e.json {
		return writeJSONTo(report, sum)
	}
	where := output
	if output == stdio {
		where = "standard output"
	}
	_, err = fmt.Fprintf(report, "Exported %d records to %s: %d keys (%d rotated out, in their grace), %d users, %d service accounts, %d roles%s.%s\n",
		sum.Records, where, sum.Keys+sum.RotatedKeys, sum.RotatedKeys, sum.Users, sum.ServiceAccounts, sum.Roles,
		map[bool]string{true: ", the policies", false: ""}[sum.Policies], exportWarnings(sum))
	return err
}

// exportWarnings names the records an export left out.
func exportWarnings(sum keystore.ExportSummary) string {
	var s string
	if sum.PendingSkipped > 0 {
		s += fmt.Sprintf(" %d pending records of rotations in progress were left out.", sum.PendingSkipped)
	}
	if sum.Unreadable > 0 {
		s += fmt.Sprintf(" %d unreadable records (not valid JSON) were left out.", sum.Unreadable)
	}
	return s
}

// exportToFile writes the export to a temporary file beside path, only
// readable by its owner, and renames it to path once complete, so that
// path never holds a partial export.
func exportToFile(ctx context.Context, st *keystore.Store, path string, progress func(int)) (keystore.ExportSummary, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return keystore.ExportSummary{}, err
	}
	sum, err := st.Export(ctx, f, progress)
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return sum, err
}

type importInput struct {
	input  string
	resume bool
	merge  bool
}

func newImportCommand(g *globals) *cobra.Command {
	var in importInput
	c := &cobra.Command{
		Use:   "import [--input <file>] [--resume] [--merge]",
		Short: "Reads an export into Redis: a restore, or the second half of a move",
		Long: `Reads a file written by export (standard input, or --input) into the Redis
named by --redis or --config: a single server, a Sentinel setup or a Redis
Cluster, under --prefix (which need not be the prefix exported from).
Every index is rebuilt; keys keep their Access IDs, secret hashes, owners,
scopes, allowlists, limits and last use, so every credential works as
before, and a key rotated out keeps what is left of its grace.

An import is idempotent: a record Redis already holds with the same or a
higher version (keys: version; users, service accounts and roles: time
of their last change; policies: time set) is kept and counted as
skipped, so importing a file twice writes nothing the second time.
Records are written in pipelined batches of 500.

An import stopped midway (an error, Ctrl-C, a lost connection) is
completed by running it again: every record already written is skipped
after a cheap read. --resume skips even that read, for the lines the
store records as done by an import of the same export.

A store that already holds keys, users, service accounts or roles that
no import of this file wrote is refused before anything is written:
moving into the wrong Redis, or into a live organisation, is a mistake
more often than not. --merge imports anyway, keeping every record Redis
holds in the same or a newer version; import adds and updates, it never
deletes.

A line that is not a valid record stops the import with its line
number; records before it are imported, nothing of it is. A file that
ends without its end line (cut short) is reported the same way. The
import is recorded as one AccessKeysImported audit event, and gateways
sharing the Redis drop their caches when anything was written.`,
		Args: cobra.NoArgs,
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		return g.run(func(e *env, _ []string) error { return importStore(e, cmd.InOrStdin(), in) })(cmd, args)
	}
	c.Flags().StringVarP(&in.input, "input", "i", stdio, "File to read (- for standard input)")
	c.Flags().BoolVar(&in.resume, "resume", false, "Skip the lines an interrupted import of the same export recorded as done")
	c.Flags().BoolVar(&in.merge, "merge", false, "Import into a store that already holds other records, keeping the newer of each")
	return c
}

func importStore(e *env, stdin io.Reader, in importInput) error {
	r := stdin
	if in.input != stdio {
		f, err := os.Open(in.input)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	bar := newProgress(e.errOut, "import")
	sum, err := e.store.Import(e.ctx, r, keystore.ImportOptions{Operator: e.op, Resume: in.resume, Merge: in.merge, Progress: bar.update})
	bar.done()
	switch {
	case errors.Is(err, keystore.ErrStoreNotEmpty):
		return &verbError{msg: err.Error() + "; import into an empty store (another Redis or --prefix), or add --merge to import anyway, keeping every record Redis holds in the same or a newer version", err: err}
	case err != nil && sum.ExportID != "":
		fmt.Fprintf(e.errOut, "%s\nThe import stopped; run the same command again to complete it (add --resume to skip the lines done).\n", importSummary(sum))
		return err
	case err != nil:
		return err
	}
	if e.json {
		return e.writeJSON(sum)
	}
	_, err = fmt.Fprintln(e.out, importSummary(sum))
	return err
}

// writeJSONTo prints v as indented JSON to w.
func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// importSummary is the one-line summary of an import.
func importSummary(sum keystore.ImportSummary) string {
	state := "Imported"
	if !sum.Complete {
		state = "Partly imported"
	}
	s := fmt.Sprintf("%s export %s (prefix %s): %d records read, %d written, %d skipped (already there in the same or a newer version)",
		state, sum.ExportID, sum.SourcePrefix, sum.Records, sum.Written, sum.Skipped)
	if sum.Expired > 0 {
		s += fmt.Sprintf(", %d keys rotated out whose grace had ended left out", sum.Expired)
	}
	if sum.Resumed > 0 {
		s += fmt.Sprintf(", %d lines done before (--resume)", sum.Resumed)
	}
	return s + fmt.Sprintf("; %d last uses moved forward.", sum.LastUsedWritten)
}
