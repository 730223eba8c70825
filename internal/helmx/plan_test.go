package helmx

import (
	"testing"

	"github.com/coderctl/coderctl/internal/engine"
)

func TestActionFor(t *testing.T) {
	cases := map[string]engine.ActionKind{ActionInstall: engine.Create, ActionUpgrade: engine.Update, ActionNone: engine.Nothing}
	for helmAction, want := range cases {
		a := ActionFor("r", Change{Action: helmAction, Reason: "because"})
		if a.Kind != want || a.Reason != "because" {
			t.Errorf("ActionFor(%s) = %+v, want %s", helmAction, a, want)
		}
	}
}
