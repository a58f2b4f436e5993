// Package render turns a message's Content into its Format, sanitized Html
// and the Mentions it carries (SPEC §2). Render is a pure function: same
// input, same output, no I/O.
package render

import (
	"html"
	"strings"

	"github.com/carillon-chat/carillon"
)

// Result is a rendered message.
type Result struct {
	Format   string
	HTML     string
	Mentions carillon.Mentions
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

// Render renders content.
//
// The HTML of every format is built from escaped text only, so it is safe by
// construction: nothing of the input can become markup.
func Render(content string) Result {
	format, body := Split(content)
	r := Result{Format: format, Mentions: carillon.Mentions{MemberIDs: []string{}}}
	switch format {
	case carillon.FormatCode:
		r.HTML = "<pre><code>" + html.EscapeString(body) + "</code></pre>"
	default:
		r.HTML = plainHTML(body)
		r.Mentions.All, r.Mentions.Present = Broadcasts(format, body)
	}
	return r
}

// plainHTML escapes text and keeps its line breaks.
func plainHTML(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	return strings.ReplaceAll(html.EscapeString(text), "\n", "<br>")
}
