// Package render turns a message's Content into its Format, sanitized Html
// and the Mentions it carries (SPEC §2). Render is a pure function of the
// content and the room's members at the time of posting: no I/O, no clock.
package render

import (
	"strings"

	"github.com/carillon-chat/carillon"
)

// Result is a rendered message.
type Result struct {
	Format   string
	HTML     string
	Mentions carillon.Mentions
}

// Member is a room member that a mention can name.
type Member struct {
	ID    string
	Alias string
	Email string
}

// Directory resolves @alias and @alias@domain mentions to members. The nil
// Directory knows no one (only @All and @Present are recognized).
type Directory struct {
	aliases map[string]string // lower-case alias → member id
	emails  map[string]string // lower-case e-mail → member id
}

// NewDirectory indexes a room's members.
func NewDirectory(members []Member) *Directory {
	d := &Directory{aliases: make(map[string]string, len(members)), emails: make(map[string]string, len(members))}
	for _, m := range members {
		if m.Alias != "" {
			d.aliases[strings.ToLower(m.Alias)] = m.ID
		}
		if m.Email != "" {
			d.emails[strings.ToLower(m.Email)] = m.ID
		}
	}
	return d
}

func (d *Directory) alias(name string) (string, bool) {
	if d == nil {
		return "", false
	}
	id, ok := d.aliases[strings.ToLower(name)]
	return id, ok
}

func (d *Directory) email(addr string) (string, bool) {
	if d == nil {
		return "", false
	}
	id, ok := d.emails[strings.ToLower(addr)]
	return id, ok
}

// Split separates a format prefix from the text: "/md" or "/code" followed
// by exactly one space, tab, "\n" or "\r\n" (case-sensitive). Without a
// prefix the whole content is Plain text.
func Split(content string) (format, body string) {
	for _, p := range [...]struct{ prefix, format string }{
		{"/md", carillon.FormatMarkdown},
		{"/code", carillon.FormatCode},
	} {
		rest, ok := strings.CutPrefix(content, p.prefix)
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(rest, "\r\n"):
			return p.format, rest[2:]
		case rest != "" && (rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n'):
			return p.format, rest[1:]
		}
	}
	return carillon.FormatPlain, content
}

// IsBlank reports whether content has no text once a format prefix is
// removed.
func IsBlank(content string) bool {
	_, body := Split(content)
	return strings.TrimSpace(body) == ""
}

// Render renders content for a room whose members dir knows.
//
// Plain and Code output is built from escaped text and fixed markup only,
// so it is safe by construction (property tests check it); Markdown output,
// which comes from a full parser, also passes the allowlist sanitizer.
func Render(content string, dir *Directory) Result {
	content = strings.ToValidUTF8(content, "\uFFFD")
	format, body := Split(content)
	var m mentionSet
	var out string
	switch format {
	case carillon.FormatCode:
		var b strings.Builder
		b.Grow(len(body) + 24)
		b.WriteString("<pre><code>")
		escapeTo(&b, strings.ReplaceAll(body, "\r\n", "\n"))
		b.WriteString("</code></pre>")
		out = b.String()
	case carillon.FormatMarkdown:
		out = renderMarkdown(body, dir, &m)
	default:
		out = renderPlain(body, dir, &m)
	}
	return Result{Format: format, HTML: out, Mentions: m.result()}
}

// mentionSet collects the mentions of one message.
type mentionSet struct {
	all, present bool
	ids          []string
}

func (m *mentionSet) add(id string) {
	for _, x := range m.ids {
		if x == id {
			return
		}
	}
	m.ids = append(m.ids, id)
}

func (m *mentionSet) result() carillon.Mentions {
	ids := m.ids
	if ids == nil {
		ids = []string{}
	}
	return carillon.Mentions{All: m.all, Present: m.present, MemberIDs: ids}
}
