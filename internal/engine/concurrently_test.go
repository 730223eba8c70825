package engine

import (
	"context"
	"reflect"
	"testing"
)

// The groups run at once (the first finishes only after the last has
// started) and their checks come back in the groups' order.
func TestConcurrentlyKeepsGroupOrder(t *testing.T) {
	lastStarted := make(chan struct{})
	groups := []func(context.Context) []Check{
		func(context.Context) []Check {
			<-lastStarted // would deadlock if the groups ran one by one
			return []Check{Passf("a", "first"), Passf("b", "first")}
		},
		One(func(context.Context) Check { return Failf("c", "hint", "second") }),
		func(context.Context) []Check { close(lastStarted); return []Check{Passf("d", "third")} },
	}
	var names []string
	for _, c := range Concurrently(context.Background(), groups...) {
		names = append(names, c.Name)
	}
	if want := []string{"a", "b", "c", "d"}; !reflect.DeepEqual(names, want) {
		t.Errorf("checks %v, want %v", names, want)
	}
}
