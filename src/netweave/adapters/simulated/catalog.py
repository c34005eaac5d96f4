"""The static description of the simulated O-Cloud: sites, hardware, storage classes, pools.

Everything the topology builder (:mod:`netweave.adapters.simulated.topology`) needs is
a row in one of the tables below; the builder turns rows into O2-IMS objects and adds
the per-node details (serial numbers, MAC and IP addresses) from a seeded generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from netweave.adapters.lifecycle import Taint

__all__ = [
    "CLUSTER",
    "DEFAULT_HARDWARE",
    "ELEMENTS",
    "ELEMENT_BY_KEY",
    "HARDWARE",
    "HARDWARE_BY_KEY",
    "POOLS",
    "POOL_BY_NAME",
    "SITES",
    "SITE_BY_CODE",
    "STORAGE_CLASSES",
    "ClusterSpec",
    "ElementSpec",
    "HardwareSpec",
    "PoolSpec",
    "SiteSpec",
    "StorageClassSpec",
]

SerialStyle = Literal["dell", "hpe", "supermicro"]
ElementRole = Literal["nic", "gpu", "accelerator"]


@dataclass(frozen=True, slots=True)
class SiteSpec:
    """One data centre: an O2-IMS location together with its single O-Cloud site."""

    code: str  #: short code, the prefix of pool names ("mad")
    global_location_id: str  #: SMO-facing location id ("ES-MAD-1")
    name: str
    description: str
    city: str
    country: str
    country_code: str  #: ISO 3166-1 alpha-2
    region: str  #: cloud region, the ``topology.kubernetes.io/region`` label
    timezone: str
    longitude: float
    latitude: float
    address: str
    #: RFC 4776 civic address elements as (CAtype, value)
    civic: tuple[tuple[int, str], ...]
    octet: int  #: second octet of the site's 10.x.0.0/16 networks


@dataclass(frozen=True, slots=True)
class ElementSpec:
    """A field-replaceable part of a node (NIC, GPU, accelerator), also a resource type."""

    key: str
    role: ElementRole
    vendor: str
    model: str
    version: str
    description: str
    resource_class: Literal["COMPUTE", "NETWORKING"]
    #: attributes shared by every unit of the part (ports, speed, PCI ids, ...)
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HardwareSpec:
    """A server model: one compute resource type and the shape of the nodes built from it."""

    key: str  #: also the ``node.kubernetes.io/instance-type`` label
    vendor: str
    model: str
    version: str  #: BIOS release the fleet runs
    description: str
    form_factor: str
    cpu_model: str
    sockets: int
    cores_per_socket: int
    memory_gib: int
    bmc_type: str
    bmc_firmware: str
    serial_style: SerialStyle
    disks: str
    nic: str  #: :class:`ElementSpec` key of the network adapter
    nic_count: int = 1
    gpu: str | None = None  #: :class:`ElementSpec` key of the GPU, if any
    gpu_count: int = 0
    accelerator: str | None = None  #: :class:`ElementSpec` key of a FEC accelerator, if any

    @property
    def cores(self) -> int:
        """Physical cores of the node."""
        return self.sockets * self.cores_per_socket

    @property
    def threads(self) -> int:
        """Logical CPUs (two hardware threads per core), Kubernetes' ``cpu`` capacity."""
        return self.cores * 2


@dataclass(frozen=True, slots=True)
class StorageClassSpec:
    """A Kubernetes StorageClass, published as a logical storage resource type."""

    name: str
    vendor: str
    model: str
    version: str
    description: str
    provisioner: str
    reclaim_policy: str
    volume_binding_mode: str
    access_modes: tuple[str, ...]
    is_default: bool = False


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """A node pool: nodes of one hardware model with one role at one site."""

    name: str
    site: str  #: :attr:`SiteSpec.code`
    zone: str
    role: str  #: the ``node-role.kubernetes.io/<role>`` label
    hardware: str  #: :attr:`HardwareSpec.key`
    nodes: int  #: nodes at start
    description: str
    subnet: int  #: third octet of the pool's node network
    tags: tuple[str, ...]
    min_nodes: int = 2  #: churn never shrinks the pool below this
    #: churn may touch the pool: flap its nodes' readiness, add and remove nodes
    elastic: bool = True
    realtime: bool = False  #: nodes run the real-time kernel (RAN distributed units)
    #: labels and taints a node of the pool gets when it joins (the pool's node template)
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    taints: tuple[Taint, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """The Kubernetes cluster that manages every node: the deployment manager."""

    name: str
    description: str
    service_uri: str
    kubernetes_version: str
    container_runtime: str
    os_image: str
    kernel: str
    kernel_realtime: str
    capabilities: Mapping[str, str]


SITES: tuple[SiteSpec, ...] = (
    SiteSpec(
        code="mad",
        global_location_id="ES-MAD-1",
        name="Madrid Edge DC 1",
        description="Edge data centre serving the Madrid metropolitan RAN clusters",
        city="Madrid",
        country="Spain",
        country_code="ES",
        region="eu-south-1",
        timezone="Europe/Madrid",
        longitude=-3.6624,
        latitude=40.4473,
        address="Calle de Julián Camarillo 29, 28037 Madrid, Spain",
        civic=(
            (1, "Comunidad de Madrid"),
            (3, "Madrid"),
            (6, "Calle de Julián Camarillo"),
            (19, "29"),
            (24, "28037"),
            (25, "Edificio B"),
        ),
        octet=21,
    ),
    SiteSpec(
        code="dal",
        global_location_id="US-DAL-1",
        name="Dallas Regional DC 1",
        description="Regional data centre hosting the control plane, storage and US RAN sites",
        city="Dallas",
        country="United States",
        country_code="US",
        region="us-central-1",
        timezone="America/Chicago",
        longitude=-96.8197,
        latitude=32.8006,
        address="1950 N Stemmons Fwy, Dallas, TX 75207, United States",
        civic=(
            (1, "TX"),
            (2, "Dallas County"),
            (3, "Dallas"),
            (6, "N Stemmons Fwy"),
            (19, "1950"),
            (24, "75207"),
        ),
        octet=22,
    ),
    SiteSpec(
        code="tyo",
        global_location_id="JP-TYO-1",
        name="Tokyo Edge DC 1",
        description="Edge data centre with GPU-accelerated vRAN for the Tokyo metro area",
        city="Tokyo",
        country="Japan",
        country_code="JP",
        region="ap-northeast-1",
        timezone="Asia/Tokyo",
        longitude=139.7649,
        latitude=35.6867,
        address="1-2-1 Otemachi, Chiyoda-ku, Tokyo 100-0004, Japan",
        civic=(
            (1, "Tokyo"),
            (3, "Chiyoda-ku"),
            (4, "Otemachi 1-chome"),
            (19, "2-1"),
            (24, "100-0004"),
        ),
        octet=23,
    ),
)

ELEMENTS: tuple[ElementSpec, ...] = (
    ElementSpec(
        key="intel-e810-xxvda4t",
        role="nic",
        vendor="Intel Corporation",
        model="Ethernet Network Adapter E810-XXVDA4T",
        version="NVM 4.40",
        description="4x25GbE adapter with GNSS receiver, PTP grandmaster capable, SR-IOV",
        resource_class="NETWORKING",
        details={
            "ports": 4,
            "speedGbps": 25,
            "pciId": "8086:1593",
            "driver": "ice",
            "firmware": "4.40 0x8001c7d4 1.3534.0",
            "sriovTotalVfs": 256,
            "ptpCapable": True,
            "gnss": True,
        },
    ),
    ElementSpec(
        key="intel-e810-cqda2",
        role="nic",
        vendor="Intel Corporation",
        model="Ethernet Network Adapter E810-CQDA2",
        version="NVM 4.40",
        description="2x100GbE adapter with SR-IOV, DDP and hardware PTP timestamping",
        resource_class="NETWORKING",
        details={
            "ports": 2,
            "speedGbps": 100,
            "pciId": "8086:1592",
            "driver": "ice",
            "firmware": "4.40 0x8001c7d2 1.3534.0",
            "sriovTotalVfs": 256,
            "ptpCapable": True,
            "gnss": False,
        },
    ),
    ElementSpec(
        key="intel-acc100",
        role="accelerator",
        vendor="Intel Corporation",
        model="vRAN Dedicated Accelerator ACC100",
        version="FW 1.0.10",
        description="5G LDPC forward error correction offload for vRAN distributed units",
        resource_class="COMPUTE",
        details={
            "pciId": "8086:0d5c",
            "driver": "vfio-pci",
            "function": "5G LDPC FEC",
            "resourceName": "intel.com/intel_fec_acc100",
            "sriovTotalVfs": 16,
        },
    ),
    ElementSpec(
        key="nvidia-a100x",
        role="gpu",
        vendor="NVIDIA Corporation",
        model="A100X Converged Accelerator",
        version="VBIOS 92.00.9E.00.03",
        description="A100 80GB GPU with integrated ConnectX-7 for NVIDIA Aerial inline L1",
        resource_class="COMPUTE",
        details={
            "pciId": "10de:20b8",
            "driver": "nvidia 550.90.07",
            "memoryGiB": 80,
            "resourceName": "nvidia.com/gpu",
            "integratedNic": "ConnectX-7 2x200GbE",
        },
    ),
)

HARDWARE: tuple[HardwareSpec, ...] = (
    HardwareSpec(
        key="dell-poweredge-xr11",
        vendor="Dell Inc.",
        model="PowerEdge XR11",
        version="BIOS 1.14.1",
        description="Ruggedised short-depth 1U edge server for vRAN distributed units",
        form_factor="1U short-depth, NEBS Level 3",
        cpu_model="Intel(R) Xeon(R) Gold 6338N CPU @ 2.20GHz",
        sockets=1,
        cores_per_socket=32,
        memory_gib=256,
        bmc_type="iDRAC9",
        bmc_firmware="7.00.00.173",
        serial_style="dell",
        disks="2x 960 GB M.2 NVMe (BOSS-N1)",
        nic="intel-e810-xxvda4t",
        accelerator="intel-acc100",
    ),
    HardwareSpec(
        key="dell-poweredge-xr7620",
        vendor="Dell Inc.",
        model="PowerEdge XR7620",
        version="BIOS 1.7.5",
        description="Short-depth 2U edge server with two double-width GPUs",
        form_factor="2U short-depth, NEBS Level 3",
        cpu_model="Intel(R) Xeon(R) Gold 6433N",
        sockets=2,
        cores_per_socket=32,
        memory_gib=512,
        bmc_type="iDRAC9",
        bmc_firmware="7.10.30.00",
        serial_style="dell",
        disks="2x 1.92 TB NVMe",
        nic="intel-e810-xxvda4t",
        gpu="nvidia-a100x",
        gpu_count=2,
    ),
    HardwareSpec(
        key="hpe-proliant-dl110-gen11",
        vendor="Hewlett Packard Enterprise",
        model="ProLiant DL110 Gen11",
        version="U63 v1.50",
        description="Telco-optimised 1U edge server for vRAN distributed units",
        form_factor="1U short-depth, front I/O",
        cpu_model="Intel(R) Xeon(R) Gold 6433N",
        sockets=1,
        cores_per_socket=32,
        memory_gib=256,
        bmc_type="iLO 6",
        bmc_firmware="1.59",
        serial_style="hpe",
        disks="2x 960 GB NVMe (NS204i-u boot)",
        nic="intel-e810-xxvda4t",
        accelerator="intel-acc100",
    ),
    HardwareSpec(
        key="hpe-proliant-dl360-gen11",
        vendor="Hewlett Packard Enterprise",
        model="ProLiant DL360 Gen11",
        version="U54 v2.16",
        description="1U general-purpose server for the Kubernetes control plane",
        form_factor="1U rack",
        cpu_model="Intel(R) Xeon(R) Silver 4410Y",
        sockets=2,
        cores_per_socket=12,
        memory_gib=128,
        bmc_type="iLO 6",
        bmc_firmware="1.59",
        serial_style="hpe",
        disks="2x 960 GB NVMe RAID1",
        nic="intel-e810-cqda2",
    ),
    HardwareSpec(
        key="hpe-proliant-dl380-gen11",
        vendor="Hewlett Packard Enterprise",
        model="ProLiant DL380 Gen11",
        version="U54 v2.16",
        description="2U dual-socket server for 5G core user-plane and CNF workloads",
        form_factor="2U rack",
        cpu_model="Intel(R) Xeon(R) Gold 6448Y",
        sockets=2,
        cores_per_socket=32,
        memory_gib=512,
        bmc_type="iLO 6",
        bmc_firmware="1.59",
        serial_style="hpe",
        disks="2x 960 GB NVMe RAID1, 4x 3.84 TB NVMe",
        nic="intel-e810-cqda2",
        nic_count=2,
    ),
    HardwareSpec(
        key="supermicro-sys-221h-tnr",
        vendor="Super Micro Computer, Inc.",
        model="SYS-221H-TNR (Hyper)",
        version="BIOS 2.1",
        description="2U dual-socket high-density server for core network functions",
        form_factor="2U rack",
        cpu_model="Intel(R) Xeon(R) Platinum 8480+",
        sockets=2,
        cores_per_socket=56,
        memory_gib=1024,
        bmc_type="ASPEED AST2600 (Redfish)",
        bmc_firmware="01.02.04",
        serial_style="supermicro",
        disks="2x 1.92 TB NVMe, 6x 7.68 TB NVMe",
        nic="intel-e810-cqda2",
        nic_count=2,
    ),
    HardwareSpec(
        key="supermicro-ssg-121e-nes24r",
        vendor="Super Micro Computer, Inc.",
        model="SSG-121E-NES24R",
        version="BIOS 2.0",
        description="1U all-flash storage server, 24 E1.S NVMe bays, runs Ceph OSDs",
        form_factor="1U rack, 24x E1.S",
        cpu_model="Intel(R) Xeon(R) Gold 6430",
        sockets=2,
        cores_per_socket=32,
        memory_gib=384,
        bmc_type="ASPEED AST2600 (Redfish)",
        bmc_firmware="01.01.10",
        serial_style="supermicro",
        disks="2x 480 GB M.2 NVMe boot, 24x 7.68 TB E1.S NVMe",
        nic="intel-e810-cqda2",
    ),
)

STORAGE_CLASSES: tuple[StorageClassSpec, ...] = (
    StorageClassSpec(
        name="ceph-rbd",
        vendor="Rook / Ceph",
        model="Ceph RBD block storage",
        version="Ceph 18.2.4 (reef), Rook v1.14.9",
        description="Replicated (3x) block volumes from the Ceph cluster on dal-storage",
        provisioner="rook-ceph.rbd.csi.ceph.com",
        reclaim_policy="Delete",
        volume_binding_mode="Immediate",
        access_modes=("ReadWriteOnce",),
        is_default=True,
    ),
    StorageClassSpec(
        name="cephfs",
        vendor="Rook / Ceph",
        model="CephFS shared file system",
        version="Ceph 18.2.4 (reef), Rook v1.14.9",
        description="Shared POSIX file system volumes from the Ceph cluster on dal-storage",
        provisioner="rook-ceph.cephfs.csi.ceph.com",
        reclaim_policy="Delete",
        volume_binding_mode="Immediate",
        access_modes=("ReadWriteMany", "ReadWriteOnce"),
    ),
    StorageClassSpec(
        name="local-nvme",
        vendor="Kubernetes SIGs",
        model="Local NVMe persistent volumes",
        version="local-static-provisioner v2.6.0",
        description="Node-local NVMe volumes for latency-sensitive RAN and UPF workloads",
        provisioner="kubernetes.io/no-provisioner",
        reclaim_policy="Retain",
        volume_binding_mode="WaitForFirstConsumer",
        access_modes=("ReadWriteOnce",),
    ),
)

POOLS: tuple[PoolSpec, ...] = (
    PoolSpec(
        name="mad-ran-edge",
        site="mad",
        zone="es-mad-1a",
        role="ran-du",
        hardware="dell-poweredge-xr11",
        nodes=6,
        description="vRAN distributed units with FEC offload and PTP grandmaster NICs",
        subnet=10,
        tags=("ran", "du", "fec", "ptp", "sriov"),
        realtime=True,
    ),
    PoolSpec(
        name="mad-core",
        site="mad",
        zone="es-mad-1b",
        role="core",
        hardware="hpe-proliant-dl380-gen11",
        nodes=4,
        description="5G core user plane (UPF) and CU-UP network functions",
        subnet=20,
        tags=("core", "upf", "sriov", "dpdk"),
    ),
    PoolSpec(
        name="dal-control-plane",
        site="dal",
        zone="us-dal-1a",
        role="control-plane",
        hardware="hpe-proliant-dl360-gen11",
        nodes=3,
        description="Kubernetes control plane: API servers and the etcd quorum",
        subnet=10,
        tags=("control-plane", "etcd"),
        min_nodes=3,
        elastic=False,
    ),
    PoolSpec(
        name="dal-ran-edge",
        site="dal",
        zone="us-dal-1b",
        role="ran-du",
        hardware="hpe-proliant-dl110-gen11",
        nodes=5,
        description="vRAN distributed units with FEC offload and PTP grandmaster NICs",
        subnet=20,
        tags=("ran", "du", "fec", "ptp", "sriov"),
        realtime=True,
    ),
    PoolSpec(
        name="dal-storage",
        site="dal",
        zone="us-dal-1c",
        role="storage",
        hardware="supermicro-ssg-121e-nes24r",
        nodes=4,
        description="Ceph OSD nodes backing the ceph-rbd and cephfs storage classes",
        subnet=30,
        tags=("storage", "ceph-osd", "nvme"),
        min_nodes=3,
    ),
    PoolSpec(
        name="tyo-ran-edge",
        site="tyo",
        zone="jp-tyo-1a",
        role="ran-du",
        hardware="dell-poweredge-xr7620",
        nodes=4,
        description="GPU-accelerated vRAN distributed units (NVIDIA Aerial inline L1)",
        subnet=10,
        tags=("ran", "du", "gpu", "aerial", "ptp", "sriov"),
        realtime=True,
    ),
    PoolSpec(
        name="tyo-core",
        site="tyo",
        zone="jp-tyo-1b",
        role="core",
        hardware="supermicro-sys-221h-tnr",
        nodes=3,
        description="5G core control and user plane, near-RT RIC and CU-CP functions",
        subnet=20,
        tags=("core", "upf", "ric", "sriov", "dpdk"),
    ),
)

CLUSTER = ClusterSpec(
    name="ocloud-k8s-1",
    description="Kubernetes cluster managing every node of the O-Cloud across all sites",
    service_uri="https://api.ocloud.example:6443",
    kubernetes_version="v1.30.4",
    container_runtime="containerd://1.7.20",
    os_image="Ubuntu 22.04.4 LTS",
    kernel="5.15.0-119-generic",
    kernel_realtime="5.15.0-1063-realtime",
    capabilities={
        "platform": "Kubernetes",
        "kubernetesVersion": "v1.30.4",
        "dmsProfiles": "native_k8sapi,sol018_helmcli",
        "cni": "calico v3.28.1 + multus v4.1.0",
        "sriovNetworkOperator": "true",
        "ptpOperator": "true",
        "gpuOperator": "true",
        "realtimeKernel": "true",
        "storageClasses": "ceph-rbd,cephfs,local-nvme",
        "architecture": "amd64",
    },
)

#: the server model of a pool created without an instance type: the general-purpose worker
DEFAULT_HARDWARE = "hpe-proliant-dl380-gen11"

SITE_BY_CODE: Mapping[str, SiteSpec] = {site.code: site for site in SITES}
HARDWARE_BY_KEY: Mapping[str, HardwareSpec] = {hardware.key: hardware for hardware in HARDWARE}
ELEMENT_BY_KEY: Mapping[str, ElementSpec] = {element.key: element for element in ELEMENTS}
POOL_BY_NAME: Mapping[str, PoolSpec] = {pool.name: pool for pool in POOLS}
