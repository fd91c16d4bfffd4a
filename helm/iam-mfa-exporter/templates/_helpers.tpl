{{- define "iam-mfa-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "iam-mfa-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "iam-mfa-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "iam-mfa-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "iam-mfa-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "iam-mfa-exporter.labels" -}}
helm.sh/chart: {{ include "iam-mfa-exporter.chart" . }}
{{ include "iam-mfa-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: iam-mfa-exporter
{{- end }}

{{- define "iam-mfa-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "iam-mfa-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- /* Seconds of a duration with one unit (s, m, h, d or w), e.g. 7d → 604800. */}}
{{- define "iam-mfa-exporter.durationSeconds" -}}
{{- $unit := regexReplaceAll "^[0-9]+" . "" }}
{{- $seconds := dict "s" 1 "m" 60 "h" 3600 "d" 86400 "w" 604800 }}
{{- if not (hasKey $seconds $unit) }}
{{- fail (printf "%q: expected a number and one of s, m, h, d, w (e.g. 7d)" .) }}
{{- end }}
{{- mul (trimSuffix $unit . | atoi) (get $seconds $unit) }}
{{- end }}

{{- /* The image reference: [registry/]repository[:tag][@digest]; global.imageRegistry is the
default registry, as in the prometheus-community charts. */}}
{{- define "iam-mfa-exporter.image" -}}
{{- $registry := .Values.image.registry | default ((.Values.global).imageRegistry) }}
{{- $ref := .Values.image.repository }}
{{- with $registry }}{{ $ref = printf "%s/%s" (trimSuffix "/" .) $ref }}{{ end }}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- if .Values.image.tag }}{{ printf "%s:%s@%s" $ref $tag .Values.image.digest }}{{ else }}{{ printf "%s@%s" $ref .Values.image.digest }}{{ end }}
{{- else }}
{{- printf "%s:%s" $ref $tag }}
{{- end }}
{{- end }}
