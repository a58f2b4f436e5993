package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/postgres"
	"github.com/carillon-chat/carillon/storetest"
)

// The tests need a PostgreSQL server where they may create databases:
// CARILLON_TEST_POSTGRES is its DSN (default below: the local server, user
// postgres, trust authentication). Every store a test opens lives in a
// database of its own, carillon_test_<random>, dropped when the test ends,
// so runs never see each other's data. Without a reachable server the
// tests skip, unless CARILLON_REQUIRE_POSTGRES=1 (as in CI), when they
// fail.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	baseDSN  string
	admin    *pgxpool.Pool // on baseDSN's database: creates and drops the test databases
	adminErr error
)

func TestMain(m *testing.M) {
	baseDSN = os.Getenv("CARILLON_TEST_POSTGRES")
	if baseDSN == "" {
		baseDSN = defaultDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	admin, adminErr = pgxpool.New(ctx, baseDSN)
	if adminErr == nil {
		if adminErr = admin.Ping(ctx); adminErr != nil {
			admin.Close()
			admin = nil
		}
	}
	cancel()
	code := m.Run()
	if admin != nil {
		admin.Close()
	}
	os.Exit(code)
}

// needServer skips (or, with CARILLON_REQUIRE_POSTGRES=1, fails) the test
// when no PostgreSQL server is reachable.
func needServer(t testing.TB) {
	t.Helper()
	if admin != nil {
		return
	}
	if os.Getenv("CARILLON_REQUIRE_POSTGRES") == "1" {
		t.Fatalf("PostgreSQL at %s is required (CARILLON_REQUIRE_POSTGRES=1) but not reachable: %v", redact(baseDSN), adminErr)
	}
	t.Skipf("no PostgreSQL at %s (set CARILLON_TEST_POSTGRES): %v", redact(baseDSN), adminErr)
}

// freshDatabase creates an empty database of its own for t, dropped when t
// ends, and returns its DSN.
func freshDatabase(t testing.TB) string {
	t.Helper()
	needServer(t)
	b := make([]byte, 8)
	rand.Read(b)
	name := "carillon_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("CREATE DATABASE %s: %v", name, err)
	}
	t.Cleanup(func() {
		// FORCE ends connections a failed test may have left behind.
		if _, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("DROP DATABASE %s: %v", name, err)
		}
	})
	return withDatabase(t, baseDSN, name)
}

// withDatabase returns dsn pointing at database name instead.
func withDatabase(t testing.TB, dsn, name string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("CARILLON_TEST_POSTGRES: %v", err)
		}
		u.Path = "/" + name
		return u.String()
	}
	return dsn + " dbname=" + name // key=value form: the last setting wins
}

func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	return dsn
}

// openDSN opens a store on dsn, closed when t ends.
func openDSN(t testing.TB, dsn string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// open opens a store on a fresh database of its own.
func open(t testing.TB) *postgres.DB {
	t.Helper()
	return openDSN(t, freshDatabase(t))
}

// TestStore runs the storage contract suite, each subtest on a database of
// its own.
func TestStore(t *testing.T) {
	needServer(t)
	storetest.Run(t, func(t *testing.T) carillon.Store { return open(t) })
}

// exec runs statements on the database of dsn outside the store.
func exec(t testing.TB, dsn string, statements ...string) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, s := range statements {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func databaseOf(t testing.TB, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Path == "" {
		t.Skip("this test needs CARILLON_TEST_POSTGRES as a postgres:// URL")
	}
	return strings.TrimPrefix(u.Path, "/")
}

func mustf(t testing.TB, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}
