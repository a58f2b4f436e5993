package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strconv"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/ingest"
)

// maxResults reads MaxResults (1–100, default 50).
func maxResults(r *http.Request) (int, error) {
	v := r.URL.Query().Get("MaxResults")
	if v == "" {
		return carillon.DefaultMessagesPage, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > carillon.MaxMessagesPage {
		return 0, badRequest("MaxResults must be a whole number from 1 to %d.", carillon.MaxMessagesPage)
	}
	return n, nil
}

// Page tokens are opaque to clients: the position in commit order, the
// sort order and a tag of the room they belong to, so that a token used
// with another listing is refused rather than misread.
func encodePageToken(roomID string, seq int64, ascending bool) string {
	var b [13]byte
	binary.BigEndian.PutUint64(b[:8], uint64(seq))
	if ascending {
		b[8] = 1
	}
	tag := sha256.Sum256([]byte(roomID))
	copy(b[9:], tag[:4])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodePageToken(tok, roomID string, ascending bool) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	bad := badRequest("NextToken is not valid for this listing; start again without it.")
	if err != nil || len(b) != 13 || (b[8] == 1) != ascending {
		return 0, bad
	}
	if tag := sha256.Sum256([]byte(roomID)); !bytes.Equal(b[9:], tag[:4]) {
		return 0, bad
	}
	seq := int64(binary.BigEndian.Uint64(b[:8]))
	if seq <= 0 {
		return 0, bad
	}
	return seq, nil
}

func (s *Server) handleListMessages(w http.ResponseWriter, r *http.Request, c *caller) error {
	a, err := s.accessRoom(r, c, r.PathValue("RoomId"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := maxResults(r)
	if err != nil {
		return err
	}
	var ascending bool
	switch q.Get("SortOrder") {
	case "", "DESCENDING":
	case "ASCENDING":
		ascending = true
	default:
		return badRequest("SortOrder must be ASCENDING or DESCENDING.")
	}
	query := carillon.MessageQuery{Ascending: ascending, Limit: limit + 1}
	if tok := q.Get("NextToken"); tok != "" {
		if query.After, err = decodePageToken(tok, a.room.RoomID, ascending); err != nil {
			return err
		}
	}
	msgs, err := s.store.Messages(r.Context(), a.room.RoomID, query)
	if err != nil {
		return err
	}
	var next *string
	if len(msgs) > limit {
		msgs = msgs[:limit]
		tok := encodePageToken(a.room.RoomID, msgs[limit-1].Seq, ascending)
		next = &tok
	}
	out := make([]carillon.MessageJSON, len(msgs))
	for i := range msgs {
		out[i] = msgs[i].JSON()
	}
	writeJSON(w, http.StatusOK, map[string]any{"Messages": out, "NextToken": next})
	return nil
}

func (s *Server) handlePostMessage(w http.ResponseWriter, r *http.Request, c *caller) error {
	a, err := s.accessRoom(r, c, r.PathValue("RoomId"))
	if err != nil {
		return err
	}
	if a.member == nil {
		return carillon.Errorf(carillon.EForbidden, "Only members of the room can post in it.")
	}
	var in struct{ Content *string }
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Content == nil {
		return badRequest(`Send {"Content": "your message"}.`)
	}
	keys, hasKey := r.Header["Idempotency-Key"]
	var key string
	if hasKey {
		key = keys[0]
	}
	acc, err := s.ingest.Submit(r.Context(), ingest.Post{
		RoomID:            a.room.RoomID,
		SenderType:        carillon.MemberTypeUser,
		SenderID:          c.UserID,
		SenderName:        c.FullName,
		Content:           *in.Content,
		IdempotencyKey:    key,
		HasIdempotencyKey: hasKey,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, acc)
	return nil
}
