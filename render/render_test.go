package render

// Unit tests of the rendering helpers the write path depends on (SPEC §2):
// the format prefix (Split, IsBlank), the @All / @Present scan that the
// 50-member rule uses (Broadcasts), and the safety of Render's Html for
// hostile input. Assertions on Html are about safety and the SPEC's few
// fixed shapes (Code in <pre><code>, Plain line breaks as <br>), not about
// exact markup, so that a fuller renderer can replace the current one.

import (
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/carillon-chat/carillon"
)

func TestSplitFormats(t *testing.T) {
	const (
		plain = carillon.FormatPlain
		md    = carillon.FormatMarkdown
		code  = carillon.FormatCode
	)
	for _, tc := range []struct {
		content, format, body string
	}{
		// Markdown: "/md" and exactly one separator, which is removed.
		{"/md hello", md, "hello"},
		{"/md\thello", md, "hello"},
		{"/md\nhello", md, "hello"},
		{"/md\r\nhello", md, "hello"},
		{"/md  two spaces", md, " two spaces"},
		{"/md \nx", md, "\nx"},
		{"/md\n\nx", md, "\nx"},
		{"/md\r\n\r\nx", md, "\r\nx"},
		{"/md\t\tx", md, "\tx"},
		{"/md ", md, ""},
		{"/md\n", md, ""},
		{"/md\r\n", md, ""},
		{"/md /code x", md, "/code x"},
		// Code, the same way.
		{"/code x := 1", code, "x := 1"},
		{"/code\tx", code, "x"},
		{"/code\nx\ny", code, "x\ny"},
		{"/code\r\nx", code, "x"},
		{"/code  indented", code, " indented"},
		{"/code ", code, ""},
		{"/code /md x", code, "/md x"},
		// Everything else is Plain, whole.
		{"", plain, ""},
		{"hello", plain, "hello"},
		{"/md", plain, "/md"},
		{"/code", plain, "/code"},
		{"/mdx", plain, "/mdx"},
		{"/mdx hello", plain, "/mdx hello"},
		{"/md-x", plain, "/md-x"},
		{"/codex y", plain, "/codex y"},
		{"/MD hello", plain, "/MD hello"},
		{"/Md hello", plain, "/Md hello"},
		{"/CODE x", plain, "/CODE x"},
		{"/Code x", plain, "/Code x"},
		{" /md hello", plain, " /md hello"},
		{"\n/md hello", plain, "\n/md hello"},
		{"md hello", plain, "md hello"},
		{"//md hello", plain, "//md hello"},
		{"/markdown x", plain, "/markdown x"},
		{"/md\rx", plain, "/md\rx"},             // a lone CR is not a separator
		{"/md\u00a0x", plain, "/md\u00a0x"},     // nor is a no-break space
		{"/md\vx", plain, "/md\vx"},             // nor a vertical tab
		{"/md\fx", plain, "/md\fx"},             // nor a form feed
		{"/code\u3000x", plain, "/code\u3000x"}, // nor an ideographic space
		{"/md/code x", plain, "/md/code x"},
	} {
		format, body := Split(tc.content)
		if format != tc.format || body != tc.body {
			t.Errorf("Split(%q) = %q, %q; want %q, %q", tc.content, format, body, tc.format, tc.body)
		}
		// Render agrees with Split.
		if got := Render(tc.content, nil).Format; got != tc.format {
			t.Errorf("Render(%q).Format = %q, want %q", tc.content, got, tc.format)
		}
	}
}

func TestIsBlankContent(t *testing.T) {
	for _, tc := range []struct {
		content string
		blank   bool
	}{
		{"", true},
		{" ", true},
		{"   ", true},
		{"\t\n\r\n ", true},
		{"/md ", true},
		{"/md\n", true},
		{"/md\r\n", true},
		{"/md \n \t ", true},
		{"/md\t\t", true},
		{"/code ", true},
		{"/code \n  ", true},
		{"/code\r\n\r\n", true},
		{"/code\t ", true},

		{"x", false},
		{" x ", false},
		{".", false},
		{"/md", false},   // no separator: the text "/md"
		{"/code", false}, // likewise
		{"/mdx", false},
		{"/md x", false},
		{"/code  .", false},
		{"/md /code ", false}, // Markdown whose text is "/code "
		{"/code /md ", false},
		{" /md ", false}, // not a prefix: plain text "/md"
		{"/MD ", false},
		{"/md\r", false},
		{"0", false},
		{"🔔", false},
	} {
		if got := IsBlank(tc.content); got != tc.blank {
			t.Errorf("IsBlank(%q) = %v, want %v", tc.content, got, tc.blank)
		}
	}
}

func TestBroadcasts(t *testing.T) {
	const (
		plain = carillon.FormatPlain
		md    = carillon.FormatMarkdown
		code  = carillon.FormatCode
	)
	for _, tc := range []struct {
		format, body string
		all, present bool
	}{
		// Plain text: case-insensitive, followed by the end, white space
		// or punctuation.
		{plain, "@All", true, false},
		{plain, "@all deploy done", true, false},
		{plain, "@ALL", true, false},
		{plain, "@aLl!", true, false},
		{plain, "hey @All, look", true, false},
		{plain, "(@all)", true, false},
		{plain, "@all.", true, false},
		{plain, "@all?", true, false},
		{plain, "line one\n@all", true, false},
		{plain, "@Present", false, true},
		{plain, "@present.", false, true},
		{plain, "@PRESENT: standup", false, true},
		{plain, "@all and @present", true, true},
		{plain, "@present then @ALL", true, true},
		// Not broadcasts.
		{plain, "", false, false},
		{plain, "all present", false, false},
		{plain, "@", false, false},
		{plain, "@alligator", false, false},
		{plain, "@all_hands", false, false},
		{plain, "@all-hands", false, false},
		{plain, "@all.team", false, false},
		{plain, "@presently", false, false},
		{plain, "@al", false, false},
		{plain, "a@all.com", false, false},
		{plain, "mail a@all.com please", false, false},
		{plain, "x@all", false, false},
		{plain, "first.last@present.example", false, false},
		{plain, "@all@example.com", false, false},
		{plain, "@present@example.com", false, false},
		{plain, "https://example.com/@all", false, false},
		{plain, "see https://example.com/users/@present/x", false, false},
		{plain, "http://example.com/?to=@all", false, false},
		{plain, "https://example.com/@all and @present", false, true},

		// Code format carries no mentions at all.
		{code, "@All", false, false},
		{code, "@present please", false, false},

		// Markdown: like plain text, outside code spans and blocks.
		{md, "@All", true, false},
		{md, "**@All** deploy", true, false},
		{md, "_@present_", false, true},
		{md, "- item\n- @all", true, false},
		{md, "> @Present quoted", false, true},
		{md, "`x` @all", true, false},
		{md, "`@All`", false, false},
		{md, "use `@All` to reach everyone", false, false},
		{md, "``@Present``", false, false},
		{md, "```\n@All\n```", false, false},
		{md, "~~~\n@present\n~~~", false, false},
		{md, "```text\n@All\n```\nafter", false, false},
		{md, "intro\n\n    @All in an indented code block", false, false},
		{md, "a@all.com", false, false},
		{md, "@all@example.com", false, false},
		{md, "https://example.com/@all", false, false},
		{md, "[docs](https://example.com/@all)", false, false},
		{md, "<https://example.com/@present>", false, false},
		{md, "```\n@All\n```\n@present", false, true},
	} {
		all, present := broadcasts(tc.format, tc.body)
		if all != tc.all || present != tc.present {
			t.Errorf("Broadcasts(%s, %q) = %v, %v; want %v, %v", tc.format, tc.body, all, present, tc.all, tc.present)
		}
		// Render reports the same through Mentions, prefix and all.
		content := tc.body
		switch tc.format {
		case md:
			content = "/md " + content
		case code:
			content = "/code " + content
		}
		m := Render(content, nil).Mentions
		if m.All != tc.all || m.Present != tc.present {
			t.Errorf("Render(%q).Mentions = %+v; want All %v, Present %v", content, m, tc.all, tc.present)
		}
	}
}

func TestRenderShapes(t *testing.T) {
	t.Run("code", func(t *testing.T) {
		r := Render("/code if a < b && c > d {\n\treturn \"x\"\n}", nil)
		want := "<pre><code>if a &lt; b &amp;&amp; c &gt; d {\n\treturn &#34;x&#34;\n}</code></pre>"
		if r.Format != carillon.FormatCode || html.UnescapeString(r.HTML) != html.UnescapeString(want) ||
			!strings.HasPrefix(r.HTML, "<pre><code>") || !strings.HasSuffix(r.HTML, "</code></pre>") {
			t.Fatalf("Html %q, want %q", r.HTML, want)
		}
	})
	t.Run("plain line breaks", func(t *testing.T) {
		r := Render("one\ntwo\r\nthree", nil)
		if strings.Count(r.HTML, "<br") != 2 || strings.Contains(r.HTML, "\r") {
			t.Fatalf("Html %q: want the two line breaks as <br>", r.HTML)
		}
	})
	t.Run("mentions never nil", func(t *testing.T) {
		for _, c := range []string{"x", "/md x", "/code x", "@All"} {
			if Render(c, nil).Mentions.MemberIDs == nil {
				t.Fatalf("Render(%q).Mentions.MemberIDs is nil, want []", c)
			}
		}
	})
	t.Run("pure", func(t *testing.T) {
		for _, c := range []string{"x", "/md **x** @all", "/code <b>"} {
			a, b := Render(c, nil), Render(c, nil)
			if a.HTML != b.HTML || a.Format != b.Format || a.Mentions.All != b.Mentions.All || a.Mentions.Present != b.Mentions.Present {
				t.Fatalf("Render(%q) differs between calls", c)
			}
		}
	})
}

// hostile are inputs that try to get markup, scripts or dangerous URLs
// through the renderer.
var hostile = []string{
	`<script>alert(1)</script>`,
	`<SCRIPT SRC=//evil.example/x.js></SCRIPT>`,
	`<img src=x onerror=alert(1)>`,
	`<img src="javascript:alert(1)">`,
	`<svg onload=alert(1)>`,
	`<iframe src="https://evil.example"></iframe>`,
	`<a href="javascript:alert(1)">click</a>`,
	`<a href="data:text/html,<script>alert(1)</script>">x</a>`,
	`<div style="background:url(javascript:alert(1))">x</div>`,
	`<form action=https://evil.example><input name=x></form>`,
	`<body onload=alert(1)>`,
	`<object data=x></object><embed src=x>`,
	`<style>*{display:none}</style>`,
	`<math><mi xlink:href="javascript:alert(1)">x</mi></math>`,
	`"><script>alert(1)</script>`,
	`'><img src=x onerror=alert(1)>`,
	`<<script>script>alert(1)<</script>/script>`,
	`<scr<script>ipt>alert(1)</script>`,
	`<!--<script>alert(1)//--></script>`,
	`<![CDATA[<script>alert(1)</script>]]>`,
	"<img\nsrc=x\nonerror=alert(1)>",
	"<img\tsrc=x onerror\t=\talert(1)>",
	`&lt;script&gt;alert(1)&lt;/script&gt;`,
	`&#60;script&#62;alert(1)&#60;/script&#62;`,
	`[click](javascript:alert(1))`,
	`[click](JaVaScRiPt:alert(1))`,
	`[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)`,
	`[click](vbscript:msgbox(1))`,
	`[x](https://example.com "title\" onmouseover=\"alert(1)")`,
	`![x](javascript:alert(1))`,
	`![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)`,
	`<javascript:alert(1)>`,
	`<https://example.com/" onmouseover="alert(1)>`,
	`https://example.com/"><script>alert(1)</script>`,
	"```html\n<script>alert(1)</script>\n```",
	"`<img src=x onerror=alert(1)>`",
	"| a | b |\n|---|---|\n| <script>alert(1)</script> | <img src=x onerror=alert(1)> |",
	"- [ ] <b onclick=alert(1)>task</b>",
	"@All <script>alert(1)</script> :) :+1:",
	"\x00<script>alert(1)</script>",
	"<scr\x00ipt>alert(1)</script>",
}

// checkSafeHTML fails when out could run script or load active content in
// a browser (see unsafe). noImages also refuses <img>, which none of the
// hostile inputs may produce (their images are not http(s)).
func checkSafeHTML(t *testing.T, in, out string, noImages bool) {
	t.Helper()
	lower := strings.ToLower(out)
	if noImages && strings.Contains(lower, "<img") {
		t.Errorf("Render(%q).Html = %q contains <img", in, out)
	}
	for _, bad := range []string{"<script", "<iframe", "<svg", "<style", "<object", "<embed",
		"<form", "<math", "<body", "<!--", "<![cdata["} {
		if strings.Contains(lower, bad) {
			t.Errorf("Render(%q).Html = %q contains %q", in, out, bad)
		}
	}
	if bad := unsafe(out); bad != "" {
		t.Errorf("Render(%q).Html = %q: %s", in, out, bad)
	}
}

func TestRenderHostileInput(t *testing.T) {
	for _, h := range hostile {
		for _, prefix := range []string{"", "/md ", "/code ", "/md\n", "/code\r\n"} {
			in := prefix + h
			r := Render(in, nil)
			checkSafeHTML(t, in, r.HTML, true)
		}
	}
}

// TestRenderKeepsText: Plain and Code show the text as written, escaped
// (a NUL, which HTML cannot carry, as U+FFFD).
func TestRenderKeepsText(t *testing.T) {
	for _, h := range append(hostile, "a & b < c > d \"e\" 'f'", "tab\there", "ünïcödé 🔔") {
		want := strings.ReplaceAll(h, "\x00", "\uFFFD")
		p := Render(h, nil)
		if p.Format != carillon.FormatPlain {
			continue
		}
		text := html.UnescapeString(regexp.MustCompile(`<br\s*/?>`).ReplaceAllString(p.HTML, "\n"))
		// Tags a fuller renderer adds (links, emoji, mention spans) are
		// not text; the current one adds none of them to these inputs.
		if !strings.Contains(h, ":)") && !strings.Contains(h, "@All") && !strings.Contains(h, "https://") && text != want {
			t.Errorf("Plain Html %q shows %q, want %q", p.HTML, text, want)
		}
		c := Render("/code "+h, nil)
		inner := strings.TrimSuffix(strings.TrimPrefix(c.HTML, "<pre><code>"), "</code></pre>")
		if html.UnescapeString(inner) != want {
			t.Errorf("Code Html %q shows %q, want %q", c.HTML, html.UnescapeString(inner), want)
		}
	}
}

// FuzzRender checks the safety of Html and the agreement of Render with
// Split on any input (the seeds run with go test; go test -fuzz explores).
func FuzzRenderFormat(f *testing.F) {
	for _, h := range hostile {
		f.Add(h)
		f.Add("/md " + h)
	}
	f.Add("/code <x>")
	f.Add("@All")
	f.Fuzz(func(t *testing.T, s string) {
		r := Render(s, nil)
		if format, _ := Split(s); r.Format != format {
			t.Fatalf("Render(%q).Format = %q, Split says %q", s, r.Format, format)
		}
		if r.Format == carillon.FormatCode && (r.Mentions.All || r.Mentions.Present) {
			t.Fatalf("Code carries a broadcast: %q", s)
		}
		if IsBlank(s) != (strings.TrimSpace(func() string { _, b := Split(s); return b }()) == "") {
			t.Fatalf("IsBlank(%q) disagrees with Split", s)
		}
		checkSafeHTML(t, s, r.HTML, false)
	})
}

// broadcasts reports the @All and @Present mentions of a body of a format.
func broadcasts(format, body string) (all, present bool) {
	prefix := map[string]string{"Markdown": "/md ", "Code": "/code "}[format]
	m := Render(prefix+body, nil).Mentions
	return m.All, m.Present
}
