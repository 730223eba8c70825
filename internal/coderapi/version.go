package coderapi

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// MinProvisionerKeyVersion is the first Coder release that serves every
// route the provisioners stage calls: the organization's provisioner keys
// (/api/v2/organizations/{org}/provisionerkeys, GET, POST and DELETE) and
// the key-daemons listing (.../provisionerkeys/daemons), which came last:
// enterprise/coderd/coderd.go of v2.15.0 routes no "/daemons" under the
// keys, v2.16.0 does (coder/coder#14627, "add keys to organization
// provision daemons", merged September 2024).
const MinProvisionerKeyVersion = "2.16.0"

var minProvisionerKeyVersion = semver.MustParse(MinProvisionerKeyVersion)

// SupportsProvisionerKeys reports whether a Coder version ("2.36.1",
// "v2.36.1" or coderd's "v2.36.1+abcdef0") has the routes above. A
// pre-release of 2.16.0 does not count; a version that is not semver is an
// error.
func SupportsProvisionerKeys(version string) (bool, error) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(strings.TrimSpace(version), "v"))
	if err != nil {
		return false, fmt.Errorf("version %q is not MAJOR.MINOR.PATCH: %w", version, err)
	}
	return !v.LessThan(minProvisionerKeyVersion), nil
}
