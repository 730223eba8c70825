package state

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/joho/godotenv"
)

// The syntax of coder-infra.env.
//
// The file is read by two parsers that disagree on much of the dotenv
// grammar: bash (`set -a; source coder-infra.env`) and godotenv v1.5.1. This
// package accepts, and writes, only the forms both read the same way:
//
//	[blanks][export blanks]KEY=VALUE[blanks[# comment]]
//	[blanks]# comment
//	[blanks]
//
// where VALUE is one of
//
//   - empty;
//   - unquoted: no blanks, quotes, backslashes, `$`, backticks, `~`, or
//     shell operators (;&|<>()), and no godotenv "space" runes;
//   - single-quoted: literal in both parsers. godotenv skips a quote that
//     follows a backslash when it looks for the closing quote, so the content
//     must not end with `\`;
//   - double-quoted: the only escapes are \\ \" \$ \` (bash removes the
//     backslash before exactly these; godotenv removes it before anything but
//     `$`, expands \n and \r, and then drops the backslash of \$). An
//     unescaped `$` or backtick is an expansion, which the two parsers do
//     differently, so it is refused. godotenv trims every `"` at both ends and
//     skips a quote after a backslash, so the content must not end with `\`
//     or `"`.
//
// Writing a value follows the same table, preferring the simplest form:
//
//  1. unquoted when every character is in plainValueChars (and the line has
//     no trailing comment: an empty unquoted value followed by a comment is
//     read by godotenv as the comment);
//  2. otherwise single quotes when the value has no `'` and does not end in `\`;
//  3. otherwise double quotes with \\ \" \$ \` escaped, when the value does
//     not end in `\` or `"`;
//  4. otherwise the value cannot be written so that both read it back (it ends
//     in a backslash, or it has a `'` and ends in `"`): it is refused.
//
// Values are text: valid UTF-8 without control characters other than tab.
// Newlines and NUL cannot be represented; a carriage return is folded by
// godotenv's CRLF handling; the other control characters are refused as
// terminal-hostile and meaningless in state.
//
// As a guard, every line written and every assignment read is also given to
// godotenv itself, and a line it reads differently is refused.

const (
	exportWord = "export"
	// plainValueChars may appear in an unquoted value: bash and godotenv
	// both read them literally, in any position.
	plainValueChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.,/:@%+="
)

// ValidateKey checks that key is an upper-case shell name that bash reads
// back as written: [A-Z_][A-Z0-9_]*, not one of bash's own special variables.
func ValidateKey(key string) error {
	if key == "" {
		return errors.New("empty key")
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		upper := c >= 'A' && c <= 'Z'
		digit := c >= '0' && c <= '9'
		if !upper && c != '_' && (!digit || i == 0) {
			return fmt.Errorf("%q is not an upper-case shell name ([A-Z_][A-Z0-9_]*)", key)
		}
	}
	if isBashSpecial(key) {
		return fmt.Errorf("%q is a bash special variable: sourcing the file would not set it", key)
	}
	return nil
}

// bashSpecial are variables that bash makes read-only, dynamic or
// self-resetting, measured with bash 5.2: `set -a; source f` does not read
// back what f assigns to them. Every BASH* name is refused as well.
var bashSpecial = map[string]bool{
	"_": true, "DIRSTACK": true, "EPOCHREALTIME": true, "EPOCHSECONDS": true,
	"EUID": true, "FUNCNAME": true, "GROUPS": true, "HISTCMD": true,
	"LINENO": true, "OPTIND": true, "PIPESTATUS": true, "PPID": true,
	"RANDOM": true, "SECONDS": true, "SHELLOPTS": true, "SRANDOM": true,
	"UID": true,
}

func isBashSpecial(key string) bool {
	return bashSpecial[key] || strings.HasPrefix(key, "BASH")
}

// secretWords mark a key whose value would be a secret.
var secretWords = []string{"PASSWORD", "TOKEN", "SECRET", "PASSPHRASE", "PRIVATE_KEY"}

// IsSecretKey reports whether key names a secret value, which must never be
// stored in the state file. Keys ending in _ARN or _NAME name where a secret
// lives (DB_MASTER_SECRET_ARN), not the secret itself, and are allowed; so
// are the stages' timestamps (STAGE_SECRETS_APPLIED_AT).
func IsSecretKey(key string) bool {
	key = strings.ToUpper(key)
	if strings.HasSuffix(key, "_ARN") || strings.HasSuffix(key, "_NAME") || strings.HasSuffix(key, "_APPLIED_AT") {
		return false
	}
	for _, w := range secretWords {
		if strings.Contains(key, w) {
			return true
		}
	}
	return false
}

// checkValue refuses what no quoting can carry: invalid UTF-8 and control
// characters other than tab.
func checkValue(value string) error {
	if !utf8.ValidString(value) {
		return errors.New("value is not valid UTF-8")
	}
	for _, r := range value {
		switch {
		case r == '\n' || r == '\r':
			return errors.New("value contains a line break; state values must be one line")
		case r == 0:
			return errors.New("value contains a NUL byte")
		case r == '\t':
		case r < 0x20 || r == 0x7f:
			return fmt.Errorf("value contains the control character %U", r)
		}
	}
	return nil
}

// encodeValue returns value as it is written after `KEY=`, following the
// rule at the top of this file. commented says the line keeps a trailing
// comment, which rules out the unquoted form.
func encodeValue(value string, commented bool) (string, error) {
	if err := checkValue(value); err != nil {
		return "", err
	}
	if !commented && isPlain(value) {
		return value, nil
	}
	endsBackslash := strings.HasSuffix(value, `\`)
	if endsBackslash {
		return "", errors.New(`a value ending in a backslash cannot be written so that both bash and godotenv read it back`)
	}
	if !strings.Contains(value, "'") {
		return "'" + value + "'", nil
	}
	if strings.HasSuffix(value, `"`) {
		return "", errors.New(`a value containing ' and ending in " cannot be written so that both bash and godotenv read it back`)
	}
	return doubleQuote(value), nil
}

// isPlain reports whether value can be written unquoted. Empty counts: bash
// and godotenv both read `KEY=` as "".
func isPlain(value string) bool {
	for i := 0; i < len(value); i++ {
		if strings.IndexByte(plainValueChars, value[i]) < 0 {
			return false
		}
	}
	return true
}

func doubleQuote(value string) string {
	var b strings.Builder
	b.Grow(len(value) + 8)
	b.WriteByte('"')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\', '"', '$', '`':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// assignment is one KEY=VALUE line taken apart so that it can be rewritten
// with a new value and everything else kept: head is the indentation and
// `export ` prefix, tail the trailing blanks and comment.
type assignment struct {
	head, key, value, tail string
}

// parseAssignment reads one non-blank, non-comment line. On error, a.key is
// set when the key was read.
func parseAssignment(text string) (assignment, error) {
	var a assignment
	i := skipBlanks(text, 0)
	if rest := text[i:]; strings.HasPrefix(rest, exportWord) && len(rest) > len(exportWord) && isBlank(rest[len(exportWord)]) {
		i = skipBlanks(text, i+len(exportWord))
	}
	a.head = text[:i]
	j := i
	for j < len(text) && isNameChar(text[j]) {
		j++
	}
	a.key = text[i:j]
	if err := ValidateKey(a.key); err != nil {
		a.key = ""
		if j == len(text) || text[j] != '=' {
			return a, malformedAssignment(text, j)
		}
		return a, badKeyError{err}
	}
	if j == len(text) || text[j] != '=' {
		return a, malformedAssignment(text, j)
	}
	value, tail, err := parseValue(text[j+1:])
	if err != nil {
		return a, err
	}
	if err := checkValue(value); err != nil {
		return a, err
	}
	a.value, a.tail = value, tail
	return a, nil
}

// badKeyError is an assignment to a key coderctl does not accept.
type badKeyError struct{ error }

func malformedAssignment(text string, at int) error {
	if at < len(text) && isBlank(text[at]) && strings.Contains(text[at:], "=") {
		return errors.New("expected KEY=VALUE with no spaces around '=' (bash reads `KEY = v` as a command)")
	}
	return fmt.Errorf("expected KEY=VALUE, a # comment or a blank line, got %q", abbreviate(text))
}

// parseValue reads what follows `=`: the value and the tail after it.
func parseValue(s string) (value, tail string, err error) {
	switch {
	case s == "":
		return "", "", nil
	case isBlank(s[0]):
		if skipBlanks(s, 0) == len(s) {
			return "", s, nil
		}
		return "", "", errors.New("space after '=' (bash would run the rest of the line as a command); quote the value")
	case s[0] == '\'':
		value, n, err := parseSingleQuoted(s)
		if err != nil {
			return "", "", err
		}
		return value, s[n:], checkTail(s[n:])
	case s[0] == '"':
		value, n, err := parseDoubleQuoted(s)
		if err != nil {
			return "", "", err
		}
		return value, s[n:], checkTail(s[n:])
	default:
		value, n, err := parseUnquoted(s)
		if err != nil {
			return "", "", err
		}
		return value, s[n:], checkTail(s[n:])
	}
}

// parseSingleQuoted returns the content of the leading '...' and its length.
func parseSingleQuoted(s string) (string, int, error) {
	end := strings.IndexByte(s[1:], '\'')
	if end < 0 {
		return "", 0, errors.New("unterminated single quote")
	}
	content := s[1 : 1+end]
	if strings.HasSuffix(content, `\`) {
		return "", 0, errors.New(`a single-quoted value ending in a backslash is read differently by godotenv`)
	}
	return content, end + 2, nil
}

// parseDoubleQuoted returns the value of the leading "..." and its length.
func parseDoubleQuoted(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			value := b.String()
			if strings.HasSuffix(value, `\`) || strings.HasSuffix(value, `"`) {
				return "", 0, errors.New(`a double-quoted value ending in \ or " is read differently by godotenv; use single quotes`)
			}
			return value, i + 1, nil
		case '\\':
			if i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0 {
				b.WriteByte(s[i+1])
				i++
				continue
			}
			return "", 0, errors.New("in double quotes only the escapes \\\\ \\\" \\$ and \\` are read the same by bash and godotenv; use single quotes")
		case '$', '`':
			return "", 0, fmt.Errorf("%q expansion is not supported (bash and godotenv expand differently); escape it or use single quotes", c)
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, errors.New("unterminated double quote")
}

// parseUnquoted returns the leading unquoted word and its length.
func parseUnquoted(s string) (string, int, error) {
	n := 0
	for n < len(s) && !isBlank(s[n]) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if !unquotedRuneOK(r) {
			return "", 0, fmt.Errorf("%q in an unquoted value is read differently by bash and godotenv; put the value in single quotes", r)
		}
		n += size
	}
	return s[:n], n, nil
}

// unquotedRuneOK reports whether r means itself, unquoted, to both parsers.
// ASCII punctuation that bash treats specially is refused; so are the runes
// godotenv trims as spaces.
func unquotedRuneOK(r rune) bool {
	switch {
	case r == utf8.RuneError, r == 0x85, r == 0xa0:
		return false
	case r >= 0x80:
		return true
	case r <= ' ', r == 0x7f:
		return false
	}
	return !strings.ContainsRune("\\'\"$`~;&|<>()", r)
}

// checkTail accepts what may follow a value: blanks, optionally followed by
// a comment. A comment needs a blank before it: bash reads 'a'#c as "a#c".
func checkTail(tail string) error {
	i := skipBlanks(tail, 0)
	if i == len(tail) || (i > 0 && tail[i] == '#') {
		return nil
	}
	return fmt.Errorf("unexpected %q after the value; quote the whole value, and put a blank before a # comment", abbreviate(tail[i:]))
}

// crossCheck gives the line to godotenv and reports whether it reads key as
// value and nothing else.
func crossCheck(line, key, value string) error {
	got, err := godotenv.Unmarshal(line)
	if err != nil {
		return fmt.Errorf("godotenv cannot read the line: %v", err)
	}
	if v, ok := got[key]; !ok || v != value || len(got) != 1 {
		return fmt.Errorf("bash reads %s as %q but godotenv reads %q", key, value, got[key])
	}
	return nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func isNameChar(c byte) bool {
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
}

func skipBlanks(s string, i int) int {
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	return i
}

func abbreviate(s string) string {
	const maxLen = 40
	if len(s) <= maxLen {
		return s
	}
	return s[:maxLen] + "..."
}
