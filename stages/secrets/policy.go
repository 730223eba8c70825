package secrets

import (
	"encoding/json"
	"fmt"
)

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("secrets: policy does not encode: %v", err)) // built from maps of strings
	}
	return string(b)
}
