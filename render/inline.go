package render

import (
	"strings"

	"github.com/yuin/goldmark-emoji/definition"
)

// The inline rules shared by Plain and Markdown: links, e-mail addresses,
// mentions, emoji shortcodes and emoticons. Each matcher looks at text[i:]
// and returns where its match ends (0 when there is none).

var gemoji = definition.Github()

// shortcode matches ":name:" from the GitHub emoji set.
func shortcode(text string, i int) (end int, emoji string) {
	if text[i] != ':' {
		return 0, ""
	}
	j := i + 1
	for j < len(text) && j-i <= 64 && isShortcodeByte(text[j]) {
		j++
	}
	if j == i+1 || j >= len(text) || text[j] != ':' {
		return 0, ""
	}
	e, ok := gemoji.Get(text[i+1 : j])
	if !ok || !e.IsUnicode() {
		return 0, ""
	}
	return j + 1, string(e.Unicode)
}

func isShortcodeByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '+' || c == '-'
}

// emoticons, longest first where one is a prefix of another.
var emoticons = []struct{ text, emoji string }{
	{":-)", "🙂"}, {":)", "🙂"},
	{":-(", "🙁"}, {":'(", "😢"}, {":(", "🙁"},
	{":-D", "😄"}, {":D", "😄"},
	{";-)", "😉"}, {";)", "😉"},
	{":-P", "😛"}, {":-p", "😛"}, {":P", "😛"}, {":p", "😛"},
	{":-O", "😮"}, {":-o", "😮"}, {":O", "😮"}, {":o", "😮"},
	{":}", "😊"}, {":|", "😐"},
	{"</3", "💔"}, {"<3", "❤️"},
}

// emoticon matches an emoticon standing alone: after the start or white
// space (prev), and before the end, white space or one of ".,!?".
func emoticon(text string, i int, prev rune) (end int, emoji string) {
	if !(prev == 0 || isSpaceRune(prev)) {
		return 0, ""
	}
	for _, e := range emoticons {
		if strings.HasPrefix(text[i:], e.text) {
			j := i + len(e.text)
			if j == len(text) || isSpace(text[j]) || strings.IndexByte(".,!?", text[j]) >= 0 {
				return j, e.emoji
			}
		}
	}
	return 0, ""
}

// mention matches @All, @Present, @alias or @alias@domain at text[i] ==
// '@'. The caller checks that the '@' does not continue a word.
func mention(text string, i int, dir *Directory) (end int, id, broadcast string) {
	// @local@domain: an e-mail mention, if a member has that address.
	k := i + 1
	for k < len(text) && isEmailLocalByte(text[k]) {
		k++
	}
	if k > i+1 && k < len(text) && text[k] == '@' {
		e := k + 1
		for e < len(text) && isDomainByte(text[e]) {
			e++
		}
		for e > k+1 && (text[e-1] == '.' || text[e-1] == '-') {
			e--
		}
		if e > k+1 {
			if id, ok := dir.email(text[i+1 : e]); ok {
				return e, id, ""
			}
		}
		return 0, "", ""
	}
	j := i + 1
	for j < len(text) && isAliasByte(text[j]) {
		j++
	}
	run := text[i+1 : j]
	if run == "" {
		return 0, "", ""
	}
	// The longest alias that ends at the end of the run or before a
	// separator wins, so "@mary.major." finds mary.major and "@bob_" bob.
	for n := len(run); n > 0; n-- {
		if n < len(run) && !isSeparator(run[n]) {
			continue
		}
		if n-1 < 64 {
			if id, ok := dir.alias(run[:n]); ok {
				return i + 1 + n, id, ""
			}
		}
	}
	trimmed := strings.TrimRight(run, "._-")
	switch {
	case strings.EqualFold(trimmed, "all"):
		return i + 1 + len(trimmed), "", "all"
	case strings.EqualFold(trimmed, "present"):
		return i + 1 + len(trimmed), "", "present"
	}
	return 0, "", ""
}

// url matches an http:// or https:// URL, ending where GitHub's autolinks
// end: at white space or '<', without trailing punctuation, unbalanced
// closing parentheses or an entity-like "&name;".
func url(text string, i int) int {
	rest := text[i:]
	var n int
	switch {
	case strings.HasPrefix(rest, "https://"):
		n = len("https://")
	case strings.HasPrefix(rest, "http://"):
		n = len("http://")
	default:
		return 0
	}
	j := i + n
	host := j
	for j < len(text) && isDomainByte(text[j]) || j < len(text) && text[j] == '_' {
		j++
	}
	if j == host || !isAlnum(text[host]) {
		return 0
	}
	for j < len(text) && !isSpace(text[j]) && text[j] != '<' && text[j] != '>' && text[j] != '"' {
		j++
	}
	return i + trimURLEnd(text[i:j])
}

// trimURLEnd drops what GitHub's autolink rules leave out of a link's end.
func trimURLEnd(u string) int {
	opening := strings.Count(u, "(")
	closing := strings.Count(u, ")")
	end := len(u)
	for end > 1 {
		switch c := u[end-1]; c {
		case '?', '!', '.', ',', ':', '*', '_', '~', '\'':
			end--
			continue
		case ')':
			if closing <= opening {
				return end
			}
			closing--
			end--
			continue
		case ';':
			j := end - 2
			for j > 0 && isAlnum(u[j]) {
				j--
			}
			if j == end-2 || u[j] != '&' {
				return end
			}
			end = j
			continue
		}
		return end
	}
	return end
}

// email matches an e-mail address at a word start: local@domain.tld.
func email(text string, i int) int {
	k := i
	for k < len(text) && isEmailLocalByte(text[k]) {
		k++
	}
	if k == i || k >= len(text) || text[k] != '@' {
		return 0
	}
	e := k + 1
	dots := 0
	for e < len(text) && (isDomainByte(text[e]) || text[e] == '_') {
		if text[e] == '.' {
			dots++
		}
		e++
	}
	for e > k+1 && text[e-1] == '.' {
		e--
		dots--
	}
	if e == k+1 || dots < 1 || text[e-1] == '-' || text[e-1] == '_' {
		return 0
	}
	if e < len(text) && (text[e] == '-' || text[e] == '_') {
		return 0
	}
	return e
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isAliasByte(c byte) bool { return isAlnum(c) || c == '.' || c == '_' || c == '-' }

func isSeparator(c byte) bool { return c == '.' || c == '_' || c == '-' }

func isEmailLocalByte(c byte) bool { return isAliasByte(c) || c == '+' || c == '%' }

func isDomainByte(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }

// isWordByte tells whether c continues a word, so that "@" or a URL after
// it is not a mention or link of its own ("mary@example.com", "xhttp://").
// An underscore does not: in Markdown it is emphasis ("_@all_").
func isWordByte(c byte) bool { return isAlnum(c) || c == '.' || c == '-' || c == '+' || c == '%' }

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isSpaceRune(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v' || r == 0xA0 || r == 0x3000
}
