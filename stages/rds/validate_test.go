package rds

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/testenv/stagetest"
)

// fakeVersions answers DescribeDBEngineVersions as real RDS does; moto
// does not implement it.
type fakeVersions struct {
	versions []string
	err      error
}

func (f *fakeVersions) DescribeDBEngineVersions(_ context.Context, in *rds.DescribeDBEngineVersionsInput, _ ...func(*rds.Options)) (*rds.DescribeDBEngineVersionsOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	out := &rds.DescribeDBEngineVersionsOutput{}
	for _, v := range f.versions {
		out.DBEngineVersions = append(out.DBEngineVersions, rdstypes.DBEngineVersion{Engine: in.Engine, EngineVersion: aws.String(v)})
	}
	return out, nil
}

// fakeOrderable answers DescribeOrderableDBInstanceOptions from a table of
// class -> options; moto lists nothing for postgres.
type fakeOrderable map[string][]rdstypes.OrderableDBInstanceOption

func (f fakeOrderable) DescribeOrderableDBInstanceOptions(_ context.Context, in *rds.DescribeOrderableDBInstanceOptionsInput, _ ...func(*rds.Options)) (*rds.DescribeOrderableDBInstanceOptionsOutput, error) {
	out := &rds.DescribeOrderableDBInstanceOptionsOutput{}
	for class, opts := range f {
		if in.DBInstanceClass == nil || aws.ToString(in.DBInstanceClass) == class {
			out.OrderableDBInstanceOptions = append(out.OrderableDBInstanceOptions, opts...)
		}
	}
	return out, nil
}

func option(class, storage string, multiAZ bool, minGiB int32) rdstypes.OrderableDBInstanceOption {
	return rdstypes.OrderableDBInstanceOption{DBInstanceClass: aws.String(class), Engine: aws.String("postgres"),
		StorageType: aws.String(storage), MultiAZCapable: aws.Bool(multiAZ), MinStorageSize: aws.Int32(minGiB)}
}

func testInputs(class, version, storage string) dbInputs {
	return dbInputs{class: class, version: version, storage: storage, region: "us-west-2",
		source: func(string) string { return "coder-infra.env" }}
}

var realisticVersions = &fakeVersions{versions: []string{"13.20", "16.4", "16.9", "17.2", "17.9", "17.10"}}

var realisticOrderable = fakeOrderable{
	"db.m7i.large":  {option("db.m7i.large", "gp2", true, 20), option("db.m7i.large", "gp3", true, 20)},
	"db.t4g.micro":  {option("db.t4g.micro", "gp3", false, 20)},
	"db.r7g.16xl":   {option("db.r7g.16xl", "gp3", true, 400)},
	"db.m6id.large": {option("db.m6id.large", "io1", true, 100)},
}

// assertInputError wants bad input naming key.
func assertInputError(t *testing.T, err error, key string, mentions ...string) {
	t.Helper()
	var ie *fault.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("want an InputError for %s, got %v", key, err)
	}
	if ie.Field != key {
		t.Errorf("InputError names %q, want %q: %v", ie.Field, key, err)
	}
	for _, m := range mentions {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
}

func TestEngineVersionResolution(t *testing.T) {
	cases := []struct{ want, got string }{
		{"17", "17.10"}, // numeric, not lexical: 17.10 > 17.9
		{"17.2", "17.2"},
		{"16", "16.9"},
		{"13", "13.20"},
	}
	for _, tc := range cases {
		choice, err := checkDBInputs(context.Background(), realisticVersions, realisticOrderable, testInputs("db.m7i.large", tc.want, "100"))
		if err != nil {
			t.Fatalf("%s: %v", tc.want, err)
		}
		if choice.version != tc.got || !choice.resolved || len(choice.warnings) != 0 {
			t.Errorf("DB_ENGINE_VERSION=%s resolved to %+v, want %s", tc.want, choice, tc.got)
		}
	}
}

// TestRDSRefusesUnknownInputs covers what only RDS can answer, with the
// answers real RDS gives.
func TestRDSRefusesUnknownInputs(t *testing.T) {
	cases := []struct {
		name                    string
		class, version, storage string
		key                     string
		mentions                []string
	}{
		{"unknown major", "db.m7i.large", "99", "100", config.KeyDBEngineVersion, []string{"PostgreSQL 99 is not offered", "13, 16, 17"}},
		{"unknown minor", "db.m7i.large", "17.3", "100", config.KeyDBEngineVersion, []string{"17.3"}},
		{"a minor is not a prefix of another", "db.m7i.large", "16.40", "100", config.KeyDBEngineVersion, []string{"16.40"}},
		{"unknown class", "db.zz9.huge", "17", "100", config.KeyDBInstanceClass, []string{"db.zz9.huge is not offered for PostgreSQL 17.10"}},
		{"class without Multi-AZ", "db.t4g.micro", "17", "100", config.KeyDBInstanceClass, []string{"Multi-AZ on gp3"}},
		{"class without gp3", "db.m6id.large", "17", "100", config.KeyDBInstanceClass, []string{"Multi-AZ on gp3"}},
		{"storage below the class minimum", "db.r7g.16xl", "17", "100", config.KeyDBAllocatedStorage, []string{"400 GiB minimum"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The format layer (internal/config) accepts all of these.
			for key, v := range map[string]string{config.KeyDBInstanceClass: tc.class, config.KeyDBEngineVersion: tc.version, config.KeyDBAllocatedStorage: tc.storage} {
				if _, err := config.CheckInput("coder-infra.env", key, v); err != nil {
					t.Fatalf("test case is malformed, not unknown: %v", err)
				}
			}
			_, err := checkDBInputs(context.Background(), realisticVersions, realisticOrderable, testInputs(tc.class, tc.version, tc.storage))
			assertInputError(t, err, tc.key, tc.mentions...)
		})
	}
}

// TestBadInputBothLayers: malformed values are refused by internal/config
// when inputs are resolved, and again by the stage's own Validator, both
// as bad input naming the key, and with no AWS call that changes anything.
func TestBadInputBothLayers(t *testing.T) {
	w := newWorld(t)
	cases := []struct{ key, value string }{
		{config.KeyDBInstanceClass, "m7i.large"},
		{config.KeyDBInstanceClass, "db.m7i.large; drop"},
		{config.KeyDBEngineVersion, "seventeen"},
		{config.KeyDBEngineVersion, "17.x"},
		{config.KeyDBAllocatedStorage, "10"},
		{config.KeyDBAllocatedStorage, "lots"},
	}
	cluster, err := config.LoadCluster(stagetest.ClusterConfigPath(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			file := map[string]string{"CODER_DOMAIN": "coder.example.com", tc.key: tc.value}
			_, err := config.ResolveInputs("coder-infra.env", file, nil, cluster, "cluster-config.yaml")
			assertInputError(t, err, tc.key, tc.value)

			in := testInputs("db.m7i.large", "17", "100")
			switch tc.key {
			case config.KeyDBInstanceClass:
				in.class = tc.value
			case config.KeyDBEngineVersion:
				in.version = tc.value
			default:
				in.storage = tc.value
			}
			w.Calls.Reset()
			_, err = checkDBInputs(context.Background(), w.Deps.AWS.RDS, w.Deps.AWS.RDS, in)
			assertInputError(t, err, tc.key, tc.value)
			if m := w.Calls.Mutations(); len(m) != 0 {
				t.Errorf("mutating calls: %v", m)
			}
		})
	}
}

// TestValidatorRunsBeforeAnything: ValidateAll (what the CLI calls before
// a run) refuses an unknown version; nothing is created.
func TestValidatorRunsBeforeAnything(t *testing.T) {
	w := newWorldWith(t, map[string]string{"CODER_DOMAIN": "coder.example.com", config.KeyDBEngineVersion: "99"})
	st := newStage(w.Deps)
	st.versions, st.orderable = realisticVersions, realisticOrderable
	g, err := engine.NewGraph(append(stubStages(), st.definition()))
	if err != nil {
		t.Fatal(err)
	}
	err = g.ValidateAll(context.Background(), []string{Name}, nil)
	assertInputError(t, err, config.KeyDBEngineVersion, "99")
	if fault.ExitCode(err) != 2 {
		t.Errorf("exit code %d", fault.ExitCode(err))
	}
	if m := w.Calls.Mutations(); len(m) != 0 {
		t.Errorf("mutating calls: %v", m)
	}
}

// TestMotoLookups records what moto answers (see TESTBED.md): it does not
// implement DescribeDBEngineVersions (HTTP 500) and lists no orderable
// options for postgres. The stage then warns instead of refusing, fast.
func TestMotoLookups(t *testing.T) {
	w := newWorld(t)
	start := time.Now()
	choice, err := checkDBInputs(context.Background(), w.Deps.AWS.RDS, w.Deps.AWS.RDS, testInputs("db.zz9.huge", "17", "100"))
	if err != nil {
		t.Fatalf("moto cannot answer, so a well-formed class must pass with a warning: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("lookups took %s: retries of an unimplemented call are not bounded", took)
	}
	if choice.version != "17" || choice.resolved || len(choice.warnings) != 2 {
		t.Fatalf("choice %+v", choice)
	}
	if !strings.Contains(choice.warnings[0], "HTTP 500") || !strings.Contains(choice.warnings[1], "db.zz9.huge was checked for format only") {
		t.Errorf("warnings: %q", choice.warnings)
	}
}

func TestWarningsWhenRDSCannotAnswer(t *testing.T) {
	choice, err := checkDBInputs(context.Background(), &fakeVersions{err: errors.New("AccessDenied")}, fakeOrderable{}, testInputs("db.m7i.large", "17", "100"))
	if err != nil {
		t.Fatal(err)
	}
	if len(choice.warnings) != 2 || choice.version != "17" {
		t.Errorf("choice %+v", choice)
	}
}
