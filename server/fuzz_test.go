package server

// Fuzz target for the webhook body decoder, reached directly (an internal
// test) so that each execution is a pure function call. The targets that go
// through real HTTP are in fuzz_http_test.go (package server_test).
//
// Seed corpus: testdata/fuzz/FuzzDecodeContent/ plus the f.Add calls below.
// Run:  go test ./server -run '^$' -fuzz '^FuzzDecodeContent$' -fuzztime 10s

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/carillon-chat/carillon"
)

func FuzzDecodeContent(f *testing.F) {
	for _, seed := range []string{
		`{"Content":"Hello"}`,
		"\xEF\xBB\xBF{\"Content\":\"BOM\"}",
		"{\"Content\":\"caf\xe9 \x80\"}", // Windows-1252
		`{"Content":"first","Content":"second"}`,
		`{"Content":1}`,
		`{"Content":null}`,
		`{"Content":"x"} trailing`,
		`{"Content":"x"}   `,
		`["Content"]`,
		`"Content"`,
		``,
		`{"Content":"a\u0000b"}`,
		"{\"Content\":\"a\x00b\"}",
		`{"Content":"\ud800"}`, // lone surrogate
		`{"Content-Type":"application/json","Content":"/md **x**"}`,
		`{"content":"lower case key"}`,
		`{"Content":"x","n":1e999999}`,
		strings.Repeat("[", 10000),
		`{"a":` + strings.Repeat("[", 20000) + `}`,
		"\xff\xfe{\x00\"\x00C\x00", // UTF-16 LE
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		content, err := decodeContent(body)
		if err != nil {
			e, ok := err.(*carillon.Error)
			if !ok || e.Code != carillon.EBadRequest || e.Message == "" {
				t.Fatalf("decodeContent(%q): error %#v, want a *carillon.Error with Code BadRequest and a Message", body, err)
			}
			if content != "" {
				t.Fatalf("decodeContent(%q): content %q returned with an error", body, content)
			}
			return
		}
		if !utf8.ValidString(content) {
			t.Fatalf("decodeContent(%q) = %q: not valid UTF-8", body, content)
		}
	})
}
