package config

import "strings"

// envExampleHeader opens coder-infra.env.example.
const envExampleHeader = `# coder-infra.env: coderctl's inputs, and below them the outputs it records.
#
# Copy this file to coder-infra.env and set CODER_DOMAIN; everything else has
# a default. The file stays valid for "source coder-infra.env" in bash.
# Precedence: process environment > this file > default. An empty value
# counts as unset. Commented lines show the default: uncomment to change it.
# Never put secrets here: coderctl keeps them in AWS Secrets Manager.
`

// EnvExample renders coder-infra.env.example from the input table: each key
// with its one-line doc, required keys as empty assignments to fill in, the
// others as commented defaults. `coderctl init` writes the same text.
func EnvExample() string {
	var b strings.Builder
	b.WriteString(envExampleHeader)
	for _, k := range InputKeys() {
		b.WriteString("\n# ")
		if k.Required {
			b.WriteString("(required) ")
		}
		b.WriteString(k.Doc)
		b.WriteString("\n")
		if !k.Required {
			b.WriteString("# ")
		}
		b.WriteString(k.Key + "=" + k.Default + "\n")
	}
	return b.String()
}
