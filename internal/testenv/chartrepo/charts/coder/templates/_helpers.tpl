{{/* TEST STAND-IN helpers; names and labels follow the real chart. */}}
{{- define "coder.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "coder.selectorLabels" -}}
app.kubernetes.io/name: {{ include "coder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "coder.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "coder.selectorLabels" . }}
app.kubernetes.io/part-of: {{ include "coder.name" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "coder.image" -}}
{{ .Values.coder.image.repo }}:{{ .Values.coder.image.tag | default (printf "v%v" .Chart.AppVersion) }}
{{- end }}

{{- define "coder.tlsEnabled" -}}
{{- if and (hasKey .Values.coder "tls") .Values.coder.tls.secretNames }}true{{ else }}false{{ end }}
{{- end }}

{{- define "coder.defaultAccessURL" -}}
{{- if eq (include "coder.tlsEnabled" .) "true" }}https{{ else }}http{{ end }}://coder.{{ .Release.Namespace }}.svc.cluster.local
{{- end }}

{{/* envHas returns "true" when coder.env sets the variable named .name. */}}
{{- define "coder.envHas" -}}
{{- $found := false }}
{{- range .env }}{{ if eq .name $.name }}{{ $found = true }}{{ end }}{{ end }}
{{- $found }}
{{- end }}
