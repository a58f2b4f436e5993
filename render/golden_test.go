package render

import (
	"reflect"
	"testing"

	"github.com/carillon-chat/carillon"
)

const (
	maryID  = "11111111-1111-4111-8111-111111111111"
	bobID   = "22222222-2222-4222-8222-222222222222"
	bobbyID = "33333333-3333-4333-8333-333333333333"
)

var testDirectory = NewDirectory([]Member{
	{ID: maryID, Alias: "mary.major", Email: "mary@example.com"},
	{ID: bobID, Alias: "bob", Email: "bob@example.org"},
	{ID: bobbyID, Alias: "bob.smith", Email: "Bob.Smith@Example.org"},
})

const link = `" target="_blank" rel="noopener noreferrer nofollow">`

var golden = []struct {
	name     string
	content  string
	format   string
	html     string
	mentions carillon.Mentions
}{
	{"chime sample", "Message Body emoji test: :) :+1: link test: http://sample.com email test: marymajor@example.com All Members: @All All Present Members: @Present",
		"Plain", `Message Body emoji test: 🙂 👍 link test: <a href="http://sample.com` + link + `http://sample.com</a> email test: <a href="mailto:marymajor@example.com` + link + `marymajor@example.com</a> All Members: <span class="mention" data-mention="all">@All</span> All Present Members: <span class="mention" data-mention="present">@Present</span>`,
		carillon.Mentions{All: true, Present: true, MemberIDs: []string{}}},
	{"chime sample markdown", "/md Message Body emoji test: :) :+1: link test: http://sample.com email test: marymajor@example.com All Members: @All All Present Members: @Present",
		"Markdown", `<p>Message Body emoji test: 🙂 👍 link test: <a href="http://sample.com` + link + `http://sample.com</a> email test: <a href="mailto:marymajor@example.com` + link + `marymajor@example.com</a> All Members: <span class="mention" data-mention="all">@All</span> All Present Members: <span class="mention" data-mention="present">@Present</span></p>` + "\n",
		carillon.Mentions{All: true, Present: true, MemberIDs: []string{}}},
	{"plain escapes and keeps line breaks", "a < b & c > \"d\"\nnext\r\nlast",
		"Plain", "a &lt; b &amp; c &gt; &#34;d&#34;<br>next<br>last", carillon.Mentions{MemberIDs: []string{}}},
	{"plain shows markdown as written", "**not bold** _x_",
		"Plain", "**not bold** _x_", carillon.Mentions{MemberIDs: []string{}}},
	{"code verbatim", "/code :) @All http://x.com <b>&",
		"Code", "<pre><code>:) @All http://x.com &lt;b&gt;&amp;</code></pre>", carillon.Mentions{MemberIDs: []string{}}},
	{"code after newline", "/code\nline1\n  line2",
		"Code", "<pre><code>line1\n  line2</code></pre>", carillon.Mentions{MemberIDs: []string{}}},
	{"prefix needs a separator", "/mdx text", "Plain", "/mdx text", carillon.Mentions{MemberIDs: []string{}}},
	{"prefix is case-sensitive", "/MD text", "Plain", "/MD text", carillon.Mentions{MemberIDs: []string{}}},
	{"emoticons", ":-) :( :D ;) :P :p :O :'( :} :| <3 </3",
		"Plain", "🙂 🙁 😄 😉 😛 😛 😮 😢 😊 😐 ❤️ 💔", carillon.Mentions{MemberIDs: []string{}}},
	{"emoticon before punctuation", "ok :)! fine :).",
		"Plain", "ok 🙂! fine 🙂.", carillon.Mentions{MemberIDs: []string{}}},
	{"no emoticon inside words or URLs", "http://a:) x:) a:P (:)",
		"Plain", `<a href="http://a` + link + `http://a</a>:) x:) a:P (:)`, carillon.Mentions{MemberIDs: []string{}}},
	{"shortcodes", ":tada: :smile: :+1: :nonexistent: :octocat:",
		"Plain", "🎉 😄 👍 :nonexistent: :octocat:", carillon.Mentions{MemberIDs: []string{}}},
	{"member mentions", "hi @mary.major, @BOB and @bob.smith. and @bob_ and @nobody",
		"Plain", `hi <span class="mention" data-member-id="` + maryID + `">@mary.major</span>, <span class="mention" data-member-id="` + bobID + `">@BOB</span> and <span class="mention" data-member-id="` + bobbyID + `">@bob.smith</span>. and <span class="mention" data-member-id="` + bobID + `">@bob</span>_ and @nobody`,
		carillon.Mentions{MemberIDs: []string{maryID, bobID, bobbyID}}},
	{"e-mail mention", "ping @bob.smith@example.org and @Mary@Example.com",
		"Plain", `ping <span class="mention" data-member-id="` + bobbyID + `">@bob.smith@example.org</span> and <span class="mention" data-member-id="` + maryID + `">@Mary@Example.com</span>`,
		carillon.Mentions{MemberIDs: []string{bobbyID, maryID}}},
	{"an address without @ is a link", "mail mary@example.com",
		"Plain", `mail <a href="mailto:mary@example.com` + link + `mary@example.com</a>`, carillon.Mentions{MemberIDs: []string{}}},
	{"mention listed once", "@bob @bob @BOB", "Plain",
		`<span class="mention" data-member-id="` + bobID + `">@bob</span> <span class="mention" data-member-id="` + bobID + `">@bob</span> <span class="mention" data-member-id="` + bobID + `">@BOB</span>`,
		carillon.Mentions{MemberIDs: []string{bobID}}},
	{"broadcasts case-insensitive", "@ALL and @present.", "Plain",
		`<span class="mention" data-mention="all">@ALL</span> and <span class="mention" data-mention="present">@present</span>.`,
		carillon.Mentions{All: true, Present: true, MemberIDs: []string{}}},
	{"no mention in a URL", "http://x.com/@all", "Plain",
		`<a href="http://x.com/@all` + link + `http://x.com/@all</a>`, carillon.Mentions{MemberIDs: []string{}}},
	{"URL ends like GitHub's", "(https://en.wikipedia.org/wiki/A_(b)) https://x.com/a. https://x.com/?q=1&amp; www.example.com",
		"Plain", `(<a href="https://en.wikipedia.org/wiki/A_(b)` + link + `https://en.wikipedia.org/wiki/A_(b)</a>) <a href="https://x.com/a` + link + `https://x.com/a</a>. <a href="https://x.com/?q=1` + link + `https://x.com/?q=1</a>&amp;amp; www.example.com`,
		carillon.Mentions{MemberIDs: []string{}}},
	{"markdown basics", "/md # Title\n**b** _i_ ~~s~~ `@all :)`",
		"Markdown", "<h1>Title</h1>\n<p><strong>b</strong> <em>i</em> <del>s</del> <code>@all :)</code></p>\n", carillon.Mentions{MemberIDs: []string{}}},
	{"markdown raw HTML is text", "/md <b>x</b>",
		"Markdown", "<p>&lt;b&gt;x&lt;/b&gt;</p>\n", carillon.Mentions{MemberIDs: []string{}}},
	{"markdown links and images", "/md [a](https://a.example) [j](javascript:alert(1)) ![i](https://x.example/i.png) ![d](data:image/png;base64,AA)",
		"Markdown", `<p><a href="https://a.example` + link + `a</a> j <img src="https://x.example/i.png" alt="i" referrerpolicy="no-referrer" loading="lazy"> d</p>` + "\n",
		carillon.Mentions{MemberIDs: []string{}}},
	{"markdown table", "/md | a | b |\n|:-|-:|\n| 1 | 2 |",
		"Markdown", "<table>\n<thead>\n<tr>\n<th align=\"left\">a</th>\n<th align=\"right\">b</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td align=\"left\">1</td>\n<td align=\"right\">2</td>\n</tr>\n</tbody>\n</table>\n",
		carillon.Mentions{MemberIDs: []string{}}},
	{"markdown task list", "/md - [x] done\n- [ ] todo",
		"Markdown", "<ul>\n<li><input checked=\"\" disabled=\"\" type=\"checkbox\"> done</li>\n<li><input disabled=\"\" type=\"checkbox\"> todo</li>\n</ul>\n",
		carillon.Mentions{MemberIDs: []string{}}},
	{"markdown mentions and emoji, none in code", "/md @bob :tada:\n\n```\n@mary.major :)\n```",
		"Markdown", `<p><span class="mention" data-member-id="` + bobID + `">@bob</span> 🎉</p>` + "\n<pre><code>@mary.major :)\n</code></pre>\n",
		carillon.Mentions{MemberIDs: []string{bobID}}},
	{"markdown entities, also at line ends", "/md Tom &amp; Jerry &copy;\n5 &lt; 6 &gt;",
		"Markdown", "<p>Tom &amp; Jerry ©<br>\n5 &lt; 6 &gt;</p>\n", carillon.Mentions{MemberIDs: []string{}}},
	{"markdown www not linked, autolink linked", "/md www.example.com <https://a.example> https://b.example",
		"Markdown", `<p>www.example.com <a href="https://a.example` + link + `https://a.example</a> <a href="https://b.example` + link + `https://b.example</a></p>` + "\n",
		carillon.Mentions{MemberIDs: []string{}}},
}

func goldenInputs() []string {
	var out []string
	for _, g := range golden {
		out = append(out, g.content)
	}
	return out
}

func TestGolden(t *testing.T) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			r := Render(g.content, testDirectory)
			if r.Format != g.format {
				t.Errorf("Format %q, want %q", r.Format, g.format)
			}
			if r.HTML != g.html {
				t.Errorf("Html\n got: %s\nwant: %s", r.HTML, g.html)
			}
			if !reflect.DeepEqual(r.Mentions, g.mentions) {
				t.Errorf("Mentions %+v, want %+v", r.Mentions, g.mentions)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	for _, c := range []struct{ in, format, body string }{
		{"/md x", "Markdown", "x"}, {"/md\tx", "Markdown", "x"}, {"/md\nx", "Markdown", "x"}, {"/md\r\nx", "Markdown", "x"},
		{"/md  x", "Markdown", " x"}, {"/md", "Plain", "/md"}, {"/mdx", "Plain", "/mdx"}, {"/Md x", "Plain", "/Md x"},
		{"/code x", "Code", "x"}, {"/code\n x", "Code", " x"}, {"/code", "Plain", "/code"}, {" /md x", "Plain", " /md x"},
	} {
		f, b := Split(c.in)
		if f != c.format || b != c.body {
			t.Errorf("Split(%q) = %q, %q; want %q, %q", c.in, f, b, c.format, c.body)
		}
	}
}

func TestIsBlank(t *testing.T) {
	for in, want := range map[string]bool{"": true, "  \n\t": true, "/md ": true, "/code \n  ": true, "/md": false, "x": false, "/md x": false} {
		if IsBlank(in) != want {
			t.Errorf("IsBlank(%q) = %v", in, !want)
		}
	}
}
