package render

import (
	"strings"
	"unicode/utf8"
)

// linkAttrs go on every link: a new tab, and nothing leaks to the target.
const linkAttrs = ` target="_blank" rel="noopener noreferrer nofollow"`

// escapeTo writes s with the HTML special characters escaped.
func escapeTo(b *strings.Builder, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case 0:
			esc = "\uFFFD"
		default:
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(esc)
		last = i + 1
	}
	b.WriteString(s[last:])
}

func writeLink(b *strings.Builder, href, text string) {
	b.WriteString(`<a href="`)
	escapeTo(b, href)
	b.WriteString(`"` + linkAttrs + `>`)
	escapeTo(b, text)
	b.WriteString("</a>")
}

func writeMention(b *strings.Builder, id, broadcast, text string) {
	if broadcast != "" {
		b.WriteString(`<span class="mention" data-mention="` + broadcast + `">`)
	} else {
		b.WriteString(`<span class="mention" data-member-id="`)
		escapeTo(b, id)
		b.WriteString(`">`)
	}
	escapeTo(b, text)
	b.WriteString("</span>")
}

func (m *mentionSet) note(id, broadcast string) {
	switch broadcast {
	case "all":
		m.all = true
	case "present":
		m.present = true
	default:
		m.add(id)
	}
}

// renderPlain renders Plain text: escaped, line breaks as <br>, with links,
// mentions and emoji. Its markup is fixed strings around escaped text.
func renderPlain(text string, dir *Directory, m *mentionSet) string {
	var b strings.Builder
	b.Grow(len(text) + len(text)/4)
	prev := rune(0) // the character before i; 0 at the start
	plainFrom := 0  // start of the text not yet written
	flush := func(i int) {
		escapeTo(&b, text[plainFrom:i])
	}
	for i := 0; i < len(text); {
		c := text[i]
		var end int
		switch {
		case c == '\n' || c == '\r':
			flush(i)
			b.WriteString("<br>")
			end = i + 1
			if c == '\r' && end < len(text) && text[end] == '\n' {
				end++
			}
		case c == 'h' && !(prev < utf8.RuneSelf && isWordByte(byte(prev))):
			if end = url(text, i); end > 0 {
				flush(i)
				writeLink(&b, text[i:end], text[i:end])
			}
		case c == '@' && !(prev < utf8.RuneSelf && isWordByte(byte(prev))):
			var id, broadcast string
			if end, id, broadcast = mention(text, i, dir); end > 0 {
				flush(i)
				writeMention(&b, id, broadcast, text[i:end])
				m.note(id, broadcast)
			}
		case c == ':' || c == ';' || c == '<':
			var emoji string
			if end, emoji = shortcode(text, i); end == 0 {
				end, emoji = emoticon(text, i, prev)
			}
			if end > 0 {
				flush(i)
				b.WriteString(emoji)
			}
		}
		if end == 0 && isEmailLocalByte(c) && !(prev < utf8.RuneSelf && isEmailLocalByte(byte(prev))) {
			if end = email(text, i); end > 0 {
				flush(i)
				writeLink(&b, "mailto:"+text[i:end], text[i:end])
			}
		}
		if end > 0 {
			i, plainFrom = end, end
			prev, _ = utf8.DecodeLastRuneInString(text[:end])
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		prev = r
		i += size
	}
	flush(len(text))
	return b.String()
}
