package state

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/joho/godotenv"
)

// trickyValues are values that bash and godotenv are easy to make disagree
// on; every one must survive a write and read back identically in both.
var trickyValues = []string{
	"",
	"us-east-1",
	"subnet-0a1b,subnet-2c3d,subnet-4e5f",
	"https://coder.example.com:443/path?x=1",
	"arn:aws:secretsmanager:us-east-1:123456789012:secret:coder/database-url-AbCdEf",
	"a=b=c",
	"a=b:c/d@e%f+g,h_-.",
	"=",
	"with spaces",
	"  leading and trailing  ",
	"\ttab\t",
	"it's",
	"'",
	"''",
	`say "hi"`,
	`"`,
	`""x`,
	`"quoted" start`,
	`it's "quoted" inside!`,
	`'single' and "double" mixed, ends plain`,
	"$HOME",
	"${HOME}",
	"$(id)",
	"\\$HOME",
	"cost: $5",
	"$",
	"$$",
	"`id`",
	"a`b",
	"#not a comment",
	"a #not a comment",
	"a#b",
	"x # y # z",
	`C:\path\to\file.txt`,
	`\n`,
	`\r\t\\x`,
	`a\"b`,
	`it's a \ backslash`,
	`it's a \$ dollar`,
	`it's \n`,
	"héllo wörld",
	"日本語",
	"emoji 🚀",
	"\u00a0nbsp\u00a0",
	"\u0085nel",
	"~",
	"~/x",
	"a:~/x",
	"*",
	"a*b?[c]",
	"{a,b}",
	"!",
	"x!y",
	"a;b",
	"a&&b",
	"a|b",
	"<x>",
	"(x)",
	"%s %d",
	"-n",
	"--flag=value",
	"export",
	"export X=1",
	"X=1 Y=2",
}

// unrepresentable are values no quoting makes both parsers read back; Set
// must refuse them with an InputError mentioning the fragment.
var unrepresentable = []struct{ value, fragment string }{
	{`ends in backslash\`, "backslash"},
	{`\`, "backslash"},
	{`it's "quoted"`, `ending in "`},
	{"two\nlines", "line break"},
	{"cr\rhere", "line break"},
	{"nul\x00byte", "NUL"},
	{"bell\a", "control character"},
	{"esc\x1b[0m", "control character"},
	{"del\x7f", "control character"},
	{"bad \xff utf8", "UTF-8"},
}

func TestEncodeValueRule(t *testing.T) {
	tests := []struct {
		value     string
		commented bool
		want      string
	}{
		{"", false, ""},
		{"", true, "''"},
		{"us-east-1", false, "us-east-1"},
		{"us-east-1", true, "'us-east-1'"},
		{"a=b:c/d@e%f+g,h", false, "a=b:c/d@e%f+g,h"},
		{"with spaces", false, "'with spaces'"},
		{"$HOME `id` \"q\" #", false, "'$HOME `id` \"q\" #'"},
		{`back\slash`, false, `'back\slash'`},
		{"héllo", false, "'héllo'"},
		{"it's", false, `"it's"`},
		{"it's $5 `x` \\ \"y\" ok", false, `"it's \$5 \` + "`" + `x\` + "`" + ` \\ \"y\" ok"`},
	}
	for _, tt := range tests {
		got, err := encodeValue(tt.value, tt.commented)
		if err != nil {
			t.Errorf("encodeValue(%q, %v): %v", tt.value, tt.commented, err)
			continue
		}
		if got != tt.want {
			t.Errorf("encodeValue(%q, %v) = %s, want %s", tt.value, tt.commented, got, tt.want)
		}
	}
}

// TestTrickyValuesRoundTrip writes every tricky value with File.Set, then
// reads the file back with Parse, godotenv.Read and real bash.
func TestTrickyValuesRoundTrip(t *testing.T) {
	layouts := []struct {
		name, existing string
	}{
		{"new key", ""},
		{"export prefix", "export KEY=old\n"},
		{"indented with comment", "  KEY='old' # the value\n"},
		{"export and comment", "export\tKEY='old'   # note # with hash\n"},
	}
	for _, layout := range layouts {
		t.Run(layout.name, func(t *testing.T) {
			want := map[string]string{}
			var data strings.Builder
			keys := make([]string, 0, len(trickyValues))
			for i, v := range trickyValues {
				key := fmt.Sprintf("V%02d", i)
				f := mustParse(t, strings.ReplaceAll(layout.existing, "KEY", key))
				if err := f.Set(key, v); err != nil {
					t.Errorf("Set(%q): %v", v, err)
					continue
				}
				data.Write(f.Bytes())
				want[key] = v
				keys = append(keys, key)
			}
			path := writeTemp(t, data.String())

			parsed := mustParse(t, data.String())
			viaBash := bashRead(t, path, keys...)
			viaGodotenv := godotenvRead(t, path)
			for _, key := range keys {
				if got, _ := parsed.Get(key); got != want[key] {
					t.Errorf("Parse: %s = %q, want %q", key, got, want[key])
				}
				if got := viaGodotenv[key]; got != want[key] {
					t.Errorf("godotenv: %s = %q, want %q", key, got, want[key])
				}
				if got := viaBash[key]; got != want[key] {
					t.Errorf("bash: %s = %q, want %q", key, got, want[key])
				}
			}
			if t.Failed() {
				t.Logf("file:\n%s", data.String())
			}
		})
	}
}

func TestSetRefusesUnrepresentableValues(t *testing.T) {
	for _, tt := range unrepresentable {
		f := mustParse(t, "A=1\n")
		before := string(f.Bytes())
		err := f.Set("SOME_KEY", tt.value)
		wantInputError(t, err, "SOME_KEY", tt.fragment)
		if got := string(f.Bytes()); got != before {
			t.Errorf("Set(%q) refused but changed the file to %q", tt.value, got)
		}
	}
}

// TestUnrepresentableReallyDisagree proves the refusals are needed: for each
// value ending in a backslash or mixing ' with a final ", the obvious quoted
// forms are misread by godotenv.
func TestUnrepresentableReallyDisagree(t *testing.T) {
	for _, value := range []string{`end\`, `it's "q"`} {
		for _, quoted := range []string{"'" + value + "'", doubleQuote(value)} {
			got, err := godotenv.Unmarshal("K=" + quoted)
			if err == nil && got["K"] == value {
				t.Errorf("godotenv reads K=%s back as %q: the refusal is unnecessary", quoted, value)
			}
		}
	}
}

func TestValidateKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"AWS_REGION", true},
		{"_PRIVATE", true},
		{"A1", true},
		{"STAGE_RDS_APPLIED_AT", true},
		{"", false},
		{"aws_region", false},
		{"Aws_Region", false},
		{"1ABC", false},
		{"A-B", false},
		{"A.B", false},
		{"A B", false},
		{"ÄBC", false},
		{"_", false},
		{"RANDOM", false},
		{"UID", false},
		{"BASH_ENV", false},
		{"BASHOPTS", false},
		{"SECONDS", false},
	}
	for _, tt := range tests {
		err := ValidateKey(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateKey(%q) = %v, want ok=%v", tt.key, err, tt.ok)
		}
	}
}

// TestBashSpecialKeysAreReallySpecial shows that bash does not read back the
// keys ValidateKey refuses, so refusing them is needed.
func TestBashSpecialKeysAreReallySpecial(t *testing.T) {
	dir := t.TempDir()
	for key := range bashSpecial {
		path := filepath.Join(dir, "special.env")
		if err := os.WriteFile(path, []byte(key+"=coderctl\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		script := `set -a; source "$1" 2>/dev/null; printf '%s' "${!2}"`
		out, _ := execBash(script, path, key)
		if out == "coderctl" {
			t.Errorf("bash reads %s back as written; it need not be refused", key)
		}
	}
}

func TestIsSecretKey(t *testing.T) {
	tests := []struct {
		key    string
		secret bool
	}{
		{"DB_PASSWORD", true},
		{"DB_MASTER_PASSWORD", true},
		{"CODER_SESSION_TOKEN", true},
		{"GITHUB_OAUTH_CLIENT_SECRET", true},
		{"SSH_PASSPHRASE", true},
		{"TLS_PRIVATE_KEY", true},
		{"TOKEN", true},
		{"db_password", true},
		{"DB_MASTER_SECRET_ARN", false},
		{"DATABASE_URL_SECRET_ARN", false},
		{"GITHUB_SECRET_NAME", false},
		{"PROVISIONER_TOKEN_NAME", false},
		{"DB_PASSWORD_ARN", false},
		{"AWS_REGION", false},
		{"SECRETS_ROLE_ARN", false},
		{"PRIVATE_SUBNET_IDS", false},
		{"PRIVATE_KEYS_DIR", true},
		{"STAGE_SECRETS_APPLIED_AT", false},
		{"SECRET_APPLIED", true},
	}
	for _, tt := range tests {
		if got := IsSecretKey(tt.key); got != tt.secret {
			t.Errorf("IsSecretKey(%q) = %v, want %v", tt.key, got, tt.secret)
		}
	}
}
