package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/carillon-chat/carillon"
)

// TestClassify checks which errors become "cannot serve now" (503 and
// retry) and which stay the caller's or internal errors.
func TestClassify(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("query: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	cases := []struct {
		name string
		err  error
		want string // error code after classify
	}{
		{"admin shutdown", pg("57P01"), carillon.EServiceUnavailable},
		{"crash shutdown", pg("57P02"), carillon.EServiceUnavailable},
		{"cannot connect now", pg("57P03"), carillon.EServiceUnavailable},
		{"statement timeout", pg("57014"), carillon.EServiceUnavailable},
		{"read-only transaction", pg("25006"), carillon.EServiceUnavailable},
		{"disk full", pg("53100"), carillon.EServiceUnavailable},
		{"too many connections", pg("53300"), carillon.EServiceUnavailable},
		{"serialization failure", pg("40001"), carillon.EServiceUnavailable},
		{"deadlock", pg("40P01"), carillon.EServiceUnavailable},
		{"connection failure", pg("08006"), carillon.EServiceUnavailable},
		{"lock timeout", pg("55P03"), carillon.EServiceUnavailable},
		{"I/O error", pg("58030"), carillon.EServiceUnavailable},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, carillon.EServiceUnavailable},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), carillon.EServiceUnavailable},
		{"closed by the server", fmt.Errorf("receive: %w", io.ErrUnexpectedEOF), carillon.EServiceUnavailable},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), carillon.EServiceUnavailable},
		{"pool closed", puddle.ErrClosedPool, carillon.EServiceUnavailable},
		{"NUL in text", pg("22021"), carillon.EBadRequest},
		{"unique violation", pg("23505"), carillon.EInternal},
		{"syntax error", pg("42601"), carillon.EInternal},
		{"foreign key violation", pg("23503"), carillon.EInternal},
		{"other", errors.New("boom"), carillon.EInternal},
		{"carillon error", carillon.Errorf(carillon.ENotFound, "No such room."), carillon.ENotFound},
	}
	for _, c := range cases {
		if got := carillon.ErrorCode(classify(c.err)); got != c.want {
			t.Errorf("%s: classify(%v) has code %s, want %s", c.name, c.err, got, c.want)
		}
	}
	if classify(nil) != nil {
		t.Errorf("classify(nil) != nil")
	}
	if err := classify(pg("57P01")); !errors.Is(err, carillon.ErrUnavailable) {
		t.Errorf("classify of a shutdown does not wrap ErrUnavailable: %v", err)
	}
}
