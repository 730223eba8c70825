package rds

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/fault"
)

// minGP3StorageGiB is RDS's smallest gp3 volume for PostgreSQL, used when
// RDS cannot say (DescribeOrderableDBInstanceOptions gives MinStorageSize).
const minGP3StorageGiB = 20

// lookupAttempts bounds the SDK's retries of the two lookups the stage can
// do without: a service that does not implement them (moto answers HTTP
// 500) must not hold every run for half a minute of backoff.
const lookupAttempts = 3

// engineChoice is what checking the database inputs against RDS found.
type engineChoice struct {
	// version is what CreateDBInstance gets: the newest minor of the wanted
	// major, or the input itself when RDS could not list its versions.
	version  string
	resolved bool
	// warnings are checks RDS could not answer; apply shows them as notices.
	warnings []string
	// change is the engine version change the existing instance needs
	// (nil: none, or no instance yet).
	change *versionChange
}

// dbInputs are the values the Validator checks and where each came from.
type dbInputs struct {
	class, version string
	storage        string
	region         string
	source         func(key string) string
}

func (s *stage) inputs() dbInputs {
	in := s.d.Inputs
	return dbInputs{
		class:   in.Get(config.KeyDBInstanceClass),
		version: in.Get(config.KeyDBEngineVersion),
		storage: in.Get(config.KeyDBAllocatedStorage),
		region:  s.d.Region(),
		source:  in.Source,
	}
}

// validate is the stage's Validate func: bad database inputs are refused before
// anything is created.
func (s *stage) validate(ctx context.Context) error {
	_, err := s.checkedInputs(ctx)
	return err
}

// checkedInputs checks the inputs once per run and remembers the outcome.
func (s *stage) checkedInputs(ctx context.Context) (*engineChoice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.choice == nil {
		in := s.inputs()
		choice, err := checkDBInputs(ctx, s.versions, s.orderable, in)
		if err != nil {
			return nil, err
		}
		// An existing instance bounds what the inputs may ask: its storage
		// cannot shrink and its engine cannot go down or up a major
		// without the flag.
		if s.d.AWS != nil {
			inst, err := s.findInstance(ctx)
			if err != nil {
				return nil, err
			}
			if inst != nil {
				if err := s.checkExisting(ctx, in, choice, inst); err != nil {
					return nil, err
				}
			}
		}
		s.choice = choice
	}
	return s.choice, nil
}

// checkDBInputs checks the format of each value (as internal/config does,
// whatever built the inputs), then asks RDS whether the version, class and
// storage exist. What RDS cannot answer becomes a warning, not a refusal.
func checkDBInputs(ctx context.Context, versions rds.DescribeDBEngineVersionsAPIClient,
	orderable rds.DescribeOrderableDBInstanceOptionsAPIClient, in dbInputs) (*engineChoice, error) {
	for _, kv := range [][2]string{{config.KeyDBInstanceClass, in.class}, {config.KeyDBEngineVersion, in.version}, {config.KeyDBAllocatedStorage, in.storage}} {
		if kv[1] == "" {
			return nil, fault.Input(in.source(kv[0]), kv[0], "set it in coder-infra.env or leave it unset for the default", "empty")
		}
		if _, err := config.CheckInput(in.source(kv[0]), kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	storage, _ := strconv.Atoi(in.storage)
	if storage < minGP3StorageGiB {
		return nil, storageTooSmall(in, storage, minGP3StorageGiB)
	}
	choice, err := resolveEngineVersion(ctx, versions, in)
	if err != nil {
		return nil, err
	}
	warning, err := checkOrderable(ctx, orderable, in, choice, int32(storage))
	if err != nil {
		return nil, err
	}
	if warning != "" {
		choice.warnings = append(choice.warnings, warning)
	}
	return choice, nil
}

func storageTooSmall(in dbInputs, have, minimum int) error {
	return fault.Input(in.source(config.KeyDBAllocatedStorage), config.KeyDBAllocatedStorage,
		fmt.Sprintf("use at least %d, e.g. DB_ALLOCATED_STORAGE=100", minimum),
		"%d GiB is below the %d GiB minimum of gp3 storage for PostgreSQL on %s", have, minimum, in.class)
}

// resolveEngineVersion turns DB_ENGINE_VERSION ("17" or "17.5") into the
// newest matching version RDS offers.
func resolveEngineVersion(ctx context.Context, client rds.DescribeDBEngineVersionsAPIClient, in dbInputs) (*engineChoice, error) {
	all, err := listEngineVersions(ctx, client)
	if err != nil || len(all) == 0 {
		reason := "no versions listed"
		if err != nil {
			reason = shortError(err)
		}
		return &engineChoice{version: in.version, warnings: []string{fmt.Sprintf(
			"could not list RDS PostgreSQL versions (%s): DB_ENGINE_VERSION %s was checked for format only, and RDS picks the minor version",
			reason, in.version)}}, nil
	}
	if v := newestMatching(all, in.version); v != "" {
		return &engineChoice{version: v, resolved: true}, nil
	}
	return nil, fault.Input(in.source(config.KeyDBEngineVersion), config.KeyDBEngineVersion,
		"RDS offers PostgreSQL "+strings.Join(majors(all), ", "),
		"PostgreSQL %s is not offered by RDS in %s", in.version, in.region)
}

func listEngineVersions(ctx context.Context, client rds.DescribeDBEngineVersionsAPIClient) ([]string, error) {
	pager := rds.NewDescribeDBEngineVersionsPaginator(client, &rds.DescribeDBEngineVersionsInput{Engine: aws.String(dbEngine)})
	var out []string
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx, func(o *rds.Options) { o.RetryMaxAttempts = lookupAttempts })
		if err != nil {
			return nil, err
		}
		for _, v := range page.DBEngineVersions {
			out = append(out, aws.ToString(v.EngineVersion))
		}
	}
	return out, nil
}

// newestMatching picks the newest of versions that is want ("17.5") or a
// minor of it ("17" matches 17.x).
func newestMatching(versions []string, want string) string {
	best := ""
	for _, v := range versions {
		if v != want && !strings.HasPrefix(v, want+".") {
			continue
		}
		if best == "" || versionLess(best, v) {
			best = v
		}
	}
	return best
}

// versionLess compares dotted versions numerically (17.10 > 17.9).
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea != nil || eb != nil {
			if pa[i] != pb[i] {
				return pa[i] < pb[i]
			}
			continue
		}
		if na != nb {
			return na < nb
		}
	}
	return len(pa) < len(pb)
}

// majors lists the distinct major versions, oldest first.
func majors(versions []string) []string {
	var out []string
	for _, v := range versions {
		m, _, _ := strings.Cut(v, ".")
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		if versionLess(a, b) {
			return -1
		}
		if versionLess(b, a) {
			return 1
		}
		return 0
	})
	return out
}

// checkOrderable asks RDS whether the class runs PostgreSQL Multi-AZ on gp3
// and what the smallest volume is. An empty answer for the class means the
// class is unknown only if RDS lists other PostgreSQL options at all; moto,
// for one, lists none, and then the class was checked for format only.
func checkOrderable(ctx context.Context, client rds.DescribeOrderableDBInstanceOptionsAPIClient, in dbInputs, choice *engineChoice, storage int32) (string, error) {
	q := &rds.DescribeOrderableDBInstanceOptionsInput{Engine: aws.String(dbEngine), DBInstanceClass: aws.String(in.class), MaxRecords: aws.Int32(100)}
	if choice.resolved {
		q.EngineVersion = aws.String(choice.version)
	}
	limit := func(o *rds.Options) { o.RetryMaxAttempts = lookupAttempts }
	out, err := client.DescribeOrderableDBInstanceOptions(ctx, q, limit)
	if err != nil {
		return fmt.Sprintf("could not check DB_INSTANCE_CLASS %s with RDS (%s): checked for format only", in.class, shortError(err)), nil
	}
	if len(out.OrderableDBInstanceOptions) == 0 {
		probe, err := client.DescribeOrderableDBInstanceOptions(ctx, &rds.DescribeOrderableDBInstanceOptionsInput{Engine: aws.String(dbEngine), MaxRecords: aws.Int32(20)}, limit)
		if err != nil || len(probe.OrderableDBInstanceOptions) == 0 {
			return fmt.Sprintf("RDS lists no orderable PostgreSQL instance options here: DB_INSTANCE_CLASS %s was checked for format only, storage against the %d GiB gp3 minimum",
				in.class, minGP3StorageGiB), nil
		}
		return "", fault.Input(in.source(config.KeyDBInstanceClass), config.KeyDBInstanceClass,
			"e.g. db.m7i.large; see `aws rds describe-orderable-db-instance-options --engine postgres`",
			"%s is not offered for PostgreSQL %s in %s", in.class, choice.version, in.region)
	}
	minimum := int32(0)
	for _, o := range out.OrderableDBInstanceOptions {
		if usable(o) && (minimum == 0 || aws.ToInt32(o.MinStorageSize) < minimum) {
			minimum = max(aws.ToInt32(o.MinStorageSize), 1)
		}
	}
	if minimum == 0 {
		return "", fault.Input(in.source(config.KeyDBInstanceClass), config.KeyDBInstanceClass, "choose a class that offers Multi-AZ gp3, e.g. db.m7i.large",
			"%s cannot run PostgreSQL %s Multi-AZ on gp3 storage in %s", in.class, choice.version, in.region)
	}
	if storage < minimum {
		return "", storageTooSmall(in, int(storage), int(minimum))
	}
	return "", nil
}

func usable(o rdstypes.OrderableDBInstanceOption) bool {
	return aws.ToString(o.StorageType) == storageType && aws.ToBool(o.MultiAZCapable)
}

// shortError is an AWS error's code, or its HTTP status when the answer
// was not an AWS error at all (a service that does not implement the call).
func shortError(err error) string {
	if code := awsx.ErrorCode(err); code != "" && code != "UnknownError" {
		return code
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return fmt.Sprintf("HTTP %d", re.HTTPStatusCode())
	}
	return err.Error()
}
