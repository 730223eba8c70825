package state

import "strings"

// SplitList reads a list value of the state file (PRIVATE_SUBNET_IDS,
// NODEGROUPS): comma-separated, blanks around items and empty items ignored.
func SplitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
