package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/carillon-chat/carillon"
)

// reserveLoginAttempt takes one login attempt from the budgets of the
// client's address and of the account, refusing with 429 when either is
// spent. The returned function gives both back (a successful login).
func (s *Server) reserveLoginAttempt(r *http.Request, email string) (giveBack func(), err error) {
	if s.cfg.LoginLimiter == nil {
		return func() {}, nil
	}
	keys := []string{"login-ip:" + s.clientIP(r).String(), "login-account:" + strings.ToLower(strings.TrimSpace(email))}
	var taken []func()
	giveBack = func() {
		for _, c := range taken {
			c()
		}
	}
	for _, key := range keys {
		res, err := s.cfg.LoginLimiter.Reserve(r.Context(), key)
		if err != nil {
			giveBack()
			return nil, err
		}
		if !res.OK {
			giveBack()
			return nil, &carillon.Error{Code: carillon.EThrottled, RetryAfter: res.RetryAfter,
				Message: "Too many failed logins. Wait the number of seconds in Retry-After, then try again."}
		}
		taken = append(taken, res.Cancel)
	}
	return giveBack, nil
}

// clientIP is the address of the client: the peer, or, when the peer is a
// trusted proxy, the nearest address in X-Forwarded-For that is not one.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	addr = addr.Unmap()
	if !s.trusted(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		addr = hop.Unmap()
		if !s.trusted(addr) {
			break
		}
	}
	return addr
}

func (s *Server) trusted(addr netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
