{{/* Labels on every object; selectors use only name and component. */}}
{{- define "mira.labels" -}}
app.kubernetes.io/name: mira-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The image: pinned by digest when image.digest is set, else the tag (default: appVersion). */}}
{{- define "mira.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
{{- end }}

{{/* The container securityContext of both containers (values.securityContext). */}}
{{- define "mira.containerSecurityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end }}

{{/*
Scheduling of one component: mira.scheduling (dict "root" $ "component" "manager").
The component's own nodeSelector, tolerations and affinity win over the top-level ones.
*/}}
{{- define "mira.scheduling" -}}
{{- $c := index .root.Values .component -}}
{{- with ($c.nodeSelector | default .root.Values.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with ($c.tolerations | default .root.Values.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with ($c.affinity | default .root.Values.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Egress every component needs: DNS and the API server (networkPolicy values as context). */}}
{{- define "mira.egressDNSAndAPIServer" -}}
# DNS, in any namespace (kube-dns, node-local caches).
- ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
# The API server.
- ports:
    {{- range .apiServer.ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
  {{- with .apiServer.cidrs }}
  to:
    {{- range . }}
    - ipBlock: {cidr: {{ . }}}
    {{- end }}
  {{- end }}
{{- end }}

