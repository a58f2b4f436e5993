package server

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/carillon-chat/carillon"
)

// handleMetrics serves Prometheus metrics to the instance admin or to the
// holder of the scrape-only metrics token.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Metrics == nil {
		return carillon.Errorf(carillon.ENotFound, "Metrics are not enabled.")
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return carillon.Errorf(carillon.EUnauthorized, "Send Authorization: Bearer <metrics token or admin API token>.")
	}
	mt := s.cfg.MetricsToken
	if mt == "" || subtle.ConstantTimeCompare([]byte(token), []byte(mt)) != 1 {
		c, err := s.authenticate(r)
		if err != nil {
			return err
		}
		if err := requireInstanceAdmin(c); err != nil {
			return err
		}
	}
	s.cfg.Metrics.Handler().ServeHTTP(w, r)
	return nil
}
