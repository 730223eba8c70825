package helmx

import "testing"

func TestNewestForMinor(t *testing.T) {
	releases := []ChartVersion{
		{"9.52.0-rc.1", "1.35.0"},
		{"9.51.0", "1.35.0-beta.0"},
		{"9.50.1", "1.34.1"},
		{"9.50.0", "1.34.0"},
		{"9.46.6", "v1.32.1"},
		{"junk", "1.33.0"},
	}
	tests := []struct {
		minor, want string
		ok          bool
	}{
		{"1.34", "9.50.1", true}, // newest of the 1.34 line
		{"1.32", "9.46.6", true}, // a "v" in appVersion is read
		{"1.35", "", false},      // only prereleases: none stable
		{"1.33", "", false},      // chart version that is not semver is skipped
		{"1.3", "", false},       // 1.3 is not 1.34
	}
	for _, tc := range tests {
		got, ok := NewestForMinor(releases, tc.minor)
		if ok != tc.ok || got.Version != tc.want {
			t.Errorf("NewestForMinor(%s) = %q, %v; want %q, %v", tc.minor, got.Version, ok, tc.want, tc.ok)
		}
	}
}

func TestNewerOrdersBySemver(t *testing.T) {
	if !newer("9.10.0", "9.9.0") || newer("9.9.0", "9.10.0") || newer("x", "1.0.0") || !newer("1.0.0", "x") {
		t.Error("newer does not order by semver with unparsable versions last")
	}
}
