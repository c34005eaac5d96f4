"""Pure mapping of Kubernetes objects to O2-IMS inventory models.

The inputs are Kubernetes objects as plain JSON mappings, exactly as the API server
returns them (``kubectl get node -o json``, list items, watch event objects); the outputs
are the wire models of :mod:`netweave.models.inventory`.  Nothing here does I/O or keeps
state: the same objects and :class:`MappingContext` always give the same models.

========================  ===========================================  ============================
O2-IMS object             Kubernetes source                            id (``stable_id`` kind:key)
========================  ===========================================  ============================
DeploymentManager         the cluster: API server URL, version, node   ``cluster``: kube-system
                          capacity summed                              namespace uid
ResourcePool (MachineSet) a cluster-api ``MachineSet``                 ``machineset``: its uid
ResourcePool (CR)         a netweave ``ResourcePool`` custom resource  ``resourcepool``: its uid
                          (``o2ims.oran.org/v1alpha1``) and the nodes
                          labelled with its name
ResourcePool (label)      nodes labelled ``o2ims.oran.org/             ``label-pool``: label value
                          resource-pool=<value>``
ResourcePool (default)    nodes without that label                     ``label-pool``: default name
Resource                  a ``Node``                                   ``node``: node uid
ResourceType (compute)    a node shape: instance type, architecture,   ``node-shape``:
                          vendor (from ``spec.providerID``)            ``type|arch|vendor``
ResourceType (storage)    a ``StorageClass``                           ``storageclass``: its uid
========================  ===========================================  ============================

A node belongs to the pool of the MachineSet that owns it (cluster-api annotations
``cluster.x-k8s.io/owner-kind``/``owner-name``/``cluster-namespace``) when that MachineSet
is known, else to the pool named by its pool label: the ``ResourcePool`` object of that
name when there is one (it takes the label pool over: its id, description, location and
owner), else the label pool; else to the default pool.  A node labelled with the default
pool's name is in the default pool (and a ``ResourcePool`` of that name is ignored).

Pools netweave created carry ``o2ims.netweave.io/managed-by: netweave``; on a MachineSet,
annotations also record what cluster-api has no field for (location, instance type,
taints, the labels netweave applied).

Stability: an O2-IMS object changes only when something an SMO cares about changes.
``resourceVersion``, ``managedFields``, condition heartbeat and transition times, taint
``timeAdded``, ``status.images``, ``volumesInUse``/``volumesAttached``, ``bootID`` and
``machineID`` never reach a model (``bootID`` changes on every reboot; the reboot shows
anyway through the conditions while it matters).  Only allow-listed annotations
(:data:`NODE_ANNOTATIONS`) are kept: the others are large (OVN, Calico, CSI node ids) or
churn (machine-config state).  ``creationTimestamp`` is kept: it never changes.
Condition messages are verbatim except that an elapsed time ("... 3m5.2s ago", as in
kubelet's PLEG message, which is rewritten on every status update) reads "some time ago".

Resource kinds of node shapes: ``PHYSICAL`` for bare-metal providers (Metal3, and cloud
bare-metal instance types such as AWS ``*.metal``), ``LOGICAL`` for cloud VMs, vSphere
and OpenStack VMs and kind containers, ``UNDEFINED`` when the provider is unknown: a node
without a providerID may be a server or a VM, and a Node object does not say which.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Final, Literal, NamedTuple

from netweave.models.ids import alarm_dictionary_id, stable_id
from netweave.models.inventory import DeploymentManager, Resource, ResourcePool, ResourceType
from netweave.models.ownership import SHARED, Ownership, ownership_fields

__all__ = [
    "DEFAULT_POOL_LABEL",
    "NODE_ANNOTATIONS",
    "MappingContext",
    "NodeShape",
    "cluster_capacity",
    "deployment_manager_for_cluster",
    "deployment_manager_id",
    "is_managed",
    "label_pool_id",
    "machineset_key",
    "machineset_pool_id",
    "node_resource_id",
    "node_shape",
    "node_shape_type_id",
    "parse_quantity",
    "pool_id_for_node",
    "pool_label_value",
    "resource_for_node",
    "resource_pool_for_label",
    "resource_pool_for_machineset",
    "resource_pool_for_object",
    "resource_pool_object_id",
    "resource_pools_by_name",
    "resource_type_for_shape",
    "resource_type_for_storage_class",
    "storage_class_is_default",
    "storage_class_type_id",
]

JsonMap = Mapping[str, Any]
ResourceKind = Literal["UNDEFINED", "PHYSICAL", "LOGICAL"]

DEFAULT_POOL_LABEL: Final = "o2ims.oran.org/resource-pool"
DEFAULT_TENANT_LABEL: Final = "o2ims.netweave.io/tenant"
DEFAULT_SHARED_LABEL: Final = "o2ims.netweave.io/shared"
#: what a tenant id looks like (a DNS label); other owner values are ignored
_TENANT_ID = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
DESCRIPTION_ANNOTATION: Final = "o2ims.oran.org/description"
#: marks a pool's object (MachineSet, ResourcePool) as created and managed by netweave
MANAGED_BY_ANNOTATION: Final = "o2ims.netweave.io/managed-by"
MANAGED_BY: Final = "netweave"
#: what a MachineSet has no field for, recorded by netweave when it creates the pool
LOCATION_ANNOTATION: Final = "o2ims.netweave.io/location"
GLOBAL_LOCATION_ANNOTATION: Final = "o2ims.netweave.io/global-location-id"
INSTANCE_TYPE_ANNOTATION: Final = "o2ims.netweave.io/instance-type"
TAINTS_ANNOTATION: Final = "o2ims.netweave.io/taints"
#: the keys of the user labels netweave put on a MachineSet (a JSON list)
LABELS_ANNOTATION: Final = "o2ims.netweave.io/labels"
#: the MachineSet selector / machine template label of a pool netweave created
MACHINESET_POOL_LABEL: Final = "o2ims.netweave.io/pool"
UNKNOWN: Final = "unknown"

#: node annotations copied to ``extensions.annotations`` (small, stable, meaningful)
NODE_ANNOTATIONS: Final = frozenset(
    {
        "cluster.x-k8s.io/cluster-name",
        "cluster.x-k8s.io/cluster-namespace",
        "cluster.x-k8s.io/machine",
        "cluster.x-k8s.io/owner-kind",
        "cluster.x-k8s.io/owner-name",
        "machine.openshift.io/machine",
        DESCRIPTION_ANNOTATION,
    }
)

_CAPI_OWNER_KIND: Final = "cluster.x-k8s.io/owner-kind"
_CAPI_OWNER_NAME: Final = "cluster.x-k8s.io/owner-name"
_CAPI_NAMESPACE: Final = "cluster.x-k8s.io/cluster-namespace"
_ROLE_PREFIX: Final = "node-role.kubernetes.io/"
_DEFAULT_CLASS_ANNOTATIONS: Final = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)
_INSTANCE_TYPE_LABELS: Final = (
    "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/instance-type",
)
_ARCH_LABELS: Final = ("kubernetes.io/arch", "beta.kubernetes.io/arch")
_ZONE_LABELS: Final = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
_REGION_LABELS: Final = (
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/region",
)
_NODE_INFO_FIELDS: Final = (
    "architecture",
    "containerRuntimeVersion",
    "kernelVersion",
    "kubeletVersion",
    "operatingSystem",
    "osImage",
    "systemUUID",
)
_GIB: Final = Decimal(2**30)
_ELAPSED = re.compile(r"\b(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|µs|ns))+ ago\b", re.ASCII)


# --------------------------------------------------------------------------- context


@dataclass(frozen=True)
class MappingContext:
    """What the mapping needs to know beyond the Kubernetes objects themselves."""

    ocloud_id: str
    cluster_name: str
    api_server_url: str
    pool_label: str = DEFAULT_POOL_LABEL
    default_pool_name: str = "default"
    global_location_id: str = UNKNOWN
    #: the configured location of pools that have no topology of their own
    location: str | None = None
    #: label (or annotation) naming the tenant that owns a pool's backend object
    tenant_label: str = DEFAULT_TENANT_LABEL
    #: label (or annotation) that, set to ``true``, shares an untenanted pool
    shared_label: str = DEFAULT_SHARED_LABEL


# --------------------------------------------------------------------------- quantities

_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<binary>[KMGTPE]i)|[eE](?P<exponent>[+-]?\d+)|(?P<decimal>[mkMGTPE]?))",
    re.ASCII,
)
_BINARY_POWERS: Final = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_EXPONENTS: Final = {"m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_MAX_EXPONENT: Final = 100


def parse_quantity(text: str) -> Decimal:
    """The exact value of a Kubernetes resource quantity (``3800m``, ``16Gi``, ``100e6``...).

    Grammar of ``k8s.io/apimachinery/pkg/api/resource``: a signed decimal number then a
    binary suffix (``Ki``..``Ei``), a decimal suffix (``m``, ``k``, ``M``..``E``) or a
    decimal exponent (``e3``, ``E-2``).  Anything else raises :class:`ValueError`.
    """
    match = _QUANTITY.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    if match["binary"] is not None:
        base, exponent = Decimal(1024), _BINARY_POWERS[match["binary"]]
    elif match["exponent"] is not None:
        base, exponent = Decimal(10), int(match["exponent"])
        if abs(exponent) > _MAX_EXPONENT:
            raise ValueError(f"quantity exponent out of range: {text!r}")
    else:
        base, exponent = Decimal(10), _DECIMAL_EXPONENTS[match["decimal"]]
    with localcontext() as exact:
        exact.prec = len(match["number"]) + 20  # 1024**6 has 19 digits: always exact
        return Decimal(match["number"]) * base**exponent


# --------------------------------------------------------------------------- JSON helpers


def _mapping(value: Any) -> JsonMap:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _metadata(obj: JsonMap) -> JsonMap:
    return _mapping(obj.get("metadata"))


def _name(obj: JsonMap) -> str:
    return _text(_metadata(obj).get("name"))


def _uid(obj: JsonMap) -> str:
    uid = _text(_metadata(obj).get("uid"))
    if not uid:
        raise ValueError(f"Kubernetes object {_name(obj)!r} has no metadata.uid")
    return uid


def _labels(obj: JsonMap) -> dict[str, str]:
    return _string_map(_metadata(obj).get("labels"))


def _annotations(obj: JsonMap) -> dict[str, str]:
    return _string_map(_metadata(obj).get("annotations"))


def _string_map(value: Any) -> dict[str, str]:
    """A string-valued map, keys sorted (so equal maps serialise identically)."""
    return {str(key): str(item) for key, item in sorted(_mapping(value).items())}


def _first_label(labels: Mapping[str, str], names: Iterable[str]) -> str:
    return next((labels[name] for name in names if labels.get(name)), "")


def _node_info(node: JsonMap) -> JsonMap:
    return _mapping(_mapping(node.get("status")).get("nodeInfo"))


def _sorted_unique(values: Iterable[str]) -> list[str]:
    return sorted({value for value in values if value})


# --------------------------------------------------------------------------- ids


def node_resource_id(node: JsonMap, ctx: MappingContext) -> str:
    """The resource id of a node: its uid under the O-Cloud."""
    return stable_id(ctx.ocloud_id, "node", _uid(node))


def machineset_pool_id(machineset: JsonMap, ctx: MappingContext) -> str:
    """The resource pool id of a cluster-api MachineSet: its uid under the O-Cloud."""
    return stable_id(ctx.ocloud_id, "machineset", _uid(machineset))


def resource_pool_object_id(resource_pool: JsonMap, ctx: MappingContext) -> str:
    """The resource pool id of a ``ResourcePool`` custom resource: its uid under the O-Cloud."""
    return stable_id(ctx.ocloud_id, "resourcepool", _uid(resource_pool))


def label_pool_id(value: str | None, ctx: MappingContext) -> str:
    """The pool id of the nodes labelled ``value`` (``None``: the default pool)."""
    return stable_id(ctx.ocloud_id, "label-pool", value or ctx.default_pool_name)


def node_shape_type_id(shape: NodeShape, ctx: MappingContext) -> str:
    """The resource type id of a node shape: its key under the O-Cloud."""
    return stable_id(ctx.ocloud_id, "node-shape", shape.key)


def storage_class_type_id(storage_class: JsonMap, ctx: MappingContext) -> str:
    """The resource type id of a StorageClass: its uid under the O-Cloud."""
    return stable_id(ctx.ocloud_id, "storageclass", _uid(storage_class))


def deployment_manager_id(kube_system_ns: JsonMap, ctx: MappingContext) -> str:
    """The deployment manager id of the cluster: its kube-system namespace uid."""
    return stable_id(ctx.ocloud_id, "cluster", _uid(kube_system_ns))


# --------------------------------------------------------------------------- node shapes


class _Provider(NamedTuple):
    name: str
    vendor: str
    resource_kind: ResourceKind


_METAL3 = _Provider("metal3", "Metal3 bare metal", "PHYSICAL")
_UNKNOWN_PROVIDER = _Provider(UNKNOWN, UNKNOWN, "UNDEFINED")
#: providers by the scheme of ``spec.providerID`` (``aws:///us-east-1a/i-0abc...``)
_PROVIDERS: Final = {
    "aws": _Provider("aws", "Amazon Web Services", "LOGICAL"),
    "gce": _Provider("gce", "Google Cloud", "LOGICAL"),
    "azure": _Provider("azure", "Microsoft Azure", "LOGICAL"),
    "openstack": _Provider("openstack", "OpenStack", "LOGICAL"),
    "vsphere": _Provider("vsphere", "VMware vSphere", "LOGICAL"),
    "baremetalhost": _METAL3,
    "metal3": _METAL3,
    "kind": _Provider("kind", "kind (Docker)", "LOGICAL"),
}
#: label prefixes that only a given cloud's managed node pools carry (no providerID case)
_PROVIDER_LABEL_PREFIXES: Final = (
    ("eks.amazonaws.com/", "aws"),
    ("cloud.google.com/gke-", "gce"),
    ("kubernetes.azure.com/", "azure"),
)
_PROVIDER_BY_VENDOR: Final = {p.vendor: p for p in (*_PROVIDERS.values(), _UNKNOWN_PROVIDER)}


@dataclass(frozen=True)
class NodeShape:
    """What makes two nodes the same kind of machine, as far as a Node object tells."""

    instance_type: str
    architecture: str
    vendor: str

    @property
    def key(self) -> str:
        """The natural key of the shape: ``instance_type|architecture|vendor``."""
        return f"{self.instance_type}|{self.architecture}|{self.vendor}"

    @property
    def provider(self) -> str:
        """The short provider name (``aws``, ``metal3``, ``kind``...) of the vendor."""
        return _PROVIDER_BY_VENDOR.get(self.vendor, _UNKNOWN_PROVIDER).name

    @property
    def display_name(self) -> str:
        """The instance type, or ``<arch> <vendor> node`` when the node has none."""
        if self.instance_type != UNKNOWN:
            return self.instance_type
        return f"{self.architecture} {self.vendor} node"


def _provider(node: JsonMap) -> _Provider:
    scheme, separator, _ = _text(_mapping(node.get("spec")).get("providerID")).partition("://")
    if separator and scheme.lower() in _PROVIDERS:
        return _PROVIDERS[scheme.lower()]
    for label in _labels(node):
        for prefix, name in _PROVIDER_LABEL_PREFIXES:
            if label.startswith(prefix):
                return _PROVIDERS[name]
    return _UNKNOWN_PROVIDER


def node_shape(node: JsonMap) -> NodeShape:
    """The shape of a node: instance-type label, architecture, vendor of its provider."""
    labels = _labels(node)
    architecture = _text(_node_info(node).get("architecture")) or _first_label(labels, _ARCH_LABELS)
    return NodeShape(
        instance_type=_first_label(labels, _INSTANCE_TYPE_LABELS) or UNKNOWN,
        architecture=architecture or UNKNOWN,
        vendor=_provider(node).vendor,
    )


def _shape_resource_kind(shape: NodeShape) -> ResourceKind:
    provider = _PROVIDER_BY_VENDOR.get(shape.vendor, _UNKNOWN_PROVIDER)
    instance_type = shape.instance_type
    if provider.name == "aws" and (instance_type.endswith(".metal") or ".metal-" in instance_type):
        return "PHYSICAL"  # EC2 bare-metal instances: m5.metal, m7i.metal-24xl...
    return provider.resource_kind


def resource_type_for_shape(shape: NodeShape, ctx: MappingContext) -> ResourceType:
    """The compute resource type of all nodes of ``shape``."""
    type_id = node_shape_type_id(shape, ctx)
    return ResourceType(
        resource_type_id=type_id,
        alarm_dictionary_id=alarm_dictionary_id(ctx.ocloud_id, type_id),
        name=shape.display_name,
        description=(
            f"Kubernetes node shape: instance type {shape.instance_type}, "
            f"architecture {shape.architecture}, provider {shape.vendor}"
        ),
        vendor=shape.vendor,
        model=shape.instance_type,
        version=shape.architecture,
        resource_kind=_shape_resource_kind(shape),
        resource_class="COMPUTE",
        extensions={
            "architecture": shape.architecture,
            "instanceType": shape.instance_type,
            "provider": shape.provider,
            "shapeKey": shape.key,
        },
    )


# --------------------------------------------------------------------------- storage classes

#: storage vendors by CSI driver / in-tree provisioner (suffix match on the domain)
_STORAGE_VENDORS: Final = {
    "ebs.csi.aws.com": "Amazon Web Services",
    "efs.csi.aws.com": "Amazon Web Services",
    "kubernetes.io/aws-ebs": "Amazon Web Services",
    "pd.csi.storage.gke.io": "Google Cloud",
    "kubernetes.io/gce-pd": "Google Cloud",
    "disk.csi.azure.com": "Microsoft Azure",
    "file.csi.azure.com": "Microsoft Azure",
    "kubernetes.io/azure-disk": "Microsoft Azure",
    "cinder.csi.openstack.org": "OpenStack",
    "csi.vsphere.vmware.com": "VMware vSphere",
    "kubernetes.io/vsphere-volume": "VMware vSphere",
    "rbd.csi.ceph.com": "Ceph",
    "cephfs.csi.ceph.com": "Ceph",
    "rancher.io/local-path": "Rancher local-path-provisioner",
    "driver.longhorn.io": "Longhorn",
    "topolvm.io": "TopoLVM",
    "csi.trident.netapp.io": "NetApp",
    "kubernetes.io/no-provisioner": "Kubernetes (local persistent volumes)",
}


def _storage_vendor(provisioner: str) -> str:
    """The vendor of a provisioner; an unknown one is its own best description."""
    for known, vendor in _STORAGE_VENDORS.items():
        if provisioner == known or provisioner.endswith(f".{known}"):
            return vendor  # ODF: openshift-storage.rbd.csi.ceph.com
    return provisioner or UNKNOWN


def storage_class_is_default(storage_class: JsonMap) -> bool:
    """Whether the class is the cluster default (the annotation is exactly ``"true"``)."""
    annotations = _annotations(storage_class)
    return any(annotations.get(name) == "true" for name in _DEFAULT_CLASS_ANNOTATIONS)


def _parameters_version(provisioner: str, parameters: Mapping[str, str]) -> str:
    """A digest of what a StorageClass provisions (both fields are immutable)."""
    canonical = json.dumps(
        {"provisioner": provisioner, "parameters": parameters},
        sort_keys=True,
        separators=(",", ":"),
    )
    return f"sha256:{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def resource_type_for_storage_class(storage_class: JsonMap, ctx: MappingContext) -> ResourceType:
    """The storage resource type of one StorageClass."""
    name = _name(storage_class)
    provisioner = _text(storage_class.get("provisioner")) or UNKNOWN
    parameters = _string_map(storage_class.get("parameters"))
    extensions: dict[str, Any] = {
        "storageClassName": name,
        "provisioner": provisioner,
        "reclaimPolicy": _text(storage_class.get("reclaimPolicy")) or "Delete",
        "volumeBindingMode": _text(storage_class.get("volumeBindingMode")) or "Immediate",
        "allowVolumeExpansion": storage_class.get("allowVolumeExpansion") is True,
        "isDefault": storage_class_is_default(storage_class),
        "parameters": parameters,
    }
    mount_options = [str(option) for option in _list(storage_class.get("mountOptions"))]
    if mount_options:
        extensions["mountOptions"] = mount_options
    type_id = storage_class_type_id(storage_class, ctx)
    return ResourceType(
        resource_type_id=type_id,
        alarm_dictionary_id=alarm_dictionary_id(ctx.ocloud_id, type_id),
        name=name,
        description=f"Kubernetes StorageClass {name} ({provisioner})",
        vendor=_storage_vendor(provisioner),
        model=provisioner,
        version=_parameters_version(provisioner, parameters),
        resource_kind="LOGICAL",
        resource_class="STORAGE",
        extensions=extensions,
    )


# --------------------------------------------------------------------------- pools


def machineset_key(machineset: JsonMap) -> tuple[str, str]:
    """``(namespace, name)`` of a MachineSet, the key of ``pool_id_for_node``'s mapping."""
    metadata = _metadata(machineset)
    return _text(metadata.get("namespace")) or "default", _text(metadata.get("name"))


def _owning_machineset(node: JsonMap) -> tuple[str, str] | None:
    """``(namespace, name)`` of the MachineSet cluster-api says owns the node, if any."""
    annotations = _annotations(node)
    name = annotations.get(_CAPI_OWNER_NAME, "")
    if annotations.get(_CAPI_OWNER_KIND) != "MachineSet" or not name:
        return None
    return annotations.get(_CAPI_NAMESPACE) or "default", name


def pool_label_value(node: JsonMap, ctx: MappingContext) -> str | None:
    """The node's pool label value; ``None`` for the default pool (unlabelled, empty or
    labelled with the default pool's name)."""
    value = _labels(node).get(ctx.pool_label, "")
    return None if value in ("", ctx.default_pool_name) else value


def pool_id_for_node(
    node: JsonMap,
    ctx: MappingContext,
    machinesets_by_name: Mapping[tuple[str, str], JsonMap] | None = None,
    resource_pools: Mapping[str, JsonMap] | None = None,
) -> str:
    """The pool of a node: its known owning MachineSet, else its pool label (the
    ``ResourcePool`` of that name in ``resource_pools``, see :func:`resource_pools_by_name`,
    else the label pool), else default."""
    owner = _owning_machineset(node)
    if owner is not None and machinesets_by_name and owner in machinesets_by_name:
        return machineset_pool_id(machinesets_by_name[owner], ctx)
    value = pool_label_value(node, ctx)
    if value is not None and resource_pools and value in resource_pools:
        return resource_pool_object_id(resource_pools[value], ctx)
    return label_pool_id(value, ctx)


def resource_pool_for_machineset(machineset: JsonMap, ctx: MappingContext) -> ResourcePool:
    """The resource pool of a cluster-api MachineSet (``cluster.x-k8s.io/v1beta1``).

    The location is the template's ``failureDomain``, else the zone label of the machine
    template, else the configured location.
    """
    namespace, name = machineset_key(machineset)
    spec = _mapping(machineset.get("spec"))
    status = _mapping(machineset.get("status"))
    template = _mapping(spec.get("template"))
    template_spec = _mapping(template.get("spec"))
    template_labels = _string_map(_mapping(template.get("metadata")).get("labels"))
    failure_domain = _text(template_spec.get("failureDomain"))
    cluster = _text(spec.get("clusterName")) or _text(template_spec.get("clusterName"))
    extensions: dict[str, Any] = {
        "source": "MachineSet",
        "namespace": namespace,
        "clusterName": cluster,
        "readyReplicas": int(status.get("readyReplicas") or 0),
        "availableReplicas": int(status.get("availableReplicas") or 0),
        "labels": _labels(machineset),
    }
    if isinstance(spec.get("replicas"), int):
        extensions["replicas"] = spec["replicas"]
    infrastructure = _mapping(template_spec.get("infrastructureRef"))
    if infrastructure:
        extensions["infrastructureRef"] = {
            "kind": _text(infrastructure.get("kind")),
            "name": _text(infrastructure.get("name")),
        }
    if failure_domain:
        extensions["failureDomain"] = failure_domain
    if version := _text(template_spec.get("version")):
        extensions["kubernetesVersion"] = version
    if deployment := _owner_name(machineset, "MachineDeployment"):
        extensions["machineDeployment"] = deployment
    owner, shared = object_ownership(machineset, ctx)
    extensions.update(ownership_fields(owner, shared=shared))
    annotations = _annotations(machineset)
    extensions.update(_managed_extensions(annotations))
    description = annotations.get(DESCRIPTION_ANNOTATION) or (
        f"Cluster API MachineSet {namespace}/{name} of cluster {cluster or ctx.cluster_name}"
    )
    location = (
        annotations.get(LOCATION_ANNOTATION)
        or failure_domain
        or _first_label(template_labels, _ZONE_LABELS)
        or ctx.location
    )
    return ResourcePool(
        resource_pool_id=machineset_pool_id(machineset, ctx),
        name=name,
        description=description,
        o_cloud_id=ctx.ocloud_id,
        global_location_id=annotations.get(GLOBAL_LOCATION_ANNOTATION) or ctx.global_location_id,
        location=location,
        extensions=extensions,
    )


def is_managed(obj: JsonMap) -> bool:
    """Whether netweave created (and so may change or delete) this pool object."""
    return _annotations(obj).get(MANAGED_BY_ANNOTATION) == MANAGED_BY


def _managed_extensions(annotations: Mapping[str, str]) -> dict[str, Any]:
    """What a MachineSet netweave created records beyond cluster-api's fields."""
    if annotations.get(MANAGED_BY_ANNOTATION) != MANAGED_BY:
        return {}
    extensions: dict[str, Any] = {"managedBy": MANAGED_BY}
    if instance_type := annotations.get(INSTANCE_TYPE_ANNOTATION):
        extensions["instanceType"] = instance_type
    try:
        taints = json.loads(annotations.get(TAINTS_ANNOTATION) or "[]")
    except ValueError:
        taints = []
    if taints:
        extensions["taints"] = _taints({"taints": taints})
    return extensions


def object_ownership(obj: JsonMap, ctx: MappingContext) -> Ownership:
    """The tenant owning ``obj`` (its tenant label, else annotation) or whether it is shared.

    A value that is not a tenant id (or is the reserved word ``shared``) is ignored, so
    the object stays untenanted: hidden from every tenant, which is the safe side.
    """
    labels, annotations = _labels(obj), _annotations(obj)
    tenant = labels.get(ctx.tenant_label) or annotations.get(ctx.tenant_label) or ""
    if tenant and tenant != SHARED and _TENANT_ID.fullmatch(tenant):
        return tenant, False
    shared = labels.get(ctx.shared_label) or annotations.get(ctx.shared_label) or ""
    return None, shared.strip().lower() == "true"


def _owner_name(obj: JsonMap, kind: str) -> str:
    owners = (_mapping(ref) for ref in _list(_metadata(obj).get("ownerReferences")))
    return next((_text(ref.get("name")) for ref in owners if ref.get("kind") == kind), "")


def resource_pools_by_name(
    resource_pools: Iterable[JsonMap], ctx: MappingContext
) -> dict[str, JsonMap]:
    """``ResourcePool`` objects by name, the argument of :func:`pool_id_for_node`; one named
    like the default pool is left out (the default pool is never a custom resource)."""
    named = {_name(obj): obj for obj in resource_pools}
    named.pop(ctx.default_pool_name, None)
    named.pop("", None)
    return named


def resource_pool_for_object(
    resource_pool: JsonMap, nodes_in_pool: Iterable[JsonMap], ctx: MappingContext
) -> ResourcePool:
    """The pool of a ``ResourcePool`` custom resource (``o2ims.oran.org/v1alpha1``): what its
    spec records, owned as the object's tenant label says, with the nodes labelled
    ``<pool label>=<its name>`` (``nodes_in_pool``, see :func:`pool_id_for_node`)."""
    name = _name(resource_pool)
    spec = _mapping(resource_pool.get("spec"))
    nodes = list(nodes_in_pool)
    node_labels = [_labels(node) for node in nodes]
    extensions: dict[str, Any] = {
        "source": "ResourcePool",
        "poolLabel": ctx.pool_label,
        "nodeSelector": {ctx.pool_label: name},
        "labels": _string_map(spec.get("labels")),
        "taints": _taints(spec),
        "zones": _sorted_unique(_first_label(lab, _ZONE_LABELS) for lab in node_labels),
        "regions": _sorted_unique(_first_label(lab, _REGION_LABELS) for lab in node_labels),
        "nodeCount": len(nodes),
    }
    if instance_type := _text(spec.get("instanceType")):
        extensions["instanceType"] = instance_type
    if isinstance(spec.get("replicas"), int):
        extensions["replicas"] = spec["replicas"]
    if is_managed(resource_pool):
        extensions["managedBy"] = MANAGED_BY
    owner, shared = object_ownership(resource_pool, ctx)
    extensions.update(ownership_fields(owner, shared=shared))
    return ResourcePool(
        resource_pool_id=resource_pool_object_id(resource_pool, ctx),
        name=name,
        description=_text(spec.get("description"))
        or f"Nodes of cluster {ctx.cluster_name} in ResourcePool {name}",
        o_cloud_id=ctx.ocloud_id,
        global_location_id=_text(spec.get("globalLocationId")) or ctx.global_location_id,
        location=_text(spec.get("location")) or ctx.location,
        extensions=extensions,
    )


def resource_pool_for_label(
    value: str | None, nodes_in_pool: Iterable[JsonMap], ctx: MappingContext
) -> ResourcePool:
    """The pool of the nodes labelled ``value`` (``None`` or the default name: default pool).

    ``nodes_in_pool`` are the nodes :func:`pool_id_for_node` puts in this pool.
    """
    nodes = list(nodes_in_pool)
    is_default = value in (None, "", ctx.default_pool_name)
    extensions: dict[str, Any] = {
        "source": "default" if is_default else "nodeLabel",
        "poolLabel": ctx.pool_label,
    }
    if is_default:
        name = ctx.default_pool_name
        description = f"Nodes of cluster {ctx.cluster_name} without the {ctx.pool_label} label"
        extensions["note"] = (
            f"holds the nodes that have no {ctx.pool_label} label (or the value {name!r}) "
            "and no known owning MachineSet"
        )
    else:
        name = str(value)
        description = f"Nodes of cluster {ctx.cluster_name} labelled {ctx.pool_label}={name}"
        extensions["nodeSelector"] = {ctx.pool_label: name}
    labels = [_labels(node) for node in nodes]
    extensions["zones"] = _sorted_unique(_first_label(lab, _ZONE_LABELS) for lab in labels)
    extensions["regions"] = _sorted_unique(_first_label(lab, _REGION_LABELS) for lab in labels)
    extensions["nodeCount"] = len(nodes)
    # a label pool is owned when all its nodes name the same owner
    owners = {object_ownership(node, ctx) for node in nodes}
    if len(owners) == 1:
        owner, shared = owners.pop()
        extensions.update(ownership_fields(owner, shared=shared))
    return ResourcePool(
        resource_pool_id=label_pool_id(None if is_default else name, ctx),
        name=name,
        description=description,
        o_cloud_id=ctx.ocloud_id,
        global_location_id=ctx.global_location_id,
        location=ctx.location,
        extensions=extensions,
    )


# --------------------------------------------------------------------------- nodes


def _roles(labels: Mapping[str, str]) -> list[str]:
    """Node roles, as ``kubectl get nodes`` shows them."""
    roles = [name.removeprefix(_ROLE_PREFIX) for name in labels if name.startswith(_ROLE_PREFIX)]
    return _sorted_unique([*roles, labels.get("kubernetes.io/role", "")])


def _stable_message(message: str) -> str:
    return _ELAPSED.sub("some time ago", message)


def _conditions(status: JsonMap) -> dict[str, dict[str, str]]:
    """Conditions by type, without heartbeat and transition times."""
    conditions = (_mapping(c) for c in _list(status.get("conditions")))
    by_type = {
        _text(c.get("type")): {
            "status": _text(c.get("status")) or "Unknown",
            "reason": _text(c.get("reason")),
            "message": _stable_message(_text(c.get("message"))),
        }
        for c in conditions
        if c.get("type")
    }
    return dict(sorted(by_type.items()))


def _taints(spec: JsonMap) -> list[dict[str, str]]:
    """Taints without ``timeAdded`` (set when the node controller adds one)."""
    taints = []
    for raw in _list(spec.get("taints")):
        taint = _mapping(raw)
        item = {"key": _text(taint.get("key"))}
        if value := _text(taint.get("value")):
            item["value"] = value
        item["effect"] = _text(taint.get("effect"))
        taints.append(item)
    return taints


def _addresses(status: JsonMap) -> list[dict[str, str]]:
    addresses = (_mapping(a) for a in _list(status.get("addresses")))
    return [{"type": _text(a.get("type")), "address": _text(a.get("address"))} for a in addresses]


def _address_of(addresses: list[dict[str, str]], kind: str) -> str:
    return next((a["address"] for a in addresses if a["type"] == kind), "")


def _node_extensions(node: JsonMap, labels: dict[str, str]) -> dict[str, Any]:
    metadata = _metadata(node)
    spec = _mapping(node.get("spec"))
    status = _mapping(node.get("status"))
    conditions = _conditions(status)
    ready = conditions.get("Ready", {}).get("status", "Unknown")
    addresses = _addresses(status)
    info = _node_info(node)
    annotations = _annotations(node)
    extensions: dict[str, Any] = {
        "name": _name(node),
        "uid": _uid(node),
        "creationTimestamp": _text(metadata.get("creationTimestamp")),
        "labels": labels,
        "annotations": {k: v for k, v in annotations.items() if k in NODE_ANNOTATIONS},
        "roles": _roles(labels),
        "capacity": _string_map(status.get("capacity")),
        "allocatable": _string_map(status.get("allocatable")),
        "conditions": conditions,
        "ready": ready,
        "status": "Ready" if ready == "True" else "NotReady",
        "unschedulable": spec.get("unschedulable") is True,
        "taints": _taints(spec),
        "addresses": addresses,
        "nodeInfo": {field: _text(info.get(field)) for field in _NODE_INFO_FIELDS},
    }
    optional = {
        "hostname": _address_of(addresses, "Hostname") or labels.get("kubernetes.io/hostname"),
        "internalIP": _address_of(addresses, "InternalIP"),
        "providerID": _text(spec.get("providerID")),
        "zone": _first_label(labels, _ZONE_LABELS),
        "region": _first_label(labels, _REGION_LABELS),
    }
    extensions.update({key: value for key, value in optional.items() if value})
    pod_cidrs = [str(cidr) for cidr in _list(spec.get("podCIDRs"))]
    if pod_cidrs:
        extensions["podCIDRs"] = pod_cidrs
    return extensions


def resource_for_node(node: JsonMap, ctx: MappingContext, *, pool_id: str) -> Resource:
    """The O2-IMS resource of a Node, in pool ``pool_id`` (see :func:`pool_id_for_node`)."""
    labels = _labels(node)
    shape = node_shape(node)
    info = _node_info(node)
    provider_id = _text(_mapping(node.get("spec")).get("providerID"))
    name = _name(node)
    groups = [labels.get(ctx.pool_label, ""), _first_label(labels, _ZONE_LABELS)]
    return Resource(
        resource_id=node_resource_id(node, ctx),
        resource_pool_id=pool_id,
        resource_type_id=node_shape_type_id(shape, ctx),
        global_asset_id=provider_id or _text(info.get("systemUUID")) or _uid(node),
        description=f"{name}: {_text(info.get('osImage')) or 'unknown OS'}, {shape.display_name}",
        tags=_roles(labels),
        groups=list(dict.fromkeys(group for group in groups if group)),
        elements=[],
        extensions=_node_extensions(node, labels),
    )


# --------------------------------------------------------------------------- cluster


def _sum_capacity(nodes: Iterable[JsonMap], resource: str) -> tuple[Decimal, bool]:
    """The sum of one capacity over the nodes, and whether any node reports it."""
    total, seen = Decimal(0), False
    for node in nodes:
        value = _mapping(_mapping(node.get("status")).get("capacity")).get(resource)
        if value is not None:
            total += parse_quantity(str(value))
            seen = True
    return total, seen


def _plain(number: Decimal) -> str:
    """A decimal without exponent or trailing zeros (``8``, ``3.8``)."""
    text = format(number.normalize(), "f")
    return text if text != "-0" else "0"


def _gib(number: Decimal) -> str:
    return str(int((number / _GIB).quantize(Decimal(1), rounding=ROUND_HALF_UP)))


def cluster_capacity(nodes: Iterable[JsonMap]) -> dict[str, str]:
    """Installed capacity (``status.capacity``) summed over nodes, ready or not.

    ``cpu`` is in cores (Kubernetes CPUs), ``memoryGiB`` and ``ephemeralStorageGiB`` in
    GiB rounded half up after summing; ``gpu`` (``nvidia.com/gpu``) only if some node has it.
    """
    nodes = list(nodes)
    cpu, _ = _sum_capacity(nodes, "cpu")
    memory, _ = _sum_capacity(nodes, "memory")
    pods, _ = _sum_capacity(nodes, "pods")
    storage, _ = _sum_capacity(nodes, "ephemeral-storage")
    capacity = {
        "nodes": str(len(nodes)),
        "cpu": _plain(cpu),
        "memoryGiB": _gib(memory),
        "pods": _plain(pods),
        "ephemeralStorageGiB": _gib(storage),
    }
    gpus, has_gpus = _sum_capacity(nodes, "nvidia.com/gpu")
    if has_gpus:
        capacity["gpu"] = _plain(gpus)
    return capacity


def deployment_manager_for_cluster(
    kube_system_ns: JsonMap,
    nodes: Iterable[JsonMap],
    ctx: MappingContext,
    *,
    version: str | None,
) -> DeploymentManager:
    """The deployment manager of the cluster; ``version`` is ``/version``'s ``gitVersion``."""
    return DeploymentManager(
        deployment_manager_id=deployment_manager_id(kube_system_ns, ctx),
        name=ctx.cluster_name,
        description=f"Kubernetes cluster {ctx.cluster_name}",
        o_cloud_id=ctx.ocloud_id,
        service_uri=ctx.api_server_url,
        supported_locations=[ctx.global_location_id],
        capabilities={"profile": "kubernetes", "kubernetesVersion": version or UNKNOWN},
        capacity=cluster_capacity(nodes),
        extensions={"clusterName": ctx.cluster_name, "kubeSystemUid": _uid(kube_system_ns)},
    )
