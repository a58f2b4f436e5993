package render

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// xssCorpus is hostile Content, each tried as Plain and as Markdown.
var xssCorpus = []string{
	`<script>alert(1)</script>`,
	`<SCRIPT SRC=http://x/x.js></SCRIPT>`,
	`<scr<script>ipt>alert(1)</script>`,
	`<img src=x onerror=alert(1)>`,
	`<img src="x" onerror="alert(1)">`,
	`<IMG SRC="javascript:alert('XSS');">`,
	`<svg onload=alert(1)>`,
	`<svg><script>alert(1)</script></svg>`,
	`<svg/onload=alert(1)>`,
	`<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>`,
	`<iframe src="javascript:alert(1)"></iframe>`,
	`<iframe srcdoc="<script>alert(1)</script>">`,
	`<object data="data:text/html,<script>alert(1)</script>">`,
	`<embed src="javascript:alert(1)">`,
	`<form action="javascript:alert(1)"><input type=submit></form>`,
	`<a href="javascript:alert(1)">x</a>`,
	`<a href="jAvAsCrIpT:alert(1)">x</a>`,
	`<a href="&#106;avascript:alert(1)">x</a>`,
	`<a href="vbscript:msgbox(1)">x</a>`,
	`<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>`,
	`<div style="background:url(javascript:alert(1))">x</div>`,
	`<p style="color:red">x</p>`,
	`<body onload=alert(1)>`,
	`<details open ontoggle=alert(1)>`,
	`<input autofocus onfocus=alert(1)>`,
	`<marquee onstart=alert(1)>`,
	`<video><source onerror=alert(1)>`,
	`<base href="javascript:alert(1)//">`,
	`<meta http-equiv="refresh" content="0;url=javascript:alert(1)">`,
	`<link rel=stylesheet href=javascript:alert(1)>`,
	`"><script>alert(1)</script>`,
	`'><img src=x onerror=alert(1)>`,
	`<<script>alert(1);//<</script>`,
	`<img src=x onerror=alert(1)//`,
	`<a href="http://x" onclick="alert(1)">x</a>`,
	`[x](javascript:alert(1))`,
	`[x](JAVASCRIPT:alert(1))`,
	`[x]( javascript:alert(1) )`,
	`[x](&#106;avascript:alert(1))`,
	`[x](java&#x09;script:alert(1))`,
	`[x](vbscript:msgbox(1))`,
	`[x](data:text/html,<script>alert(1)</script>)`,
	`[x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)`,
	`![x](javascript:alert(1))`,
	`![x](data:image/png;base64,AAAA)`,
	`![x" onerror="alert(1)](http://x/a.png)`,
	`[x](http://x "a\" onmouseover=\"alert(1)")`,
	`<javascript:alert(1)>`,
	`<vbscript:msgbox(1)>`,
	`<data:text/html,<script>alert(1)</script>>`,
	"`<script>alert(1)</script>`",
	"```html\n<script>alert(1)</script>\n```",
	`<!-- <script>alert(1)</script> -->`,
	`<![CDATA[<script>alert(1)</script>]]>`,
	`&lt;script&gt;alert(1)&lt;/script&gt;`,
	`[a](http://x)<script>alert(1)</script>`,
	`http://x.com/<script>alert(1)</script>`,
	`http://x.com/"onmouseover="alert(1)`,
	`mary@example.com"><script>alert(1)</script>`,
	`@all<script>alert(1)</script>`,
	`:smile:<img src=x onerror=alert(1)>`,
	"<style>body{display:none}</style>",
	"<textarea><script>alert(1)</script></textarea>",
	"<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
}

// allowedTags are the only elements rendered HTML may contain.
var allowedTags = map[string]bool{
	"p": true, "br": true, "strong": true, "em": true, "del": true, "code": true, "pre": true, "blockquote": true,
	"ul": true, "ol": true, "li": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
	"hr": true, "table": true, "thead": true, "tbody": true, "tr": true, "th": true, "td": true,
	"a": true, "img": true, "span": true, "input": true,
}

// unsafe parses html as a browser's tokenizer would and returns what makes
// it unsafe, or "": an element outside the allowlist, an event handler or
// style attribute, a link or image URL that is not http(s) or mailto, or a
// form control other than a disabled checkbox.
func unsafe(fragment string) string {
	z := html.NewTokenizer(strings.NewReader(fragment))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if !allowedTags[tok.Data] {
				return "element " + tok.Data
			}
			for _, a := range tok.Attr {
				key := strings.ToLower(a.Key)
				val := strings.ToLower(strings.TrimSpace(a.Val))
				switch {
				case strings.HasPrefix(key, "on"):
					return "event handler " + key
				case key == "style":
					return "style attribute"
				case key == "href" && !(strings.HasPrefix(val, "http:") || strings.HasPrefix(val, "https:") || strings.HasPrefix(val, "mailto:")):
					return "href " + val
				case key == "src" && !(strings.HasPrefix(val, "http:") || strings.HasPrefix(val, "https:")):
					return "src " + val
				case tok.Data == "input" && key == "type" && val != "checkbox":
					return "input type " + val
				}
			}
		}
	}
}

func TestXSSCorpus(t *testing.T) {
	if len(xssCorpus) < 50 {
		t.Fatalf("the corpus has %d payloads; keep at least 50", len(xssCorpus))
	}
	for _, payload := range xssCorpus {
		for _, prefix := range []string{"", "/md ", "/code "} {
			r := Render(prefix+payload, testDirectory)
			if bad := unsafe(r.HTML); bad != "" {
				t.Errorf("%q rendered unsafe HTML (%s):\n%s", prefix+payload, bad, r.HTML)
			}
			if prefix == "/md " && sanitize(r.HTML) != r.HTML {
				t.Errorf("%q: Markdown output changes when sanitized again:\n%s\n%s", payload, r.HTML, sanitize(r.HTML))
			}
			if prefix != "/md " && strings.Contains(r.HTML, "<script") {
				t.Errorf("%q: %s", payload, r.HTML)
			}
		}
	}
}

// TestPlainAndCodeSafeByConstruction checks the property that makes the
// sanitizer unnecessary for Plain and Code: their output passes the
// allowlist unchanged.
func TestPlainAndCodeSafeByConstruction(t *testing.T) {
	inputs := append([]string{}, xssCorpus...)
	inputs = append(inputs, goldenInputs()...)
	for _, in := range inputs {
		for _, prefix := range []string{"", "/code "} {
			out := Render(prefix+in, testDirectory).HTML
			if got := sanitize(out); got != out {
				t.Errorf("%q: output is not a fixed point of the sanitizer:\n%s\n%s", prefix+in, out, got)
			}
		}
	}
}
