"""Construction of simulated nodes (O2-IMS ``Resource`` objects) and their parts.

A node is fully determined by its pool, its slot in the pool (which fixes hostname and
addresses), its key (which fixes its id) and the seed: serial numbers, MAC addresses
and GPU UUIDs come from a generator seeded with the seed and the key, so a node looks
the same whenever and in whatever order it is built.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from netweave.adapters.lifecycle import Taint
from netweave.adapters.simulated.catalog import (
    CLUSTER,
    ELEMENT_BY_KEY,
    HARDWARE_BY_KEY,
    SITE_BY_CODE,
    ElementSpec,
    HardwareSpec,
    PoolSpec,
    SiteSpec,
)
from netweave.adapters.simulated.identity import element_id, node_id, pool_id, resource_type_id
from netweave.models.inventory import Resource

__all__ = [
    "CONDITION_TYPES",
    "build_node",
    "cluster_capacity",
    "condition_status",
    "cordoned",
    "hostname",
    "is_ready",
    "node_taint",
    "with_condition",
    "with_readiness",
    "workload_count",
]

READY = "Ready"
NOT_READY = "NotReady"

_UNREACHABLE = "node.kubernetes.io/unreachable"
_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
_INTEL_OUIS = ("b4:96:91", "40:a6:b7", "6c:fe:54")
_DELL_TAG = "0123456789BCDFGHJKLMNPQRSTVWXYZ"
_ALNUM = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_NIC_PCI = ("0000:51:00.0", "0000:8a:00.0")
_GPU_PCI = ("0000:17:00.0", "0000:ca:00.0")
_FEC_PCI = "0000:f7:00.0"
_REDFISH_SYSTEM = {
    "dell": "/redfish/v1/Systems/System.Embedded.1",
    "hpe": "/redfish/v1/Systems/1",
    "supermicro": "/redfish/v1/Systems/1",
}

_NOT_READY = "node.kubernetes.io/not-ready"
#: the conditions the node lifecycle controller marks Unknown when the kubelet goes silent
_KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
_NOT_READY_MESSAGE = "container runtime is down, PLEG is not healthy: pleg has yet to be successful"


@dataclass(frozen=True, slots=True)
class _ConditionLook:
    """How a node shows one condition other than Ready: reasons, messages, taint."""

    true: tuple[str, str]  #: (reason, message) while the condition is True
    false: tuple[str, str]
    taint: str  #: the NoSchedule taint Kubernetes puts on a node while it is True


_LOOKS: dict[str, _ConditionLook] = {
    "MemoryPressure": _ConditionLook(
        ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
        ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        "node.kubernetes.io/memory-pressure",
    ),
    "DiskPressure": _ConditionLook(
        ("KubeletHasDiskPressure", "kubelet has disk pressure"),
        ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        "node.kubernetes.io/disk-pressure",
    ),
    "PIDPressure": _ConditionLook(
        ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
        ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        "node.kubernetes.io/pid-pressure",
    ),
    "NetworkUnavailable": _ConditionLook(  # the cluster runs Calico (catalog.CLUSTER)
        ("CalicoIsDown", "Calico is shutting down on this node"),
        ("CalicoIsUp", "Calico is running on this node"),
        "node.kubernetes.io/network-unavailable",
    ),
}

#: the conditions :func:`with_condition` sets (Ready has :func:`with_readiness`)
CONDITION_TYPES = tuple(_LOOKS)


def hostname(pool: PoolSpec, slot: int) -> str:
    """The hostname of the node in ``slot`` (1-based) of ``pool``."""
    return f"{pool.name}-{slot:02d}"


def build_node(
    ocloud_id: str, *, seed: int, pool: PoolSpec, slot: int, key: str, ready: bool = True
) -> Resource:
    """The node in ``slot`` of ``pool``, identified by ``key``."""
    site = SITE_BY_CODE[pool.site]
    hardware = HARDWARE_BY_KEY[pool.hardware]
    rng = random.Random(f"netweave-simulated:{seed}:node:{key}")
    name = hostname(pool, slot)
    the_pool_id = pool_id(ocloud_id, pool.name)
    elements = _elements(ocloud_id, rng, key=key, hardware=hardware, pool_id=the_pool_id, host=name)
    extensions = _node_extensions(site, pool, hardware, slot=slot, host=name, elements=elements)
    node = Resource(
        resource_id=node_id(ocloud_id, key),
        resource_pool_id=the_pool_id,
        resource_type_id=resource_type_id(ocloud_id, hardware.key),
        global_asset_id=_serial(rng, hardware),
        description=f"{hardware.vendor} {hardware.model} {pool.role} node {name} in {site.name}",
        elements=elements,
        tags=list(pool.tags),
        groups=[pool.name, pool.zone, pool.role],
        extensions=extensions,
    )
    return node if ready else with_readiness(node, ready=False)


def is_ready(node: Resource) -> bool:
    """Whether the node reports Ready."""
    return bool(node.extensions.get("status") == READY)


def with_readiness(node: Resource, *, ready: bool, reachable: bool = False) -> Resource:
    """A copy of ``node`` that is Ready, or NotReady in one of the two ways Kubernetes knows.

    * unreachable (the default): the kubelet went silent, so the node lifecycle
      controller marks Ready and the pressure conditions ``Unknown`` and taints the node
      ``unreachable``;
    * ``reachable``: the kubelet reports the node not ready (Ready ``False``, the
      ``not-ready`` taints); the pressure conditions stay as the kubelet reports them.

    Back to Ready, conditions the node lost track of (``Unknown``) read ``False`` again
    and those the kubelet kept reporting stay.
    """
    extensions = dict(node.extensions)
    taints = [t for t in extensions.get("taints", []) if t["key"] not in (_UNREACHABLE, _NOT_READY)]
    conditions = [dict(c) for c in extensions.get("conditions", [])]
    if ready or reachable:  # the kubelet reports: nothing is Unknown
        conditions = [
            c if c["status"] != "Unknown" else {"type": c["type"], "status": "False"}
            for c in conditions
        ]
    else:  # only the kubelet's own conditions; NetworkUnavailable is the CNI's
        conditions = [
            {"type": c["type"], "status": "Unknown"} if c["type"] in _KUBELET_CONDITIONS else c
            for c in conditions
        ]
    _put(conditions, _ready_condition(ready=ready, reachable=reachable))
    if not ready:
        taint = _NOT_READY if reachable else _UNREACHABLE
        taints += [{"key": taint, "effect": "NoSchedule"}, {"key": taint, "effect": "NoExecute"}]
    extensions["status"] = READY if ready else NOT_READY
    extensions["conditions"] = conditions
    extensions["taints"] = taints
    return node.model_copy(update={"extensions": extensions})


def condition_status(node: Resource, condition_type: str) -> str | None:
    """The status (``True``, ``False``, ``Unknown``) of one of the node's conditions, if any."""
    for condition in node.extensions.get("conditions", []):
        if condition["type"] == condition_type:
            return str(condition["status"])
    return None


def with_condition(node: Resource, condition_type: str, active: bool) -> Resource:
    """A copy of ``node`` whose condition ``condition_type`` (one of :data:`CONDITION_TYPES`)
    is ``True`` (``active``) or ``False``, with the taint Kubernetes adds while it is True.

    A condition the node lacks is added (NetworkUnavailable only appears once the network
    plugin reported it).
    """
    look = _LOOKS[condition_type]
    reason, message = look.true if active else look.false
    extensions = dict(node.extensions)
    conditions = [dict(c) for c in extensions.get("conditions", [])]
    status = "True" if active else "False"
    _put(
        conditions, {"type": condition_type, "status": status, "reason": reason, "message": message}
    )
    taints = [t for t in extensions.get("taints", []) if t["key"] != look.taint]
    if active:
        taints.append({"key": look.taint, "effect": "NoSchedule"})
    extensions["conditions"] = conditions
    extensions["taints"] = taints
    return node.model_copy(update={"extensions": extensions})


def cordoned(node: Resource) -> Resource:
    """A copy of ``node`` marked unschedulable, as ``kubectl cordon`` leaves it."""
    extensions = dict(node.extensions)
    taints = [t for t in extensions.get("taints", []) if t["key"] != _UNSCHEDULABLE]
    extensions["taints"] = [*taints, {"key": _UNSCHEDULABLE, "effect": "NoSchedule"}]
    extensions["unschedulable"] = True
    return node.model_copy(update={"extensions": extensions})


def node_taint(taint: Taint) -> dict[str, str]:
    """``taint`` as a Kubernetes node lists it (no ``value`` member when it is empty)."""
    if taint.value:
        return {"key": taint.key, "value": taint.value, "effect": taint.effect}
    return {"key": taint.key, "effect": taint.effect}


def workload_count(seed: int, key: str) -> int:
    """How many workloads (evictable pods) the node ``key`` runs: what a drain moves away.

    The simulated nodes run no real pods; the count is drawn from a generator seeded with
    the seed and the node key, so a drain reports the same number in every process.
    """
    return random.Random(f"netweave-simulated:{seed}:workloads:{key}").randint(2, 14)


def cluster_capacity(nodes: Iterable[Resource]) -> dict[str, str]:
    """Installed capacity of ``nodes``, summed, as the deployment manager reports it.

    ``cpu`` counts logical CPUs (Kubernetes' unit), ``cpuCores`` physical cores.
    Readiness does not matter: a NotReady node's hardware is still installed.
    """
    totals = {"nodes": 0, "cpu": 0, "cpuCores": 0, "memoryGiB": 0, "gpu": 0}
    for node in nodes:
        totals["nodes"] += 1
        totals["cpu"] += int(node.extensions["cpuThreads"])
        totals["cpuCores"] += int(node.extensions["cpuCores"])
        totals["memoryGiB"] += int(node.extensions["memoryGiB"])
        totals["gpu"] += int(node.extensions.get("gpuCount", 0))
    return {name: str(total) for name, total in totals.items()}


def _ready_condition(*, ready: bool, reachable: bool = False) -> dict[str, str]:
    if ready:
        return {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
        }
    if reachable:
        return {
            "type": "Ready",
            "status": "False",
            "reason": "KubeletNotReady",
            "message": _NOT_READY_MESSAGE,
        }
    return {
        "type": "Ready",
        "status": "Unknown",
        "reason": "NodeStatusUnknown",
        "message": "Kubelet stopped posting node status.",
    }


def _conditions() -> list[dict[str, str]]:
    """The conditions of a healthy node."""
    return [
        _ready_condition(ready=True),
        {"type": "MemoryPressure", "status": "False"},
        {"type": "DiskPressure", "status": "False"},
        {"type": "PIDPressure", "status": "False"},
    ]


def _put(conditions: list[dict[str, str]], condition: dict[str, str]) -> None:
    """Replace the condition of the same type in ``conditions``, or append it."""
    for index, held in enumerate(conditions):
        if held["type"] == condition["type"]:
            conditions[index] = condition
            return
    conditions.append(condition)


def _serial(rng: random.Random, hardware: HardwareSpec) -> str:
    if hardware.serial_style == "dell":
        return "".join(rng.choices(_DELL_TAG, k=7))
    if hardware.serial_style == "hpe":
        prefix = rng.choice(("CZJ", "MXQ", "CZ2"))
        return f"{prefix}{rng.randrange(1000):03d}{''.join(rng.choices(_ALNUM, k=4))}"
    lot, line, batch = rng.randrange(10**6), rng.randrange(10), rng.choice("ABC")
    return f"S{lot:06d}X{line}{batch}{rng.randrange(10**5):05d}"


def _elements(
    ocloud_id: str,
    rng: random.Random,
    *,
    key: str,
    hardware: HardwareSpec,
    pool_id: str,
    host: str,
) -> list[Resource]:
    """The node's NICs, GPUs and FEC accelerator as nested resources."""
    parts: list[tuple[str, ElementSpec, str, dict[str, Any], str]] = []
    nic = ELEMENT_BY_KEY[hardware.nic]
    for index in range(hardware.nic_count):
        oui = rng.choice(_INTEL_OUIS)
        base = rng.getrandbits(24) & 0xFFFFF0
        ports = int(nic.details["ports"])
        macs = [_mac(oui, base + port) for port in range(ports)]
        details: dict[str, Any] = {
            "interfaces": [f"ens{index + 1}f{port}" for port in range(ports)],
            "macAddresses": macs,
            "sriovNumVfs": 8 * ports,
        }
        parts.append((f"nic{index}", nic, _NIC_PCI[index], details, macs[0].replace(":", "")))
    if hardware.gpu is not None:
        gpu = ELEMENT_BY_KEY[hardware.gpu]
        for index in range(hardware.gpu_count):
            gpu_uuid = uuid.UUID(int=rng.getrandbits(128), version=4)
            serial = f"132{rng.randrange(10**10):010d}"
            parts.append((f"gpu{index}", gpu, _GPU_PCI[index], {"uuid": f"GPU-{gpu_uuid}"}, serial))
    if hardware.accelerator is not None:
        fec = ELEMENT_BY_KEY[hardware.accelerator]
        serial = f"FEC{rng.randrange(10**9):09d}"
        parts.append(("fec0", fec, _FEC_PCI, {"sriovNumVfs": 16}, serial))
    return [
        Resource(
            resource_id=element_id(ocloud_id, key, name),
            resource_pool_id=pool_id,
            resource_type_id=resource_type_id(ocloud_id, spec.key),
            global_asset_id=serial.upper(),
            description=f"{spec.model} at PCI {pci} in {host}",
            tags=[spec.role],
            groups=[host],
            extensions={
                "name": name,
                "role": spec.role,
                "pciAddress": pci,
                **spec.details,
                **details,
            },
        )
        for name, spec, pci, details, serial in parts
    ]


def _mac(oui: str, value: int) -> str:
    return f"{oui}:{value >> 16 & 0xFF:02x}:{value >> 8 & 0xFF:02x}:{value & 0xFF:02x}"


def _node_extensions(
    site: SiteSpec,
    pool: PoolSpec,
    hardware: HardwareSpec,
    *,
    slot: int,
    host: str,
    elements: list[Resource],
) -> dict[str, Any]:
    """The Kubernetes-node view of the machine: inventory, addresses, labels, capacity."""
    internal_ip = f"10.{site.octet}.{pool.subnet}.{10 + slot}"
    bmc_ip = f"10.{site.octet}.{200 + pool.subnet // 10}.{10 + slot}"
    nics = [e.extensions for e in elements if e.extensions["role"] == "nic"]
    labels = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": host,
        "node.kubernetes.io/instance-type": hardware.key,
        "topology.kubernetes.io/region": site.region,
        "topology.kubernetes.io/zone": pool.zone,
        "o2ims.oran.org/resource-pool": pool.name,
        f"node-role.kubernetes.io/{pool.role}": "",
        "feature.node.kubernetes.io/network-sriov.capable": "true",
    }
    capacity = {
        "cpu": str(hardware.threads),
        "memory": f"{hardware.memory_gib}Gi",
        "pods": "250",
    }
    reserved_cpu = 4 if pool.realtime else 2
    hugepages = hardware.memory_gib // 4 if pool.realtime else 0
    allocatable = {
        "cpu": str(hardware.threads - reserved_cpu),
        "memory": f"{hardware.memory_gib - 8 - hugepages}Gi",
        "pods": "250",
    }
    if hugepages:
        capacity["hugepages-1Gi"] = allocatable["hugepages-1Gi"] = f"{hugepages}Gi"
        labels["feature.node.kubernetes.io/kernel-config.PREEMPT_RT"] = "true"
    extensions: dict[str, Any] = {
        "hostname": host,
        "fqdn": f"{host}.{site.code}.ocloud.example",
        "internalIP": internal_ip,
        "role": pool.role,
        "zone": pool.zone,
        "globalLocationId": site.global_location_id,
        "rack": f"{site.code.upper()}-R{pool.subnet // 10:02d}",
        "vendor": hardware.vendor,
        "model": hardware.model,
        "biosVersion": hardware.version,
        "cpuModel": hardware.cpu_model,
        "cpuSockets": hardware.sockets,
        "cpuCores": hardware.cores,
        "cpuThreads": hardware.threads,
        "architecture": "x86_64",
        "memoryGiB": hardware.memory_gib,
        "disks": hardware.disks,
        "nics": [
            {
                "model": ELEMENT_BY_KEY[hardware.nic].model,
                "pciAddress": nic["pciAddress"],
                "ports": nic["ports"],
                "speedGbps": nic["speedGbps"],
                "sriovVfs": nic["sriovNumVfs"],
                "ptpCapable": nic["ptpCapable"],
                "macAddress": nic["macAddresses"][0],
            }
            for nic in nics
        ],
        "bmcAddress": bmc_ip,
        "bmcType": hardware.bmc_type,
        "bmcFirmware": hardware.bmc_firmware,
        "bmcRedfishUri": f"https://{bmc_ip}{_REDFISH_SYSTEM[hardware.serial_style]}",
        "osImage": CLUSTER.os_image,
        "kernelVersion": CLUSTER.kernel_realtime if pool.realtime else CLUSTER.kernel,
        "containerRuntimeVersion": CLUSTER.container_runtime,
        "kubeletVersion": CLUSTER.kubernetes_version,
        "labels": labels,
        "capacity": capacity,
        "allocatable": allocatable,
        "status": READY,
        "conditions": _conditions(),
        "taints": [
            *(
                [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
                if pool.role == "control-plane"
                else []
            ),
            *(node_taint(taint) for taint in pool.taints),
        ],
    }
    if hardware.gpu is not None:
        gpu = ELEMENT_BY_KEY[hardware.gpu]
        extensions["gpuModel"] = f"NVIDIA {gpu.model}"
        extensions["gpuCount"] = hardware.gpu_count
        labels["nvidia.com/gpu.present"] = "true"
        labels["nvidia.com/gpu.product"] = f"NVIDIA-{gpu.model.split()[0]}"
        capacity["nvidia.com/gpu"] = allocatable["nvidia.com/gpu"] = str(hardware.gpu_count)
    if hardware.accelerator is not None:
        fec = ELEMENT_BY_KEY[hardware.accelerator]
        resource_name = str(fec.details["resourceName"])
        extensions["accelerators"] = [
            {"model": f"Intel {fec.model}", "resourceName": resource_name, "vfs": 16}
        ]
        labels["feature.node.kubernetes.io/pci-1200_8086.present"] = "true"
        capacity[resource_name] = allocatable[resource_name] = "16"
    for key, value in pool.labels.items():
        labels.setdefault(key, value)  # the pool's labels never mask the node's own
    return extensions
