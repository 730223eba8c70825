package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/names"
)

// Defaults for fields the master secret may leave out; the rds stage
// writes all of them.
const (
	defaultDBUser = names.MasterUsername
	defaultDBName = names.DatabaseName
	defaultDBPort = 5432
)

// masterSecret is the JSON document the rds stage keeps in
// coder/<deployment>/db-master,
// in the shape RDS and the AWS console use for database credentials.
type masterSecret struct {
	Username string          `json:"username"`
	Password string          `json:"password"`
	Host     string          `json:"host"`
	Port     json.RawMessage `json:"port"`
	DBName   string          `json:"dbname"`
}

// readMasterSecret reads and decodes the master secret. Its errors never
// quote the document: it holds the password.
func (s *stage) readMasterSecret(ctx context.Context, arn string) (*masterSecret, error) {
	out, err := s.d.AWS.SecretsManager.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return nil, awsx.Describe("read the database master secret "+arn, err)
	}
	var doc masterSecret
	if json.Unmarshal([]byte(aws.ToString(out.SecretString)), &doc) != nil {
		return nil, fmt.Errorf("database master secret %s is not the JSON document the rds stage writes (username, password, host, port, dbname): run 'coderctl stage rds apply'", arn)
	}
	if doc.Password == "" {
		return nil, fmt.Errorf("database master secret %s has no password: run 'coderctl stage rds apply'", arn)
	}
	return &doc, nil
}

// portOf reads the port, which RDS writes as a number and people as a
// string.
func (m *masterSecret) portOf() (int, bool) {
	raw := strings.Trim(strings.TrimSpace(string(m.Port)), `"`)
	if raw == "" || raw == "null" {
		return 0, false
	}
	p, err := strconv.Atoi(raw)
	return p, err == nil && p > 0 && p < 65536
}

// databaseURL builds coder/<deployment>/database-url's value from the master secret and
// the endpoint the rds stage recorded (the secret's host and port when
// state has none). RDS for PostgreSQL forces TLS, hence sslmode=require.
func (s *stage) databaseURL(ctx context.Context) (string, error) {
	arn, err := s.d.Output(names.KeyMasterSecretARN, names.StageRDS)
	if err != nil {
		return "", err
	}
	doc, err := s.readMasterSecret(ctx, arn)
	if err != nil {
		return "", err
	}
	host := firstNonEmpty(s.d.State.Get(names.KeyRDSEndpoint), doc.Host)
	if host == "" {
		return "", fmt.Errorf("%s is not in %s yet and the master secret names no host: run 'coderctl stage rds apply' first", names.KeyRDSEndpoint, s.d.State.Path())
	}
	port := defaultDBPort
	if p, ok := doc.portOf(); ok {
		port = p
	}
	if v := s.d.State.Get(names.KeyRDSPort); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p <= 0 || p >= 65536 {
			return "", fmt.Errorf("%s=%q in %s is not a port: run 'coderctl stage rds apply' to record it again", names.KeyRDSPort, v, s.d.State.Path())
		}
		port = p
	}
	return postgresURL(firstNonEmpty(doc.Username, defaultDBUser), doc.Password, host, port, firstNonEmpty(doc.DBName, defaultDBName)), nil
}

// postgresURL formats a libpq connection URI. User, password and database
// are percent-encoded byte by byte except RFC 3986's unreserved characters,
// so every URI parser (Go's, libpq's) reads back exactly what was stored.
func postgresURL(user, password, host string, port int, dbname string) string {
	return "postgres://" + escapeAll(user) + ":" + escapeAll(password) + "@" +
		net.JoinHostPort(host, strconv.Itoa(port)) + "/" + escapeAll(dbname) + "?sslmode=require"
}

func escapeAll(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// dbURL is the database URL secret, coder/<deployment>/database-url.
func (s *stage) dbURL() managed { return s.managedSecret(names.DatabaseURLSecretLeaf) }

func (s *stage) planDatabaseURL(ctx context.Context) ([]engine.Action, error) {
	if s.d.State.Get(names.KeyMasterSecretARN) == "" {
		acts, err := s.secretPlan(ctx, s.dbURL(), s.d.State.Get(names.KeyDatabaseURLSecretARN), "")
		if err != nil {
			return nil, err
		}
		switch act := &acts[0]; {
		case act.Kind != engine.Create:
			act.Kind, act.Reason = engine.Update, "rebuild once the rds stage records the database"
		case strings.HasPrefix(act.Reason, "move"):
			act.Reason += ", once the rds stage records the database"
		default:
			act.Reason = "create from the database master secret once the rds stage has made it"
		}
		return acts, nil
	}
	value, err := s.databaseURL(ctx)
	if err != nil {
		return nil, err
	}
	return s.secretPlan(ctx, s.dbURL(), s.d.State.Get(names.KeyDatabaseURLSecretARN), value)
}

func (s *stage) applyDatabaseURL(ctx context.Context, r engine.Reporter) error {
	value, err := s.databaseURL(ctx)
	if err != nil {
		return err
	}
	return s.convergeSecret(ctx, r, s.dbURL(), s.d.State.Get(names.KeyDatabaseURLSecretARN), value, func(arn string) error {
		return s.recordIfChanged(names.KeyDatabaseURLSecretARN, arn)
	})
}

func (s *stage) destroyDatabaseURL(ctx context.Context, r engine.Reporter) error {
	if err := s.destroySecret(ctx, r, s.dbURL(), s.d.State.Get(names.KeyDatabaseURLSecretARN)); err != nil {
		return err
	}
	return s.d.State.Unset(names.KeyDatabaseURLSecretARN)
}

// recordIfChanged records an output, leaving the state file untouched when
// it already holds the value.
func (s *stage) recordIfChanged(key, value string) error {
	if s.d.State.Get(key) == value {
		return nil
	}
	return s.d.Record(map[string]string{key: value})
}
