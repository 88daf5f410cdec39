package e2e_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocExamplesRun: the examples of README.md ("A whole checkout") and
// docs/api.md (a sale, an enrolment, a consent, a refund and a void) run
// as written, in that order, against loyaltyd on the dev config `make run`
// uses. They are read from the docs themselves. The sale redeemed a reward
// the README's member cannot afford with tenders that did not add up (400
// invalid_input), and the enrolment reused the README's member id (409
// id_conflict).
func TestDocExamplesRun(t *testing.T) {
	readme := readDoc(t, "README.md")
	apiDoc := readDoc(t, "docs/api.md")
	devCfg := readDoc(t, "configs/loyaltyd.dev.yaml")

	r := newRegister(t)
	if !strings.Contains(devCfg, "listen: 127.0.0.1:8080") {
		t.Fatal("configs/loyaltyd.dev.yaml: no api.listen 127.0.0.1:8080 to move to a free port")
	}
	r.cfgPath = filepath.Join(r.dir, "loyaltyd.dev.yaml")
	if err := os.WriteFile(r.cfgPath, []byte(strings.Replace(devCfg, "listen: 127.0.0.1:8080", "listen: "+r.addr, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start()

	// README: every bin/loyaltyctl line of the checkout block, in order.
	block := between(t, readme, "A whole checkout", "```\n\n")
	var cmds [][]string
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "bin/loyaltyctl ") {
			continue
		}
		if i := strings.Index(line, "  #"); i >= 0 {
			line = line[:i]
		}
		cmds = append(cmds, shellWords(strings.TrimPrefix(line, "bin/loyaltyctl ")))
	}
	if len(cmds) < 4 {
		t.Fatalf("README checkout: found %d loyaltyctl commands: %q", len(cmds), block)
	}
	for _, c := range cmds {
		if out, err := ctl(t, append([]string{"-addr", "http://" + r.addr}, c...)...); err != nil {
			t.Fatalf("README: loyaltyctl %q: %v\n%s", c, err, out)
		}
	}

	// docs/api.md, in the page's order.
	sale := between(t, apiDoc, "### `POST /v1/sales`\nRecord a completed sale.\n\n```json\n", "```")
	enrol := regexp.MustCompile("Enrol: `(\\{.*?\\})`").FindStringSubmatch(apiDoc)
	consent := regexp.MustCompile("### `PUT /v1/members/\\{id\\}/consent`\n`(\\{.*?\\})`").FindStringSubmatch(apiDoc)
	refund := regexp.MustCompile("### `POST /v1/sales/\\{id\\}/refund`\n`(\\{.*?\\})`").FindStringSubmatch(apiDoc)
	void := regexp.MustCompile("### `POST /v1/sales/\\{id\\}/void`\n`(\\{.*?\\})`").FindStringSubmatch(apiDoc)
	if enrol == nil || consent == nil || refund == nil || void == nil {
		t.Fatalf("docs/api.md: examples not found (enrol %v, consent %v, refund %v, void %v)", enrol != nil, consent != nil, refund != nil, void != nil)
	}
	var saleBody, memberBody map[string]any
	mustJSON(t, sale, &saleBody)
	mustJSON(t, enrol[1], &memberBody)
	saleID, _ := saleBody["id"].(string)
	memberID, _ := memberBody["id"].(string)
	for _, step := range []struct{ method, path, body string }{
		{"POST", "/v1/sales", sale},
		{"POST", "/v1/members", enrol[1]},
		{"PUT", "/v1/members/" + memberID + "/consent", consent[1]},
		{"POST", "/v1/sales/" + saleID + "/refund", refund[1]},
		{"POST", "/v1/sales/" + saleID + "/void", void[1]},
	} {
		var body any
		mustJSON(t, step.body, &body)
		if code, out := r.api(step.method, step.path, body); code != 200 && code != 201 {
			t.Errorf("docs/api.md: %s %s %s: %d %v", step.method, step.path, step.body, code, out)
		}
	}
}

func readDoc(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// between is the text after the first from up to the next to.
func between(t *testing.T, s, from, to string) string {
	t.Helper()
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		t.Fatalf("%q not found", from)
	}
	out, _, ok := strings.Cut(rest, to)
	if !ok {
		t.Fatalf("%q not found after %q", to, from)
	}
	return out
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
}

// shellWords splits a command line as sh would for the simple lines of
// the docs: words separated by spaces, single quotes kept together.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, inWord := false, false
	for _, c := range s {
		switch {
		case c == '\'':
			inQuote, inWord = !inQuote, true
		case c == ' ' && !inQuote:
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
			}
			inWord = false
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// TestLoyaltydFlagsDocumented: every flag `loyaltyd -h` lists is named in
// README.md (-shutdown-timeout, -check-config, -test-clock and -version
// were not).
func TestLoyaltydFlagsDocumented(t *testing.T) {
	out, _ := exec.Command(bins.loyaltyd, "-h").CombinedOutput()
	flags := regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(string(out), -1)
	if len(flags) < 4 {
		t.Fatalf("loyaltyd -h lists %d flags:\n%s", len(flags), out)
	}
	readme := readDoc(t, "README.md")
	for _, f := range flags {
		if !strings.Contains(readme, "`-"+f[1]) {
			t.Errorf("README.md does not name loyaltyd -%s", f[1])
		}
	}
}
