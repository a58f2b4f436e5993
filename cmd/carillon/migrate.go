package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/carillon-chat/carillon/postgres"
	"github.com/carillon-chat/carillon/secret"
	"github.com/carillon-chat/carillon/sqlite"
)

// migrateStorageCmd copies a single node's SQLite database into an empty
// PostgreSQL database, so that the deployment can move to PostgreSQL (and
// then to several nodes) keeping everything: ids, message seqs, hashes,
// sealed webhook tokens, tombstones, notifications and the audit log.
type migrateStorageCmd struct {
	Data          string `default:"./carillon-data" env:"CARILLON_DATA" help:"Data directory of the SQLite database to copy (the server must be stopped)."`
	Database      string `required:"" env:"CARILLON_DATABASE" help:"postgres:// DSN of the empty PostgreSQL database to copy into."`
	SecretKeyFile string `name:"secret-key-file" env:"CARILLON_SECRET_KEY_FILE" help:"Secret key file the server used, checked against the database (default <data>/secret.key); give the PostgreSQL nodes the same one."`
}

func (c *migrateStorageCmd) Run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := migrateStorage(ctx, c.Data, c.Database, c.SecretKeyFile, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "carillon migrate-storage:", err)
		return err
	}
	return nil
}

// A columnKind says how a value read from SQLite is written to PostgreSQL.
// The two schemas agree on names; they differ in booleans (SQLite integers
// 0/1, PostgreSQL boolean). Times are Unix milliseconds in both.
type columnKind int

const (
	textColumn    columnKind = iota // TEXT → text
	integerColumn                   // INTEGER → bigint (NULL where the column allows it)
	booleanColumn                   // INTEGER 0/1 → boolean
	blobColumn                      // BLOB → bytea
)

type migratedColumn struct {
	name string
	kind columnKind
}

// A migratedTable is one table copied from SQLite to PostgreSQL.
type migratedTable struct {
	name string
	cols []migratedColumn
	// order is the SQLite ORDER BY: commit order where there is one, so
	// that PostgreSQL gets the rows in the order SQLite wrote them.
	order string
	// sqliteOnly are columns that only the SQLite table has.
	sqliteOnly []string
}

// migratedTables lists every table of the store, parents before children
// (the foreign keys). Both schemas are checked against it before anything
// is copied, so a column added to either one without being added here
// stops the copy instead of being lost.
var migratedTables = []migratedTable{
	{name: "meta", order: "key", cols: []migratedColumn{
		{"key", textColumn}, {"value", textColumn}}},
	{name: "users", order: "created_at, user_id", cols: []migratedColumn{
		{"user_id", textColumn}, {"email", textColumn}, {"email_key", textColumn},
		{"alias", textColumn}, {"alias_key", textColumn}, {"full_name", textColumn},
		{"password_hash", textColumn}, {"is_admin", booleanColumn}, {"active", booleanColumn},
		{"created_at", integerColumn}}},
	{name: "api_tokens", order: "created_at, token_hash", cols: []migratedColumn{
		{"token_hash", blobColumn}, {"user_id", textColumn}, {"created_at", integerColumn}}},
	{name: "sessions", order: "created_at, session_hash", cols: []migratedColumn{
		{"session_hash", blobColumn}, {"user_id", textColumn}, {"created_at", integerColumn},
		{"last_used_at", integerColumn}}},
	{name: "rooms", order: "created_at, room_id", cols: []migratedColumn{
		{"room_id", textColumn}, {"name", textColumn}, {"created_by", textColumn},
		{"created_at", integerColumn}, {"deleted_at", integerColumn}}},
	{name: "memberships", order: "room_id, user_id", cols: []migratedColumn{
		{"room_id", textColumn}, {"user_id", textColumn}, {"role", textColumn},
		{"created_at", integerColumn}, {"last_read_seq", integerColumn}}},
	{name: "webhooks", order: "created_at, webhook_id", cols: []migratedColumn{
		{"webhook_id", textColumn}, {"room_id", textColumn}, {"name", textColumn},
		{"token_hash", blobColumn}, {"token_seal", blobColumn}, {"created_at", integerColumn},
		{"last_used_at", integerColumn}, {"deleted_at", integerColumn}}},
	{name: "webhook_tokens", order: "created_at, token_hash", cols: []migratedColumn{
		{"token_hash", blobColumn}, {"webhook_id", textColumn}, {"created_at", integerColumn}}},
	{name: "messages", order: "seq", cols: []migratedColumn{
		{"seq", integerColumn}, {"message_id", textColumn}, {"room_id", textColumn},
		{"sender_type", textColumn}, {"sender_id", textColumn}, {"sender_name", textColumn},
		{"display_name", textColumn}, {"content", textColumn}, {"format", textColumn},
		{"html", textColumn}, {"mentions", textColumn}, {"created_at", integerColumn}}},
	{name: "idempotency_keys", order: "created_at, sender_id, key", cols: []migratedColumn{
		{"sender_id", textColumn}, {"key", textColumn}, {"content_hash", blobColumn},
		{"message_id", textColumn}, {"room_id", textColumn}, {"created_at", integerColumn}}},
	{name: "audit_events", order: "seq", cols: []migratedColumn{
		{"seq", integerColumn}, {"audit_event_id", textColumn}, {"room_id", textColumn},
		{"action", textColumn}, {"actor_id", textColumn}, {"target_id", textColumn},
		{"created_at", integerColumn}}},
	// SQLite keeps notifications in insertion order under a rowid seq of
	// their own; PostgreSQL keys them by notification_id. Both order them
	// by message_seq.
	{name: "notifications", order: "seq", sqliteOnly: []string{"seq"}, cols: []migratedColumn{
		{"notification_id", textColumn}, {"user_id", textColumn}, {"message_id", textColumn},
		{"message_seq", integerColumn}, {"room_id", textColumn}, {"reason", textColumn},
		{"read", booleanColumn}, {"created_at", integerColumn}}},
}

// Tables that are not copied: the migration tools' own, and PostgreSQL's
// message counter, which is set from the copied messages.
var (
	sqliteOwnTables   = []string{"goose_db_version"}
	postgresOwnTables = []string{"goose_db_version", "seq_counter"}
)

// migrateStorage copies the SQLite database in dataDir into the PostgreSQL
// database at dsn, in one PostgreSQL transaction, and writes a summary to
// out.
func migrateStorage(ctx context.Context, dataDir, dsn, keyFile string, out io.Writer) error {
	start := time.Now()
	path := filepath.Join(dataDir, sqlite.FileName)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no SQLite database to copy: %w", err)
	}
	switch inUse, err := sqlite.InUse(dataDir); {
	case err != nil:
		return err
	case inUse:
		return fmt.Errorf("%s is in use by another process: stop the carillon server first (and keep it stopped: what it stored after the copy would not be in PostgreSQL)", path)
	}
	pgCfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("--database: %w", err)
	}

	// Bring the SQLite schema up to this version's, as `serve` would; the
	// copy is written against it.
	store, err := sqlite.Open(ctx, dataDir)
	if err != nil {
		return err
	}
	if err := store.Close(); err != nil {
		return err
	}
	src, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer src.Close()
	// One read transaction: the copy is one snapshot even if something
	// wrote to the database meanwhile.
	stx, err := src.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	defer stx.Rollback()
	if err := checkKey(ctx, stx, dataDir, keyFile); err != nil {
		return err
	}
	if err := checkSQLiteSchema(ctx, stx); err != nil {
		return err
	}

	// Create the PostgreSQL schema (or check it is current) the way the
	// server does, then copy through a connection of our own.
	pg, err := postgres.Open(ctx, dsn)
	if err != nil {
		return err
	}
	pg.Close()
	conn, err := pgx.ConnectConfig(ctx, pgCfg.ConnConfig)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(context.Background())
	ptx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer ptx.Rollback(context.Background())
	if err := checkPostgresSchema(ctx, ptx); err != nil {
		return err
	}
	// Nothing else may write while the copy runs (a server started on this
	// database meanwhile waits for the commit): lock every table, then
	// refuse unless all are empty.
	names := []string{"seq_counter"}
	for _, t := range migratedTables {
		names = append(names, pgx.Identifier{t.name}.Sanitize())
	}
	if _, err := ptx.Exec(ctx, `SET LOCAL lock_timeout = '30s'`); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if _, err := ptx.Exec(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("postgres: lock the tables: %w", err)
	}
	if err := checkEmpty(ctx, ptx); err != nil {
		return err
	}

	counts := make([]int64, len(migratedTables))
	for i, t := range migratedTables {
		if counts[i], err = copyTable(ctx, stx, ptx, t); err != nil {
			return err
		}
	}
	next, err := fixCounters(ctx, stx, ptx)
	if err != nil {
		return err
	}
	if err := ptx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}

	cc := pgCfg.ConnConfig
	fmt.Fprintf(out, "Copied %s to PostgreSQL database %q on %s:%d in %v.\n",
		path, cc.Database, cc.Host, cc.Port, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(out, "  %-17s %10s\n", "table", "rows")
	for i, t := range migratedTables {
		fmt.Fprintf(out, "  %-17s %10d\n", t.name, counts[i])
	}
	fmt.Fprintf(out, "The next message gets seq %d.\n", next)
	fmt.Fprintf(out, "Start every node with --database and the same secret key: --secret-key-file %s\n", keyPath(dataDir, keyFile))
	return nil
}

func keyPath(dataDir, keyFile string) string {
	if keyFile == "" {
		return filepath.Join(dataDir, "secret.key")
	}
	return keyFile
}

// checkKey makes sure the secret key file is the one the database was used
// with: the PostgreSQL nodes need it to start and to show webhook URLs.
func checkKey(ctx context.Context, stx *sql.Tx, dataDir, keyFile string) error {
	path := keyPath(dataDir, keyFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("secret key: %w (the PostgreSQL nodes need the key this database was used with; give it with --secret-key-file)", err)
	}
	key, err := secret.NewKey(raw)
	if err != nil || len(raw) != 32 {
		return fmt.Errorf("secret key %s: not a 32-byte key", path)
	}
	var fp string
	err = stx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'secret_key_fingerprint'`).Scan(&fp)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil // never started: no key recorded yet
	case err != nil:
		return fmt.Errorf("read the key fingerprint: %w", err)
	case fp != key.Fingerprint():
		return fmt.Errorf("secret key %s is not the one this database was used with; give the right one with --secret-key-file", path)
	}
	return nil
}

// checkSQLiteSchema compares the SQLite tables and columns with
// migratedTables.
func checkSQLiteSchema(ctx context.Context, stx *sql.Tx) error {
	tables, err := queryStrings(ctx, stx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`)
	if err != nil {
		return fmt.Errorf("read the SQLite schema: %w", err)
	}
	if err := sameTables("SQLite", tables, sqliteOwnTables); err != nil {
		return err
	}
	for _, t := range migratedTables {
		cols, err := queryStrings(ctx, stx, `SELECT name FROM pragma_table_info(?)`, t.name)
		if err != nil {
			return fmt.Errorf("read the SQLite schema: %w", err)
		}
		if err := sameColumns("SQLite", t, cols, t.sqliteOnly); err != nil {
			return err
		}
	}
	return nil
}

// checkPostgresSchema compares the PostgreSQL tables and columns with
// migratedTables.
func checkPostgresSchema(ctx context.Context, ptx pgx.Tx) error {
	rows, _ := ptx.Query(ctx, `SELECT table_name::text FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("postgres: read the schema: %w", err)
	}
	if err := sameTables("PostgreSQL", tables, postgresOwnTables); err != nil {
		return err
	}
	for _, t := range migratedTables {
		rows, _ := ptx.Query(ctx, `SELECT column_name::text FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1`, t.name)
		cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("postgres: read the schema: %w", err)
		}
		if err := sameColumns("PostgreSQL", t, cols, nil); err != nil {
			return err
		}
	}
	return nil
}

func sameTables(db string, have, own []string) error {
	want := slices.Clone(own)
	for _, t := range migratedTables {
		want = append(want, t.name)
	}
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		return fmt.Errorf("the %s schema has the tables %v, this version of migrate-storage copies %v: use the carillon binary that matches the database", db, have, want)
	}
	return nil
}

func sameColumns(db string, t migratedTable, have, extra []string) error {
	want := slices.Clone(extra)
	for _, c := range t.cols {
		want = append(want, c.name)
	}
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		return fmt.Errorf("the %s table %s has the columns %v, this version of migrate-storage copies %v: use the carillon binary that matches the database", db, t.name, have, want)
	}
	return nil
}

// checkEmpty refuses a database that holds anything: a server already
// ran on it, or an earlier migration did.
func checkEmpty(ctx context.Context, ptx pgx.Tx) error {
	var used []string
	for _, t := range migratedTables {
		var found bool
		if err := ptx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM `+pgx.Identifier{t.name}.Sanitize()+`)`).Scan(&found); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		if found {
			used = append(used, t.name)
		}
	}
	var seq int64
	if err := ptx.QueryRow(ctx, `SELECT value FROM seq_counter WHERE id = 1`).Scan(&seq); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if seq != 0 {
		used = append(used, "seq_counter")
	}
	if len(used) > 0 {
		return fmt.Errorf("the PostgreSQL database is not empty (%s hold rows): copy only into a new, empty database (CREATE DATABASE …), never over one a server has used", strings.Join(used, ", "))
	}
	return nil
}

// copyTable streams one table from SQLite into PostgreSQL with COPY and
// returns the number of rows.
func copyTable(ctx context.Context, stx *sql.Tx, ptx pgx.Tx, t migratedTable) (int64, error) {
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name
	}
	rows, err := stx.QueryContext(ctx, `SELECT `+strings.Join(names, ", ")+` FROM `+t.name+` ORDER BY `+t.order)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", t.name, err)
	}
	defer rows.Close()
	rs := &rowSource{t: t, rows: rows, raw: make([]any, len(t.cols)), ptrs: make([]any, len(t.cols)), vals: make([]any, len(t.cols))}
	for i := range rs.raw {
		rs.ptrs[i] = &rs.raw[i]
	}
	// COPY writes the given seq into audit_events' identity column too
	// (as OVERRIDING SYSTEM VALUE would); fixCounters moves its sequence on.
	n, err := ptx.CopyFrom(ctx, pgx.Identifier{t.name}, names, rs)
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", t.name, err)
	}
	if n != rs.n {
		return 0, fmt.Errorf("copy %s: read %d rows, PostgreSQL took %d", t.name, rs.n, n)
	}
	return n, nil
}

// rowSource feeds the rows of one SQLite query to pgx's CopyFrom,
// converting each value to what the PostgreSQL column takes.
type rowSource struct {
	t         migratedTable
	rows      *sql.Rows
	raw, ptrs []any
	vals      []any
	n         int64
	err       error
}

func (s *rowSource) Next() bool {
	if s.err != nil || !s.rows.Next() {
		return false
	}
	if s.err = s.rows.Scan(s.ptrs...); s.err != nil {
		return false
	}
	for i, c := range s.t.cols {
		v, err := convert(s.raw[i], c.kind)
		if err != nil {
			// Name the row by its first column (the key, or part of it);
			// hashes are shown in hex.
			s.err = fmt.Errorf("table %s, row %s = %v, column %s: %w", s.t.name, s.t.cols[0].name, rowKey(s.raw[0]), c.name, err)
			return false
		}
		s.vals[i] = v
	}
	s.n++
	return true
}

func (s *rowSource) Values() ([]any, error) { return s.vals, nil }

func (s *rowSource) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.rows.Err()
}

func rowKey(v any) string {
	if b, ok := v.([]byte); ok {
		return fmt.Sprintf("x'%x'", b)
	}
	return fmt.Sprintf("%q", fmt.Sprint(v))
}

// convert turns a value as the SQLite driver returns it (int64, float64,
// string, []byte or nil) into the Go value for the PostgreSQL column.
func convert(v any, kind columnKind) (any, error) {
	if v == nil {
		return nil, nil // PostgreSQL's NOT NULL constraints decide
	}
	switch kind {
	case textColumn:
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case []byte:
			s = string(v)
		default:
			return nil, fmt.Errorf("want text, found %T %v", v, v)
		}
		if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
			return nil, errors.New("text PostgreSQL cannot store (a NUL character or invalid UTF-8); correct it in the SQLite database first")
		}
		return s, nil
	case integerColumn:
		if i, ok := v.(int64); ok {
			return i, nil
		}
		return nil, fmt.Errorf("want an integer, found %T %v", v, v)
	case booleanColumn:
		if i, ok := v.(int64); ok && (i == 0 || i == 1) {
			return i == 1, nil
		}
		return nil, fmt.Errorf("want 0 or 1, found %T %v", v, v)
	case blobColumn:
		switch v := v.(type) {
		case []byte:
			return v, nil
		case string:
			return []byte(v), nil
		}
		return nil, fmt.Errorf("want a blob, found %T %v", v, v)
	}
	return nil, fmt.Errorf("unknown column kind %d", kind)
}

// fixCounters sets PostgreSQL's counters after the copied rows: the
// message counter row (so the next message gets the seq SQLite would have
// given it, and CreatedAt keeps never decreasing) and the audit events'
// identity sequence. It returns the next message seq.
func fixCounters(ctx context.Context, stx *sql.Tx, ptx pgx.Tx) (int64, error) {
	// SQLite's AUTOINCREMENT never reuses a seq, even of a row that is
	// gone: continue after the highest it handed out.
	highest := func(table string) (int64, error) {
		var top int64
		err := stx.QueryRowContext(ctx, `SELECT max(coalesce((SELECT max(seq) FROM `+table+`), 0),
			coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0))`, table).Scan(&top)
		if err != nil {
			return 0, fmt.Errorf("read the %s counter: %w", table, err)
		}
		return top, nil
	}
	msgSeq, err := highest("messages")
	if err != nil {
		return 0, err
	}
	var lastCreated int64
	if err := stx.QueryRowContext(ctx, `SELECT coalesce(max(created_at), 0) FROM messages`).Scan(&lastCreated); err != nil {
		return 0, fmt.Errorf("read messages: %w", err)
	}
	if _, err := ptx.Exec(ctx, `UPDATE seq_counter SET value = $1, last_created_at = $2 WHERE id = 1`, msgSeq, lastCreated); err != nil {
		return 0, fmt.Errorf("postgres: set the message counter: %w", err)
	}
	auditSeq, err := highest("audit_events")
	if err != nil {
		return 0, err
	}
	// setval(s, n, false): the next value is n itself.
	if _, err := ptx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('audit_events', 'seq'), $1, false)`, auditSeq+1); err != nil {
		return 0, fmt.Errorf("postgres: set the audit event sequence: %w", err)
	}
	return msgSeq + 1, nil
}

func queryStrings(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
