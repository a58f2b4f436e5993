package render

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// worstCases are 4096-byte inputs built to stress the parsers.
func worstCases() map[string]string {
	fill := func(unit string) string {
		return strings.Repeat(unit, 4096/len(unit)+1)[:4096-len("/md ")]
	}
	return map[string]string{
		"nested brackets": "/md " + fill("["),
		"nested links":    "/md " + fill("[a]("),
		"nested parens":   "/md " + fill("("),
		"nested lists":    "/md " + fill("- "),
		"nested quotes":   "/md " + fill(">"),
		"emphasis runs":   "/md " + fill("*a_"),
		"backtick runs":   "/md " + fill("`a``"),
		"entity runs":     "/md " + fill("&#"),
		"html starts":     "/md " + fill("<a "),
		"table pipes":     "/md |a|\n|-|\n" + fill("|"),
		"colons":          "/md " + fill(":"),
		"at signs":        "/md " + fill("@a"),
		"plain at signs":  fill("@a.") + "xxxx",
		"plain colons":    fill(":+") + "xxxx",
		"plain urls":      fill("http://a.b/(") + "xxxx",
		"plain emails":    fill("a.b@") + "xxxx",
		"plain emoticons": fill(":) ") + "xxxx",
		"plain long word": fill("a") + "xxxx",
		"invalid utf-8":   "/md " + fill("\xff\xfe"),
		"NUL bytes":       fill("\x00a") + "xxxx",
		"mixed":           "/md " + fill("*[`@:)<3 http://x.y/ a@b.c _"),
	}
}

func TestHostileInputsStaySafe(t *testing.T) {
	for name, in := range worstCases() {
		r := Render(in, testDirectory)
		if bad := unsafe(r.HTML); bad != "" {
			t.Errorf("%s: unsafe output (%s)", name, bad)
		}
		if !utf8.ValidString(r.HTML) {
			t.Errorf("%s: output is not valid UTF-8", name)
		}
		if strings.ContainsRune(r.HTML, 0) {
			t.Errorf("%s: output contains NUL", name)
		}
	}
}

func BenchmarkRenderWorstCase(b *testing.B) {
	for name, in := range worstCases() {
		b.Run(strings.ReplaceAll(name, " ", "_"), func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				Render(in, testDirectory)
			}
		})
	}
}

func BenchmarkRenderChimeSample(b *testing.B) {
	in := golden[0].content
	for b.Loop() {
		Render(in, testDirectory)
	}
}

func BenchmarkRenderChimeSampleMarkdown(b *testing.B) {
	in := golden[1].content
	for b.Loop() {
		Render(in, testDirectory)
	}
}

func FuzzRender(f *testing.F) {
	for _, in := range append(xssCorpus, goldenInputs()...) {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r := Render(in, testDirectory)
		if bad := unsafe(r.HTML); bad != "" {
			t.Fatalf("unsafe output (%s) for %q:\n%s", bad, in, r.HTML)
		}
		if again := sanitize(r.HTML); r.Format == "Markdown" && again != r.HTML {
			t.Fatalf("output changes when sanitized again for %q:\n%s\n%s", in, r.HTML, again)
		}
		if r.Mentions.MemberIDs == nil {
			t.Fatal("MemberIDs is nil")
		}
	})
}
