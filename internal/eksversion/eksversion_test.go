package eksversion

import "testing"

func TestMinor(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"1.34", 34, true}, {"1.9", 9, true}, {"2.0", 0, false}, {"1.x", 0, false}, {"", 0, false}, {"1.34.2", 0, false},
	} {
		if got, ok := Minor(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("Minor(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
