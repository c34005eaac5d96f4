{{/*
Names, labels, API versions and the checks that refuse a configuration the gateway could
not run with (better a failed `helm install` than a crash-looping pod).
*/}}

{{- define "netweave.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "netweave.fullname" -}}
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

{{- define "netweave.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "netweave.selectorLabels" -}}
app.kubernetes.io/name: {{ include "netweave.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "netweave.labels" -}}
helm.sh/chart: {{ include "netweave.chart" . }}
{{ include "netweave.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: o2ims-gateway
app.kubernetes.io/part-of: netweave
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "netweave.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "netweave.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name the existing service account (serviceAccount.create is false)" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "netweave.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
API versions. A live cluster (helm install/upgrade, or helm template with
--api-versions) lists group/version/Kind entries, so the kind is asked for first; an
offline `helm template` only knows group/versions, so the Kubernetes version decides.
*/}}
{{- define "netweave.pdb.apiVersion" -}}
{{- if .Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget" -}}
policy/v1
{{- else if .Capabilities.APIVersions.Has "policy/v1beta1/PodDisruptionBudget" -}}
policy/v1beta1
{{- else if semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version -}}
policy/v1
{{- else -}}
policy/v1beta1
{{- end -}}
{{- end }}

{{- define "netweave.hpa.apiVersion" -}}
{{- if .Capabilities.APIVersions.Has "autoscaling/v2/HorizontalPodAutoscaler" -}}
autoscaling/v2
{{- else if .Capabilities.APIVersions.Has "autoscaling/v2beta2/HorizontalPodAutoscaler" -}}
autoscaling/v2beta2
{{- else if semverCompare ">=1.23-0" .Capabilities.KubeVersion.Version -}}
autoscaling/v2
{{- else -}}
autoscaling/v2beta2
{{- end -}}
{{- end }}

{{/* The Service's names: what the serving certificate must name. */}}
{{- define "netweave.serviceDNSNames" -}}
{{- $svc := include "netweave.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $domain := .Values.clusterDomain -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns $domain) | toJson -}}
{{- end }}

{{- define "netweave.tlsSecretName" -}}
{{- if eq .Values.tls.source "certManager" }}
{{- default (printf "%s-tls" (include "netweave.fullname" .)) .Values.tls.certManager.secretName }}
{{- else }}
{{- required "tls.existingSecret: name the kubernetes.io/tls Secret of the serving certificate (or set tls.source=certManager)" .Values.tls.existingSecret }}
{{- end }}
{{- end }}

{{- define "netweave.scheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end }}
{{- end }}

{{/* The apiRoot clients use (OCloudInfo.serviceUri and every notification carry it). */}}
{{- define "netweave.serviceUri" -}}
{{- if .Values.config.service_uri }}
{{- .Values.config.service_uri }}
{{- else }}
{{- printf "%s://%s.%s.svc:%v" (include "netweave.scheme" .) (include "netweave.fullname" .) .Release.Namespace .Values.service.port }}
{{- end }}
{{- end }}

{{- define "netweave.tenancyConfigMap" -}}
{{- if .Values.tenancy.existingConfigMap }}
{{- .Values.tenancy.existingConfigMap }}
{{- else if .Values.tenancy.file }}
{{- printf "%s-tenancy" (include "netweave.fullname" .) }}
{{- end }}
{{- end }}

{{/*
A setting of values.config as the text of its NETWEAVE_* variable: maps and lists as
JSON, whole numbers without an exponent (Helm reads every number as a float, and
1000000 would otherwise become "1e+06").
*/}}
{{- define "netweave.settingValue" -}}
{{- $v := . -}}
{{- if or (kindIs "map" $v) (kindIs "slice" $v) -}}
{{- toJson $v -}}
{{- else if and (kindIs "float64" $v) (eq $v (floor $v)) -}}
{{- int64 $v -}}
{{- else -}}
{{- toString $v -}}
{{- end -}}
{{- end }}

{{/*
Refuse what cannot work or is unsafe; rendered (as nothing) by the Deployment.
*/}}
{{- define "netweave.validate" -}}
{{- $managed := list "host" "port" "tls_cert_file" "tls_key_file" "tls_client_ca_file" "tls_client_cert_mode" "tenancy_file" "paging_secret_file" "notification_secret_file" "token_key_files" "redis_url" "kubeconfig" -}}
{{- $secret := list "paging_secret" "notification_secret" "redis_url" -}}
{{- range $key, $value := .Values.config -}}
{{- if ne $key (lower $key) -}}
{{- fail (printf "config.%s: settings are the lower-case names without NETWEAVE_ (e.g. log_level)" $key) -}}
{{- end -}}
{{- if has $key $secret -}}
{{- fail (printf "config.%s: a secret never goes in values; put it in a Secret and name it (paging.existingSecret, notifications.signingSecret.existingSecret, redis.url.existingSecret)" $key) -}}
{{- end -}}
{{- if has $key $managed -}}
{{- fail (printf "config.%s: set by the chart from its own values (tls, mtls, tenancy, paging, notifications, auth.tokenKeys, redis, service)" $key) -}}
{{- end -}}
{{- end -}}
{{- if not (has .Values.redis.mode (list "none" "url" "sentinel")) -}}
{{- fail "redis.mode: none, url or sentinel" -}}
{{- end -}}
{{- if not (has .Values.tls.source (list "secret" "certManager")) -}}
{{- fail "tls.source: secret or certManager" -}}
{{- end -}}
{{- $replicated := or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled -}}
{{- if and $replicated (eq .Values.redis.mode "none") -}}
{{- fail "redis.mode: several replicas share subscriptions, the outbox and tenancy only through Redis; set redis.mode (url or sentinel) or replicaCount=1 without autoscaling" -}}
{{- end -}}
{{- if and $replicated (not .Values.paging.existingSecret) -}}
{{- fail "paging.existingSecret: several replicas must sign paging markers with one key; name a Secret holding it" -}}
{{- end -}}
{{- if and .Values.mtls.enabled (not .Values.tls.enabled) -}}
{{- fail "mtls.enabled: client certificates need TLS (tls.enabled)" -}}
{{- end -}}
{{- if and .Values.mtls.enabled (not (has .Values.mtls.clientCertMode (list "optional" "required"))) -}}
{{- fail "mtls.clientCertMode: optional or required" -}}
{{- end -}}
{{- $token := .Values.config.token_issuer -}}
{{- $open := not (or .Values.mtls.enabled $token (eq (toString .Values.config.auth_mode) "mtls") (eq (toString .Values.config.auth_mode) "any") (eq (toString .Values.config.auth_mode) "both")) -}}
{{- if and $open (ne (toString .Values.config.insecure) "true") -}}
{{- fail "authentication: configure mtls.enabled, or token_issuer and its keys (config and auth.tokenKeys), or set config.insecure=true to serve every request as platform-admin (never in production)" -}}
{{- end -}}
{{- if and (eq .Values.redis.mode "sentinel") (not .Values.redis.sentinel.hosts) -}}
{{- fail "redis.sentinel.hosts: list the sentinels (host:port)" -}}
{{- end -}}
{{- if and (eq .Values.redis.mode "url") (not .Values.redis.url.existingSecret) -}}
{{- fail "redis.url.existingSecret: name the Secret holding the Redis URL" -}}
{{- end -}}
{{- end }}
