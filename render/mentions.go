package render

import (
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/text"

	"github.com/carillon-chat/carillon"
)

var markdown = goldmark.New(goldmark.WithExtensions(extension.GFM))

// Broadcasts reports whether a message body of the given format carries an
// @All or @Present mention. Code has none; in Markdown, code spans, code
// blocks, raw HTML and link destinations carry none.
func Broadcasts(format, body string) (all, present bool) {
	switch format {
	case carillon.FormatCode:
		return false, false
	case carillon.FormatMarkdown:
		src := []byte(body)
		doc := markdown.Parser().Parse(text.NewReader(src))
		ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
			if !entering {
				return ast.WalkContinue, nil
			}
			switch n := n.(type) {
			case *ast.CodeSpan, *ast.CodeBlock, *ast.FencedCodeBlock, *ast.HTMLBlock, *ast.RawHTML, *ast.AutoLink:
				return ast.WalkSkipChildren, nil
			case *ast.Text:
				a, p := scanBroadcasts(string(n.Segment.Value(src)))
				all, present = all || a, present || p
			case *ast.String:
				a, p := scanBroadcasts(string(n.Value))
				all, present = all || a, present || p
			}
			return ast.WalkContinue, nil
		})
		return all, present
	default:
		return scanBroadcasts(body)
	}
}

// scanBroadcasts finds @All and @Present (case-insensitive) in plain text.
// A mention starts at "@" not preceded by a word or e-mail character and
// not inside a URL; "@all@example.com" is an e-mail mention, not @All.
func scanBroadcasts(s string) (all, present bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 'h' && (strings.HasPrefix(s[i:], "http://") || strings.HasPrefix(s[i:], "https://")) && (i == 0 || !isWordByte(s[i-1])) {
			for i < len(s) && !isSpace(s[i]) {
				i++
			}
			continue
		}
		if c != '@' || (i > 0 && isEmailByte(s[i-1])) {
			continue
		}
		j := i + 1
		for j < len(s) && isAliasByte(s[j]) {
			j++
		}
		if j < len(s) && s[j] == '@' {
			i = j
			continue
		}
		name := strings.TrimRight(s[i+1:j], ".-")
		switch {
		case strings.EqualFold(name, "all"):
			all = true
		case strings.EqualFold(name, "present"):
			present = true
		}
		i = j - 1
	}
	return all, present
}

func isAliasByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func isEmailByte(c byte) bool { return isAliasByte(c) || c == '+' || c == '%' }

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
