package ingest

import (
	"slices"
	"testing"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/render"
)

func member(id, alias string) carillon.Membership {
	return carillon.Membership{UserID: id, User: carillon.User{UserID: id, Alias: alias, Email: alias + "@example.com"}}
}

func mentioned(dir *render.Directory, content string) []string {
	return render.Render(content, dir).Mentions.MemberIDs
}

func TestDirectoriesFollowTheMemberList(t *testing.T) {
	var d directories
	members := []carillon.Membership{member("u1", "ana"), member("u2", "bo")}
	first := d.of("room", members)
	if got := mentioned(first, "hi @bo"); !slices.Equal(got, []string{"u2"}) {
		t.Fatalf("@bo mentions %v", got)
	}
	if d.of("room", members) != first {
		t.Fatal("the same member list built its directory again")
	}

	// A changed membership comes as another slice, even of the same length.
	changed := []carillon.Membership{member("u1", "ana"), member("u3", "cy")}
	dir := d.of("room", changed)
	if got := mentioned(dir, "hi @bo @cy"); !slices.Equal(got, []string{"u3"}) {
		t.Fatalf("after the change, @bo @cy mention %v", got)
	}
	grown := append(changed, member("u4", "di"))
	if got := mentioned(d.of("room", grown), "@di"); !slices.Equal(got, []string{"u4"}) {
		t.Fatalf("after a member joined, @di mentions %v", got)
	}
	// A slice of the same array, one member shorter, is another list.
	if got := mentioned(d.of("room", grown[:1]), "@cy"); len(got) != 0 {
		t.Fatalf("after a member left, @cy mentions %v", got)
	}

	// Rooms do not share directories.
	if got := mentioned(d.of("other", []carillon.Membership{member("u9", "bo")}), "@bo"); !slices.Equal(got, []string{"u9"}) {
		t.Fatalf("@bo in another room mentions %v", got)
	}
}
