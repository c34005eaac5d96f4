"""Minimal CRDs of the third-party kinds the chart and the overlays may create.

The test API server knows nothing of the Prometheus Operator or cert-manager, so a server-side
dry run of a ServiceMonitor, a PrometheusRule or a Certificate needs their CRDs. These carry
the real group, version, scope and names, and a structural schema of the fields netweave
uses, spelled as upstream spells them: an unknown field is pruned by the server, and the
tests compare what the dry run answers with what was sent, so a misspelt field fails. Parts
netweave passes through untouched (label selectors, relabelings) keep unknown fields.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_STRING: Schema = {"type": "string"}
_STRINGS: Schema = {"type": "array", "items": _STRING}
_STRING_MAP: Schema = {"type": "object", "additionalProperties": _STRING}
_OPEN: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_DURATION: Schema = {"type": "string", "pattern": "^(0|(([0-9]+)(y|w|d|h|m|s|ms))+)$"}
_SECRET_KEY: Schema = {
    "type": "object",
    "required": ["key"],
    "properties": {"name": _STRING, "key": _STRING, "optional": {"type": "boolean"}},
}


def _crd(group: str, version: str, kind: str, plural: str, spec: Schema) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {"spec": spec},
                        }
                    },
                }
            ],
        },
    }


_TLS_CONFIG: Schema = {
    "type": "object",
    "properties": {
        "ca": {"type": "object", "properties": {"secret": _SECRET_KEY, "configMap": _SECRET_KEY}},
        "cert": {"type": "object", "properties": {"secret": _SECRET_KEY, "configMap": _SECRET_KEY}},
        "keySecret": _SECRET_KEY,
        "serverName": _STRING,
        "insecureSkipVerify": {"type": "boolean"},
        "caFile": _STRING,
        "certFile": _STRING,
        "keyFile": _STRING,
    },
}

SERVICE_MONITOR_CRD = _crd(
    "monitoring.coreos.com",
    "v1",
    "ServiceMonitor",
    "servicemonitors",
    {
        "type": "object",
        "required": ["selector"],
        "properties": {
            "selector": _OPEN,
            "namespaceSelector": {
                "type": "object",
                "properties": {"any": {"type": "boolean"}, "matchNames": _STRINGS},
            },
            "jobLabel": _STRING,
            "endpoints": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "port": _STRING,
                        "path": _STRING,
                        "scheme": {"type": "string", "enum": ["http", "https"]},
                        "interval": _DURATION,
                        "scrapeTimeout": _DURATION,
                        "tlsConfig": _TLS_CONFIG,
                        "honorLabels": {"type": "boolean"},
                        "relabelings": {"type": "array", "items": _OPEN},
                        "metricRelabelings": {"type": "array", "items": _OPEN},
                    },
                },
            },
        },
    },
)

PROMETHEUS_RULE_CRD = _crd(
    "monitoring.coreos.com",
    "v1",
    "PrometheusRule",
    "prometheusrules",
    {
        "type": "object",
        "properties": {
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "interval": _STRING,
                        "rules": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["expr"],
                                "properties": {
                                    "alert": _STRING,
                                    "record": _STRING,
                                    "expr": {"x-kubernetes-int-or-string": True},
                                    "for": _STRING,
                                    "keep_firing_for": _STRING,
                                    "labels": _STRING_MAP,
                                    "annotations": _STRING_MAP,
                                },
                            },
                        },
                    },
                },
            }
        },
    },
)

_KEY_USAGES = [
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
]

CERTIFICATE_CRD = _crd(
    "cert-manager.io",
    "v1",
    "Certificate",
    "certificates",
    {
        "type": "object",
        "required": ["secretName", "issuerRef"],
        "properties": {
            "secretName": _STRING,
            "commonName": _STRING,
            "dnsNames": _STRINGS,
            "uris": _STRINGS,
            "ipAddresses": _STRINGS,
            "duration": _STRING,
            "renewBefore": _STRING,
            "isCA": {"type": "boolean"},
            "usages": {"type": "array", "items": {"type": "string", "enum": _KEY_USAGES}},
            "privateKey": {
                "type": "object",
                "properties": {
                    "algorithm": {"type": "string", "enum": ["RSA", "ECDSA", "Ed25519"]},
                    "size": {"type": "integer"},
                    "encoding": {"type": "string", "enum": ["PKCS1", "PKCS8"]},
                    "rotationPolicy": {"type": "string", "enum": ["Never", "Always"]},
                },
            },
            "issuerRef": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": _STRING, "kind": _STRING, "group": _STRING},
            },
        },
    },
)

#: every CRD the deployment tests install
CRDS = [SERVICE_MONITOR_CRD, PROMETHEUS_RULE_CRD, CERTIFICATE_CRD]
