package config

import (
	"fmt"
	"regexp"

	"sigs.k8s.io/yaml"

	"github.com/coderctl/coderctl/internal/fault"
)

// invalidARNRE matches eksctl's ARN unmarshalling error, which names the
// value but not the field (accessConfig's principalARN and policyARN).
var invalidARNRE = regexp.MustCompile(`invalid ARN "([^"]*)"`)

// arnDecodeError names the accessConfig field holding the malformed ARN eksctl's
// decoder refused; nil when err is not that error.
func arnDecodeError(name string, data []byte, err error) error {
	m := invalidARNRE.FindStringSubmatch(err.Error())
	if m == nil {
		return nil
	}
	field := "accessConfig.accessEntries"
	var doc struct {
		AccessConfig struct {
			AccessEntries []struct {
				PrincipalARN   any `json:"principalARN"`
				AccessPolicies []struct {
					PolicyARN any `json:"policyARN"`
				} `json:"accessPolicies"`
			} `json:"accessEntries"`
		} `json:"accessConfig"`
	}
	if yaml.Unmarshal(data, &doc) == nil {
		for i, e := range doc.AccessConfig.AccessEntries {
			if fmt.Sprint(e.PrincipalARN) == m[1] {
				field = fmt.Sprintf("accessConfig.accessEntries[%d].principalARN", i)
				break
			}
			for j, p := range e.AccessPolicies {
				if fmt.Sprint(p.PolicyARN) == m[1] {
					field = fmt.Sprintf("accessConfig.accessEntries[%d].accessPolicies[%d].policyARN", i, j)
				}
			}
		}
	}
	return fault.Input(name, field, "use an ARN, e.g. arn:aws:iam::ACCOUNT:role/NAME", "%q is not an ARN", m[1])
}
