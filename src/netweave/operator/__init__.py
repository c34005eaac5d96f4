"""The netweave operator: ``O2IMSGateway`` custom resources become running gateways.

``netweave operator`` (kopf) reconciles each ``O2IMSGateway`` (``o2ims.oran.org/v1alpha1``,
``deploy/operator/crd.yaml``) into the objects the Helm chart makes: a Deployment, its
ConfigMap(s), Service, ServiceAccount, PodDisruptionBudget, the ClusterRole and binding of
the Kubernetes backend, and a cert-manager Certificate when asked for.

========================  ===========================================================
:mod:`.spec`              the spec's fields and defaults, and the checks the CRD cannot make
:mod:`.manifests`         the objects of a spec (compared with the chart in tests)
:mod:`.rules`             the gateway's ClusterRole rules
:mod:`.kube`              server-side apply, delete, status and discovery requests
:mod:`.status`            ``observedGeneration`` and the conditions
:mod:`.reconcile`         one reconciliation, and the deletion of cluster-scoped objects
:mod:`.runner`            kopf: handlers, login, settings, :func:`run`
========================  ===========================================================
"""

from netweave.operator.runner import OperatorConfig, run

__all__ = ["OperatorConfig", "run"]
