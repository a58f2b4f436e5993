package ingest

import (
	"sync"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/render"
)

// directories keeps the mention directory built from each room's member
// list. The store's cache hands out the same slice until the room's
// membership changes, so a directory is rebuilt only then: indexing a
// room of 2,000 members took ~130 KB of garbage and most of the CPU of
// every message with an "@" in it (an e-mail address is enough).
type directories struct {
	mu      sync.Mutex
	entries map[string]directoryEntry // by room id
}

type directoryEntry struct {
	// first and n identify the member slice the directory was built
	// from: holding first keeps that array alive, so no other slice can
	// take its address meanwhile.
	first *carillon.Membership
	n     int
	dir   *render.Directory
}

// maxDirectories bounds the rooms remembered; past it they start over.
const maxDirectories = 4096

// of returns the directory of members, the room's current member list.
func (d *directories) of(roomID string, members []carillon.Membership) *render.Directory {
	if len(members) == 0 {
		return directoryOf(members)
	}
	d.mu.Lock()
	e, ok := d.entries[roomID]
	d.mu.Unlock()
	if ok && e.first == &members[0] && e.n == len(members) {
		return e.dir
	}
	e = directoryEntry{first: &members[0], n: len(members), dir: directoryOf(members)}
	d.mu.Lock()
	if d.entries == nil || len(d.entries) >= maxDirectories {
		d.entries = make(map[string]directoryEntry)
	}
	d.entries[roomID] = e
	d.mu.Unlock()
	return e.dir
}

func directoryOf(members []carillon.Membership) *render.Directory {
	dm := make([]render.Member, len(members))
	for i, m := range members {
		dm[i] = render.Member{ID: m.UserID, Alias: m.User.Alias, Email: m.User.Email}
	}
	return render.NewDirectory(dm)
}
