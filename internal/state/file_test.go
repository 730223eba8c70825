package state

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/fsx"
)

const userFile = `# coder-infra.env — inputs for coderctl
# Region to deploy into.
export AWS_REGION=us-east-1

CLUSTER_NAME='coder-prod'   # must match cluster-config.yaml
  CODER_DOMAIN="coder.example.com"
	# an indented comment
MY_TEAM_NOTE='kept: coderctl does not know this key'
USERS=500 # peak concurrent
EMPTY=
EMPTY_QUOTED=''
DB_PASSWORD=
export QUOTED_COMMENT="a \"b\" \$c" # comment # with hashes
`

func TestParseKeepsTheFileByteForByte(t *testing.T) {
	f := mustParse(t, userFile)
	if got := string(f.Bytes()); got != userFile {
		t.Errorf("Bytes() changed an unedited file:\n got: %q\nwant: %q", got, userFile)
	}
	wantKeys := []string{"AWS_REGION", "CLUSTER_NAME", "CODER_DOMAIN", "MY_TEAM_NOTE", "USERS", "EMPTY", "EMPTY_QUOTED", "DB_PASSWORD", "QUOTED_COMMENT"}
	if got := f.Keys(); !reflect.DeepEqual(got, wantKeys) {
		t.Errorf("Keys() = %q, want %q", got, wantKeys)
	}
	wantMap := map[string]string{
		"AWS_REGION":     "us-east-1",
		"CLUSTER_NAME":   "coder-prod",
		"CODER_DOMAIN":   "coder.example.com",
		"MY_TEAM_NOTE":   "kept: coderctl does not know this key",
		"USERS":          "500",
		"EMPTY":          "",
		"EMPTY_QUOTED":   "",
		"DB_PASSWORD":    "",
		"QUOTED_COMMENT": `a "b" $c`,
	}
	if got := f.Map(); !reflect.DeepEqual(got, wantMap) {
		t.Errorf("Map() = %q, want %q", got, wantMap)
	}
	path := writeTemp(t, userFile)
	if got := godotenvRead(t, path); !reflect.DeepEqual(got, wantMap) {
		t.Errorf("godotenv reads %q, want %q", got, wantMap)
	}
	if got := bashRead(t, path, wantKeys...); !reflect.DeepEqual(got, wantMap) {
		t.Errorf("bash reads %q, want %q", got, wantMap)
	}
}

func TestSetRewritesInPlaceAndAppendsUnderMarker(t *testing.T) {
	f := mustParse(t, userFile)
	edits := []struct{ key, value string }{
		{"AWS_REGION", "eu-west-1"},                 // keeps export
		{"CLUSTER_NAME", "coder staging"},           // keeps comment, quotes
		{"USERS", "1000"},                           // trailing comment forces quotes
		{"CODER_DOMAIN", "it's.example.com"},        // keeps indentation
		{"VPC_ID", "vpc-0123"},                      // new: under the marker
		{"PRIVATE_SUBNET_IDS", "subnet-a,subnet-b"}, // new: after VPC_ID
		{"VPC_ID", "vpc-4567"},                      // existing output rewritten in place
	}
	for _, e := range edits {
		if err := f.Set(e.key, e.value); err != nil {
			t.Fatalf("Set(%s): %v", e.key, err)
		}
	}
	want := strings.NewReplacer(
		"export AWS_REGION=us-east-1", "export AWS_REGION=eu-west-1",
		"CLUSTER_NAME='coder-prod'   #", "CLUSTER_NAME='coder staging'   #",
		"USERS=500 #", "USERS='1000' #",
		`  CODER_DOMAIN="coder.example.com"`, `  CODER_DOMAIN="it's.example.com"`,
	).Replace(userFile) + "\n" + OutputsMarker + "\nVPC_ID=vpc-4567\nPRIVATE_SUBNET_IDS=subnet-a,subnet-b\n"
	if got := string(f.Bytes()); got != want {
		t.Errorf("after edits:\n got: %s\nwant: %s", got, want)
	}
	// The edited file is still read the same by everyone.
	path := writeTemp(t, want)
	g := godotenvRead(t, path)
	b := bashRead(t, path, f.Keys()...)
	for key, value := range f.Map() {
		if g[key] != value || b[key] != value {
			t.Errorf("%s: file says %q, godotenv %q, bash %q", key, value, g[key], b[key])
		}
	}
}

func TestMarkerIsCreatedOnce(t *testing.T) {
	tests := []struct {
		name, before, want string
	}{
		{"empty file", "", OutputsMarker + "\nNEW=1\n"},
		{"ends with blank line", "A=1\n\n", "A=1\n\n" + OutputsMarker + "\nNEW=1\n"},
		{"no final newline", "A=1", "A=1\n\n" + OutputsMarker + "\nNEW=1\n"},
		{"marker already there", "A=1\n\n" + OutputsMarker + "\nOLD=x\n# user note\n", "A=1\n\n" + OutputsMarker + "\nOLD=x\n# user note\nNEW=1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParse(t, tt.before)
			if err := f.Set("NEW", "1"); err != nil {
				t.Fatal(err)
			}
			if got := string(f.Bytes()); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if n := strings.Count(string(f.Bytes()), OutputsMarker); n != 1 {
				t.Errorf("marker appears %d times", n)
			}
		})
	}
}

func TestParseRejectsMalformedLines(t *testing.T) {
	tests := []struct {
		name, line string
		fragments  []string
	}{
		{"no equals", "JUST_A_WORD", []string{"expected KEY=VALUE"}},
		{"command", "echo hello", []string{"expected KEY=VALUE"}},
		{"spaces around equals", "KEY = value", []string{"no spaces around '='"}},
		{"lower-case key", "aws_region=us-east-1", []string{"aws_region", "upper-case"}},
		{"digit first", "1KEY=x", []string{"1KEY"}},
		{"yaml style", "KEY: value", []string{"expected KEY=VALUE"}},
		{"export without value", "export KEY", []string{"expected KEY=VALUE"}},
		{"space after equals", "KEY= value", []string{"space after '='"}},
		{"two words", "KEY=one two", []string{"after the value"}},
		{"unterminated single", "KEY='abc", []string{"unterminated single quote"}},
		{"unterminated double", `KEY="abc`, []string{"unterminated double quote"}},
		{"text after quote", "KEY='a'b", []string{"after the value"}},
		{"comment glued to quote", "KEY='a'#c", []string{"after the value"}},
		{"expansion unquoted", "KEY=$HOME", []string{"single quotes"}},
		{"expansion double", `KEY="${HOME}/x"`, []string{"expansion"}},
		{"command substitution", "KEY=\"`id`\"", []string{"expansion"}},
		{"backslash unquoted", `KEY=a\b`, []string{"single quotes"}},
		{"godotenv-only escape", `KEY="a\nb"`, []string{`\\`}},
		{"single quote ending in backslash", `KEY='a\'`, []string{"backslash"}},
		{"double quote ending in quote", `KEY="a\""`, []string{`ending in`}},
		{"tilde", "KEY=~/x", []string{"single quotes"}},
		{"unquoted comment with hash", "KEY=v # a # b", []string{"godotenv"}},
		{"crlf", "KEY=value\r", []string{"carriage return", "Windows"}},
		{"nul byte", "KEY=va\x00lue", []string{"NUL byte", "plain text"}},
		{"control char", "KEY='\x1b[0m'", []string{"control character"}},
		{"bash special", "RANDOM=4", []string{"RANDOM", "bash special"}},
		{"secret", "DB_PASSWORD=hunter2", []string{"DB_PASSWORD", "secret", "remove it", "Secrets Manager"}},
		{"exported secret", "export CODER_SESSION_TOKEN='abc'", []string{"CODER_SESSION_TOKEN", "remove it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := "# header\nAWS_REGION=us-east-1\n\n" + tt.line + "\nLATER=1\n"
			_, err := Parse("/srv/coder-infra.env", []byte(data))
			wantInputError(t, err, append([]string{"/srv/coder-infra.env:4:"}, tt.fragments...)...)
		})
	}
}

func TestParseAcceptsWhatBothShellsRead(t *testing.T) {
	tests := []struct{ line, key, value string }{
		{"K=a#b", "K", "a#b"},
		{"K=#b", "K", "#b"},
		{"K=a*b?[c]{d}!", "K", "a*b?[c]{d}!"},
		{"K=héllo", "K", "héllo"},
		{"K='$HOME \\ `x` \"'", "K", "$HOME \\ `x` \""},
		{`K="a \\ \" \$ ` + "\\`" + ` b"`, "K", "a \\ \" $ ` b"},
		{"export  K=v", "K", "v"},
		{"\texport\tK=v\t# c", "K", "v"},
		{"K=   ", "K", ""},
		{"K='' # empty", "K", ""},
		{"K=v #", "K", "v"},
	}
	for _, tt := range tests {
		f := mustParse(t, tt.line+"\n")
		got, ok := f.Get(tt.key)
		if !ok || got != tt.value {
			t.Errorf("%q: Get(%s) = %q, %v; want %q", tt.line, tt.key, got, ok, tt.value)
		}
		path := writeTemp(t, tt.line+"\n")
		if b := bashRead(t, path, tt.key)[tt.key]; b != tt.value {
			t.Errorf("%q: bash reads %q, Parse %q", tt.line, b, tt.value)
		}
		if g := godotenvRead(t, path)[tt.key]; g != tt.value {
			t.Errorf("%q: godotenv reads %q, Parse %q", tt.line, g, tt.value)
		}
	}
}

func TestSetRefusesBadKeysAndSecrets(t *testing.T) {
	tests := []struct {
		key, value string
		fragments  []string
	}{
		{"db_host", "x", []string{"db_host", "upper-case"}},
		{"DB_PASSWORD", "hunter2", []string{"DB_PASSWORD", "secret"}},
		{"CODER_SESSION_TOKEN", "abc", []string{"CODER_SESSION_TOKEN", "secret"}},
		{"GITHUB_CLIENT_SECRET", "abc", []string{"GITHUB_CLIENT_SECRET", "Secrets Manager"}},
	}
	for _, tt := range tests {
		f := mustParse(t, "")
		wantInputError(t, f.Set(tt.key, tt.value), append([]string{"coder-infra.env"}, tt.fragments...)...)
		if len(f.Keys()) != 0 {
			t.Errorf("Set(%s) refused but stored it", tt.key)
		}
	}
	f := mustParse(t, "")
	for key, value := range map[string]string{"DB_MASTER_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:x", "DB_PASSWORD": ""} {
		if err := f.Set(key, value); err != nil {
			t.Errorf("Set(%s=%q): %v", key, value, err)
		}
	}
}

func TestZeroFileIsEmpty(t *testing.T) {
	var f File
	if err := f.Set("A", "1"); err != nil {
		t.Fatal(err)
	}
	if got := string(f.Bytes()); got != OutputsMarker+"\nA=1\n" {
		t.Errorf("zero File after Set: %q", got)
	}
}

func TestDuplicateKeysLastWins(t *testing.T) {
	f := mustParse(t, "A=1\nB=2\nA=3\n")
	if v, _ := f.Get("A"); v != "3" {
		t.Errorf("Get(A) = %q, want the last assignment 3", v)
	}
	if got := f.Keys(); !reflect.DeepEqual(got, []string{"A", "B"}) {
		t.Errorf("Keys() = %q", got)
	}
	if err := f.Set("A", "4"); err != nil {
		t.Fatal(err)
	}
	if got := string(f.Bytes()); got != "A=1\nB=2\nA=4\n" {
		t.Errorf("Set rewrote %q, want the last assignment changed", got)
	}
	if !f.Unset("A") || f.Unset("A") {
		t.Error("Unset(A) should report true once, then false")
	}
	if got := string(f.Bytes()); got != "B=2\n" {
		t.Errorf("after Unset: %q", got)
	}
	if _, ok := f.Get("A"); ok {
		t.Error("A still set after Unset")
	}
	if v, _ := f.Get("B"); v != "2" {
		t.Errorf("Get(B) = %q after Unset(A) reindexed", v)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.env")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling.env")
	if err := os.Symlink("not-yet.env", dangling); err != nil {
		t.Fatal(err)
	}
	big := writeTemp(t, "A='"+strings.Repeat("x", fsx.MaxInputFile)+"'\n")
	bad := writeTemp(t, "A=1\nbad line\n")
	good := writeTemp(t, "A='x y'\n")
	cases := []struct {
		name  string
		path  string
		wantA string   // A's value, when the load succeeds
		wants []string // fragments of the InputError, when it fails
	}{
		{"regular file", good, "x y", nil},
		{"missing file is empty", filepath.Join(dir, "nope.env"), "", nil},
		{"dangling symlink is empty", dangling, "", nil},
		{"directory", dir, "", []string{dir, "not a regular file (a directory)"}},
		{"FIFO does not hang", fifo, "", []string{fifo, "not a regular file (a named pipe)"}},
		{"device", "/dev/zero", "", []string{"/dev/zero", "a character device"}},
		{"too large", big, "", []string{big, "file too large"}},
		{"bad line", bad, "", []string{bad + ":2:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Load(c.path)
			if c.wants != nil {
				wantInputError(t, err, c.wants...)
				if code := fault.ExitCode(err); code != fault.ExitInput {
					t.Errorf("exit code %d, want %d", code, fault.ExitInput)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := f.Get("A"); v != c.wantA || f.Name() != c.path {
				t.Errorf("Load: A = %q, name %q; want %q, %q", v, f.Name(), c.wantA, c.path)
			}
		})
	}
}

func TestLoadUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	path := writeTemp(t, "A=1\n")
	if err := os.Chmod(path, 0o000); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	wantInputError(t, err, path, "permission denied")
}

func TestSaveWritesOnlyChanges(t *testing.T) {
	path := writeTemp(t, "A=1\n") // 0644, as a user might create it
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	before := inode(t, path)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	if inode(t, path) != before {
		t.Error("Save rewrote an unchanged file")
	}
	if mode := fileModeOf(t, path); mode != 0o600 {
		t.Errorf("unchanged file left with mode %o, want 600", mode)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Set("B", "2"); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	if inode(t, path) == before {
		t.Error("Save did not replace the file")
	}
	if mode := fileModeOf(t, path); mode != 0o600 {
		t.Errorf("rewritten file has mode %o, want 600", mode)
	}
	got, _ := os.ReadFile(path)
	if want := "A=1\n\n" + OutputsMarker + "\nB=2\n"; string(got) != want {
		t.Errorf("saved %q, want %q", got, want)
	}
	if names := dirEntries(t, filepath.Dir(path)); !reflect.DeepEqual(names, []string{"coder-infra.env"}) {
		t.Errorf("directory holds %q, want only the state file (no temp files)", names)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return statIno(info)
}

func fileModeOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}
