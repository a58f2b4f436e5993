package render

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// markdown is CommonMark with GitHub's tables, strikethrough, task lists and
// autolinks (http, https and e-mail only; a bare "www." is not linked), plus
// Carillon's mentions and emoji as inline syntax, and renderers that show
// raw HTML as text and let only safe link and image URLs through.
var markdown = goldmark.New(
	goldmark.WithExtensions(
		extension.NewTable(extension.WithTableCellAlignMethod(extension.TableCellAlignAttribute)),
		extension.Strikethrough,
		extension.TaskList,
		extension.NewLinkify(
			extension.WithLinkifyAllowedProtocols([]string{"http:", "https:"}),
			extension.WithLinkifyWWWRegexp(regexp.MustCompile(`[^\s\S]`)), // matches nothing
		),
	),
	goldmark.WithParserOptions(
		parser.WithInlineParsers(
			util.Prioritized(mentionParser{}, 50),
			util.Prioritized(emojiParser{}, 50),
		),
		parser.WithASTTransformers(util.Prioritized(textJoiner{}, 100)),
	),
	goldmark.WithRendererOptions(
		html.WithHardWraps(),
		renderer.WithNodeRenderers(util.Prioritized(nodeRenderer{}, 10)),
	),
)

var directoryKey = parser.NewContextKey()

// renderMarkdown renders Markdown and passes the result through the
// sanitizer. Input built to make the parser slow (thousands of nested
// brackets, quotes or delimiters, which no real message has) is rendered as
// Plain text instead, so that rendering cost stays linear.
func renderMarkdown(body string, dir *Directory, m *mentionSet) string {
	if pathological(body) {
		return "<p>" + renderPlain(body, dir, m) + "</p>"
	}
	src := []byte(body)
	pc := parser.NewContext()
	pc.Set(directoryKey, dir)
	doc := markdown.Parser().Parse(text.NewReader(src), parser.WithContext(pc))
	ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if mn, ok := n.(*mentionNode); ok && entering {
			m.note(mn.id, mn.broadcast)
		}
		return ast.WalkContinue, nil
	})
	var buf bytes.Buffer
	if err := markdown.Renderer().Render(&buf, src, doc); err != nil {
		// Rendering writes to memory and cannot fail; if it ever did,
		// the escaped text is a safe answer.
		var b strings.Builder
		escapeTo(&b, body)
		return b.String()
	}
	return sanitize(buf.String())
}

var (
	kindMention = ast.NewNodeKind("Mention")
	kindEmoji   = ast.NewNodeKind("Emoji")
)

type mentionNode struct {
	ast.BaseInline
	id, broadcast, text string
}

func (n *mentionNode) Kind() ast.NodeKind            { return kindMention }
func (n *mentionNode) Dump(source []byte, level int) { ast.DumpHelper(n, source, level, nil, nil) }

type emojiNode struct {
	ast.BaseInline
	emoji string
}

func (n *emojiNode) Kind() ast.NodeKind            { return kindEmoji }
func (n *emojiNode) Dump(source []byte, level int) { ast.DumpHelper(n, source, level, nil, nil) }

// precedingByte returns the character before the reader's position when it
// is ASCII, else 0 (which continues no word).
func continuesWord(block text.Reader) bool {
	r := block.PrecendingCharacter()
	return r < 0x80 && r > 0 && isWordByte(byte(r))
}

// Inline matches are short; the parsers look at no more of the line than
// the longest possible match, which keeps long lines linear.
const (
	maxMentionLen   = 1 + 64 + 1 + 255
	maxShortcodeLen = 1 + 64 + 1 + 1
)

func window(line []byte, n int) string {
	if len(line) > n {
		line = line[:n]
	}
	return string(line)
}

type mentionParser struct{}

func (mentionParser) Trigger() []byte { return []byte{'@'} }

func (mentionParser) Parse(_ ast.Node, block text.Reader, pc parser.Context) ast.Node {
	if continuesWord(block) {
		return nil
	}
	line, _ := block.PeekLine()
	dir, _ := pc.Get(directoryKey).(*Directory)
	s := window(line, maxMentionLen)
	end, id, broadcast := mention(s, 0, dir)
	if end == 0 {
		return nil
	}
	block.Advance(end)
	return &mentionNode{id: id, broadcast: broadcast, text: s[:end]}
}

type emojiParser struct{}

func (emojiParser) Trigger() []byte { return []byte{':', ';', '<'} }

func (emojiParser) Parse(_ ast.Node, block text.Reader, _ parser.Context) ast.Node {
	line, _ := block.PeekLine()
	s := window(line, maxShortcodeLen)
	end, emoji := shortcode(s, 0)
	if end == 0 {
		prev := block.PrecendingCharacter()
		if prev == '\n' {
			prev = 0
		}
		end, emoji = emoticon(s, 0, prev)
	}
	if end == 0 {
		return nil
	}
	block.Advance(end)
	return &emojiNode{emoji: emoji}
}

// textJoiner joins runs of text that an inline trigger split but no inline
// parser claimed: "&copy;" split before ";" would no longer be read as an
// entity reference.
type textJoiner struct{}

func (textJoiner) Transform(doc *ast.Document, _ text.Reader, _ parser.Context) {
	ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		t, ok := n.(*ast.Text)
		if !ok || t.IsRaw() || t.SoftLineBreak() || t.HardLineBreak() {
			return ast.WalkContinue, nil
		}
		for {
			next, ok := t.NextSibling().(*ast.Text)
			if !ok || next.IsRaw() || next.Segment.Start != t.Segment.Stop {
				return ast.WalkContinue, nil
			}
			t.Segment = t.Segment.WithStop(next.Segment.Stop)
			t.SetSoftLineBreak(next.SoftLineBreak())
			t.SetHardLineBreak(next.HardLineBreak())
			t.Parent().RemoveChild(t.Parent(), next)
			if t.SoftLineBreak() || t.HardLineBreak() {
				return ast.WalkContinue, nil
			}
		}
	})
}

// nodeRenderer renders Carillon's nodes and replaces goldmark's renderers
// for raw HTML, links and images.
type nodeRenderer struct{}

func (nodeRenderer) RegisterFuncs(reg renderer.NodeRendererFuncRegisterer) {
	reg.Register(kindMention, renderMentionNode)
	reg.Register(kindEmoji, renderEmojiNode)
	reg.Register(ast.KindRawHTML, renderRawHTML)
	reg.Register(ast.KindHTMLBlock, renderHTMLBlock)
	reg.Register(ast.KindLink, renderLink)
	reg.Register(ast.KindAutoLink, renderAutoLink)
	reg.Register(ast.KindImage, renderImage)
}

func writeString(w util.BufWriter, s string) { w.WriteString(s) }

func writeEscaped(w util.BufWriter, s string) {
	var b strings.Builder
	escapeTo(&b, s)
	w.WriteString(b.String())
}

func renderMentionNode(w util.BufWriter, _ []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
	if entering {
		mn := n.(*mentionNode)
		var b strings.Builder
		writeMention(&b, mn.id, mn.broadcast, mn.text)
		writeString(w, b.String())
	}
	return ast.WalkContinue, nil
}

func renderEmojiNode(w util.BufWriter, _ []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
	if entering {
		writeString(w, n.(*emojiNode).emoji)
	}
	return ast.WalkContinue, nil
}

// renderRawHTML shows inline HTML as the text it is.
func renderRawHTML(w util.BufWriter, source []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
	if entering {
		segs := n.(*ast.RawHTML).Segments
		for i := 0; i < segs.Len(); i++ {
			seg := segs.At(i)
			writeEscaped(w, string(seg.Value(source)))
		}
	}
	return ast.WalkSkipChildren, nil
}

// renderHTMLBlock shows an HTML block as a paragraph of its text.
func renderHTMLBlock(w util.BufWriter, source []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	hb := n.(*ast.HTMLBlock)
	var b strings.Builder
	lines := hb.Lines()
	for i := 0; i < lines.Len(); i++ {
		seg := lines.At(i)
		b.Write(seg.Value(source))
	}
	if hb.HasClosure() {
		b.Write(hb.ClosureLine.Value(source))
	}
	content := strings.TrimRight(b.String(), "\r\n")
	writeString(w, "<p>")
	for i, line := range strings.Split(content, "\n") {
		if i > 0 {
			writeString(w, "<br>\n")
		}
		writeEscaped(w, strings.TrimRight(line, "\r"))
	}
	writeString(w, "</p>\n")
	return ast.WalkSkipChildren, nil
}

// safeURL reports whether a link or image destination may be used.
func safeURL(dest string, schemes ...string) bool {
	lower := strings.ToLower(strings.TrimSpace(dest))
	for _, s := range schemes {
		if strings.HasPrefix(lower, s) {
			return true
		}
	}
	return false
}

func writeHref(w util.BufWriter, dest []byte) {
	writeString(w, `<a href="`)
	writeEscaped(w, string(util.URLEscape(dest, true)))
	writeString(w, `"`)
}

func renderLink(w util.BufWriter, _ []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
	link := n.(*ast.Link)
	if !safeURL(string(link.Destination), "http://", "https://", "mailto:") {
		return ast.WalkContinue, nil // the link text only
	}
	if entering {
		writeHref(w, link.Destination)
		if len(link.Title) > 0 {
			writeString(w, ` title="`)
			writeEscaped(w, string(link.Title))
			writeString(w, `"`)
		}
		writeString(w, linkAttrs+">")
	} else {
		writeString(w, "</a>")
	}
	return ast.WalkContinue, nil
}

func renderAutoLink(w util.BufWriter, source []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	al := n.(*ast.AutoLink)
	label := string(al.Label(source))
	dest := string(al.URL(source))
	if al.AutoLinkType == ast.AutoLinkEmail && !strings.HasPrefix(strings.ToLower(dest), "mailto:") {
		dest = "mailto:" + dest
	}
	if !safeURL(dest, "http://", "https://", "mailto:") {
		writeEscaped(w, label)
		return ast.WalkSkipChildren, nil
	}
	writeHref(w, []byte(dest))
	writeString(w, linkAttrs+">")
	writeEscaped(w, label)
	writeString(w, "</a>")
	return ast.WalkSkipChildren, nil
}

func renderImage(w util.BufWriter, source []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	img := n.(*ast.Image)
	alt := plainText(img, source)
	if !safeURL(string(img.Destination), "http://", "https://") {
		writeEscaped(w, alt)
		return ast.WalkSkipChildren, nil
	}
	writeString(w, `<img src="`)
	writeEscaped(w, string(util.URLEscape(img.Destination, true)))
	writeString(w, `" alt="`)
	writeEscaped(w, alt)
	writeString(w, `"`)
	if len(img.Title) > 0 {
		writeString(w, ` title="`)
		writeEscaped(w, string(img.Title))
		writeString(w, `"`)
	}
	writeString(w, ` referrerpolicy="no-referrer" loading="lazy">`)
	return ast.WalkSkipChildren, nil
}

// plainText is the text of a node's descendants (an image's alt text).
func plainText(n ast.Node, source []byte) string {
	var b strings.Builder
	ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch c := c.(type) {
		case *ast.Text:
			b.Write(c.Segment.Value(source))
		case *ast.String:
			b.Write(c.Value)
		case *mentionNode:
			b.WriteString(c.text)
		case *emojiNode:
			b.WriteString(c.emoji)
		}
		return ast.WalkContinue, nil
	})
	return b.String()
}

// Limits on the constructs whose parsing cost grows faster than linearly in
// goldmark; real messages stay far below them.
const (
	maxOpenBrackets   = 256
	maxDelimiters     = 1024
	maxAngleBrackets  = 512
	maxNestingPerLine = 32
)

// pathological reports whether Markdown input exceeds those limits.
func pathological(body string) bool {
	var brackets, delimiters, angles, depth int
	lineStart := true
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch c {
		case '[':
			brackets++
		case '*', '_', '~', '`':
			delimiters++
		case '<':
			angles++
		case '\n':
			lineStart, depth = true, 0
			continue
		}
		if lineStart {
			switch c {
			case '>', '-', '+', '*', ' ', '\t':
				if c != ' ' && c != '\t' {
					if depth++; depth > maxNestingPerLine {
						return true
					}
				}
				continue
			}
			lineStart = false
		}
	}
	return brackets > maxOpenBrackets || delimiters > maxDelimiters || angles > maxAngleBrackets
}
