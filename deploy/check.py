#!/usr/bin/env python3
"""Validates the deployment recipes under deploy/ against each other and against what Huskimo does.

    python3 deploy/check.py              # every check; exit 0 when all pass, 1 otherwise
    python3 deploy/check.py --self-test  # break copies of the files in memory; exit 0 when every break is caught

Needs Python 3.8+ and PyYAML only (Debian: python3-yaml). Nothing here talks to a cluster or a broker.
"""
import argparse
import copy
import json
import math
import os
import re
import sys
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover
    print("deploy/check.py needs PyYAML (Debian: apt-get install python3-yaml; pip: PyYAML)", file=sys.stderr)
    sys.exit(2)

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent

K8S = "deploy/kubernetes"
CONFIGMAP = f"{K8S}/configmap.yaml"
CONFIG_KEY = "huskimo.yaml"
SECRET_EXAMPLE = f"{K8S}/secret.example.yaml"
KEDA = f"{K8S}/keda-scaledobject.yaml"
KUSTOMIZATION = f"{K8S}/kustomization.yaml"
DEFINITIONS = "deploy/rabbitmq/definitions.json"
RABBITMQ_CONF = "deploy/rabbitmq/rabbitmq.conf"
ALERTS = "deploy/prometheus/alerts.yaml"
DASHBOARD = "deploy/grafana/huskimo-dashboard.json"
CRON = "deploy/cron/huskimo.cron"
SYSTEMD = "deploy/systemd"
SYSTEMD_SECRETS = f"{SYSTEMD}/secrets.example.env"
CONTAINERFILE = "deploy/release/Containerfile"
RUNTIME_PACKAGES = "deploy/release/runtime-packages.txt"
INSTALL_DIR = "/opt/huskimo/bin/"

# What the program exports on --metrics-port: `huskimo-planner metrics` prints its catalogue, and this file is that
# output (the Swift test MetricsCatalogueTests pins it, and checks the catalogue against what the exporter emits), so a
# renamed metric breaks this check instead of silently emptying a dashboard panel.
METRICS_LIST = DEPLOY / "prometheus" / "metrics.json"


def _exported_metrics():
    try:
        catalogue = json.loads(METRICS_LIST.read_text(encoding="utf-8"))
        plain = {m["name"] for m in catalogue if m["type"] in ("counter", "gauge")}
        histograms = {m["name"] for m in catalogue if m["type"] == "histogram"}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"deploy-check: cannot read the exported metrics from {METRICS_LIST}: {e}")
    if not plain or not histograms:
        raise SystemExit(f"deploy-check: {METRICS_LIST} lists no counters, gauges or histograms")
    return plain, histograms


COUNTERS_AND_GAUGES, HISTOGRAMS = _exported_metrics()
PROMETHEUS_BUILTINS = {"up"}
KNOWN_METRICS = (COUNTERS_AND_GAUGES | PROMETHEUS_BUILTINS
                 | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")})
SCRAPE_JOBS = {"huskimo-worker", "huskimo-loader"}
EXPECTED_ALERTS = {"HuskimoFailedJobs", "HuskimoLoaderPaused", "HuskimoBacklogOld", "HuskimoStaleChannel", "HuskimoLoaderDown",
                   "HuskimoWorkersNoneWithBacklog", "HuskimoThrottling"}

LONGEST_JOB_S = 1800            # KEDA's cooldown must outlast the longest extract job
MIN_CONSUMER_TIMEOUT_MS = 3_600_000
DEFAULT_GRACE_S = 30            # huskimo-worker extract --grace default
DEFAULT_RETRY_DELAYS = [10, 60, 600, 3600]
DELIVERY_LIMIT = 20
SECRET_CONFIG_KEYS = {("queue", "url"), ("s3", "secret_access_key"), ("channels", "api_key"), ("targets", "password")}
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Problem(Exception):
    """A check cannot go on (its input is missing or unreadable)."""


class Files:
    """The text of every file under deploy/, keyed by its path from the repository root, with parses cached."""

    def __init__(self, texts):
        self.texts = texts
        self._cache = {}

    @classmethod
    def from_disk(cls):
        texts = {}
        for path in sorted(DEPLOY.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc"}:
                try:
                    texts[path.relative_to(ROOT).as_posix()] = path.read_text(encoding="utf-8")
                except UnicodeDecodeError:
                    pass
        return cls(texts)

    def text(self, path):
        if path not in self.texts:
            raise Problem(f"{path}: missing")
        return self.texts[path]

    def yaml_docs(self, path):
        key = ("yaml", path)
        if key not in self._cache:
            try:
                self._cache[key] = [d for d in yaml.safe_load_all(self.text(path)) if d is not None]
            except yaml.YAMLError as e:
                self._cache[key] = Problem(f"{path}: not valid YAML: {one_line(e)}")
        if isinstance(self._cache[key], Problem):
            raise self._cache[key]
        return self._cache[key]

    def json(self, path):
        key = ("json", path)
        if key not in self._cache:
            try:
                self._cache[key] = json.loads(self.text(path))
            except json.JSONDecodeError as e:
                self._cache[key] = Problem(f"{path}: not valid JSON: {e}")
        if isinstance(self._cache[key], Problem):
            raise self._cache[key]
        return self._cache[key]

    def under(self, folder, suffixes=None):
        return [p for p in self.texts if p.startswith(folder + "/") and (suffixes is None or p.endswith(tuple(suffixes)))]


def one_line(error):
    return " ".join(str(error).split())


# ---------------------------------------------------------------------------------------------- Kubernetes model

def k8s_docs(files):
    """(path, doc) for every manifest under deploy/kubernetes."""
    out = []
    for path in files.under(K8S, (".yaml", ".yml")):
        for doc in files.yaml_docs(path):
            if isinstance(doc, dict):
                out.append((path, doc))
    return out


def pod_spec(doc):
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}:
        return ((spec.get("template") or {}).get("spec")) or {}
    if kind == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    return None


def workloads(files):
    """(path, doc, podspec) for every pod-running manifest."""
    return [(p, d, s) for p, d in k8s_docs(files) for s in [pod_spec(d)] if s is not None]


def example_secrets(files):
    """{secret name: set of keys} from secret.example.yaml."""
    secrets = {}
    for doc in files.yaml_docs(SECRET_EXAMPLE):
        if doc.get("kind") == "Secret":
            keys = set((doc.get("stringData") or {}).keys()) | set((doc.get("data") or {}).keys())
            secrets[(doc.get("metadata") or {}).get("name")] = keys
    if not secrets:
        raise Problem(f"{SECRET_EXAMPLE}: no Secret")
    return secrets


def configmaps(files):
    return {(d.get("metadata") or {}).get("name"): (d.get("data") or {})
            for _, d in k8s_docs(files) if d.get("kind") == "ConfigMap"}


def container_env(container, secrets, cms):
    """Names of the environment variables a container gets, and problems with its references."""
    names, problems = set(), []
    for env in container.get("env") or []:
        names.add(env.get("name"))
        ref = ((env.get("valueFrom") or {}).get("secretKeyRef"))
        if ref:
            if ref.get("name") not in secrets:
                problems.append(f"env {env.get('name')}: secretKeyRef to Secret {ref.get('name')!r}, "
                                f"which {SECRET_EXAMPLE} does not define")
            elif ref.get("key") not in secrets[ref.get("name")]:
                problems.append(f"env {env.get('name')}: secretKeyRef key {ref.get('key')!r} is not in "
                                f"Secret {ref.get('name')} of {SECRET_EXAMPLE}")
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "secretRef" in source:
            name = (source["secretRef"] or {}).get("name")
            if name not in secrets:
                problems.append(f"envFrom secretRef {name!r} is not a Secret in {SECRET_EXAMPLE}")
            names |= {prefix + k for k in secrets.get(name, ())}
        if "configMapRef" in source:
            name = (source["configMapRef"] or {}).get("name")
            if name not in cms:
                problems.append(f"envFrom configMapRef {name!r} is not a ConfigMap in {K8S}")
            names |= {prefix + k for k in cms.get(name, {})}
    return names, problems


def args_of(container):
    return [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]


def flag(args, name, default=None):
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default


def huskimo_config(files):
    """The huskimo.yaml embedded in the ConfigMap, as text and parsed."""
    docs = [d for d in files.yaml_docs(CONFIGMAP) if d.get("kind") == "ConfigMap"]
    if not docs or CONFIG_KEY not in (docs[0].get("data") or {}):
        raise Problem(f"{CONFIGMAP}: no ConfigMap with a {CONFIG_KEY} key")
    text = docs[0]["data"][CONFIG_KEY]
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise Problem(f"{CONFIGMAP}: {CONFIG_KEY} is not valid YAML: {one_line(e)}")
    if not isinstance(config, dict):
        raise Problem(f"{CONFIGMAP}: {CONFIG_KEY} is not a mapping")
    return (docs[0].get("metadata") or {}).get("name"), text, config


def config_targets(config):
    return [t.get("name") for t in config.get("targets") or [] if isinstance(t, dict)]


# ------------------------------------------------------------------------------------------------------ checks

def check_syntax(files):
    problems, counts = [], {"YAML": 0, "JSON": 0}
    for path in files.texts:
        try:
            if path.endswith((".yaml", ".yml")):
                files.yaml_docs(path)
                counts["YAML"] += 1
            elif path.endswith(".json"):
                files.json(path)
                counts["JSON"] += 1
        except Problem as p:
            problems.append(str(p))
    return problems, f"{counts['YAML']} YAML and {counts['JSON']} JSON files parse"


def check_kustomization(files):
    problems = []
    docs = files.yaml_docs(KUSTOMIZATION)
    resources = (docs[0] if docs else {}).get("resources") or []
    listed = {f"{K8S}/{r}" for r in resources}
    for path in sorted(listed):
        if path not in files.texts:
            problems.append(f"{KUSTOMIZATION}: resource {path} does not exist")
    if SECRET_EXAMPLE in listed:
        problems.append(f"{KUSTOMIZATION}: lists {SECRET_EXAMPLE}; the example Secret must never be applied")
    for path in files.under(K8S, (".yaml", ".yml")):
        if path in (KUSTOMIZATION, SECRET_EXAMPLE):
            continue
        if path not in listed:
            problems.append(f"{KUSTOMIZATION}: does not list {path}")
        for doc in files.yaml_docs(path):
            for key in ("apiVersion", "kind"):
                if not doc.get(key):
                    problems.append(f"{path}: a document without {key}")
            if not (doc.get("metadata") or {}).get("name"):
                problems.append(f"{path}: a {doc.get('kind')} without metadata.name")
            if doc.get("kind") == "Secret":
                problems.append(f"{path}: a Secret outside *.example.* files")
    for path in files.texts:
        if ".example." in path:
            continue
        if path.endswith((".yaml", ".yml")) and path.startswith(K8S):
            if re.search(r"(?i)change-me", files.text(path)):
                problems.append(f"{path}: a 'change-me' placeholder outside an example file")
    return problems, f"{len(listed)} resources listed, example Secret not applied"


def check_network_policy(files):
    """The probe port is reachable only from Prometheus: an Ingress NetworkPolicy over every Huskimo pod whose only
    rule admits the port named metrics (the workers' and loaders' containers name it so)."""
    problems = []
    policies = [(p, d) for p, d in k8s_docs(files) if d.get("kind") == "NetworkPolicy"]
    if not policies:
        return [f"{K8S}: no NetworkPolicy: any pod may reach the workers' probe port"], ""
    for path, doc in policies:
        spec = doc.get("spec") or {}
        selector = ((spec.get("podSelector") or {}).get("matchLabels") or {})
        if selector.get("app.kubernetes.io/part-of") != "huskimo":
            problems.append(f"{path}: podSelector must match app.kubernetes.io/part-of: huskimo (every Huskimo pod)")
        if "Ingress" not in (spec.get("policyTypes") or []):
            problems.append(f"{path}: policyTypes must include Ingress")
        for rule in spec.get("ingress") or []:
            ports = [str(p.get("port")) for p in rule.get("ports") or []]
            if ports != ["metrics"]:
                problems.append(f"{path}: an ingress rule admits ports {ports or 'all'}; only the port named metrics")
            if not rule.get("from"):
                problems.append(f"{path}: an ingress rule from anywhere; name Prometheus's namespace and pods")
    return problems, f"{len(policies)} NetworkPolicy: the metrics port from Prometheus only"


def check_keda(files):
    problems = []
    objects = [(p, d) for p, d in k8s_docs(files) if d.get("kind") == "ScaledObject"]
    if not objects:
        return [f"{KEDA}: no ScaledObject"], ""
    _, _, config = huskimo_config(files)
    prefix = (config.get("queue") or {}).get("prefix", "huskimo")
    deployments = {(d.get("metadata") or {}).get("name"): d for _, d in k8s_docs(files) if d.get("kind") == "Deployment"}
    secrets, cms = example_secrets(files), configmaps(files)
    for path, so in objects:
        spec = so.get("spec") or {}
        target = (spec.get("scaleTargetRef") or {}).get("name")
        deployment = deployments.get(target)
        if deployment is None:
            problems.append(f"{path}: scaleTargetRef {target!r} is not a Deployment in {K8S}")
        cooldown = spec.get("cooldownPeriod", 300)
        if not isinstance(cooldown, int) or cooldown < LONGEST_JOB_S:
            problems.append(f"{path}: cooldownPeriod {cooldown} must be >= {LONGEST_JOB_S} s (longer than the "
                            f"longest job, or KEDA scales busy workers to zero)")
        triggers = [t for t in spec.get("triggers") or [] if t.get("type") == "rabbitmq"]
        if not triggers:
            problems.append(f"{path}: no rabbitmq trigger")
        for trigger in triggers:
            meta = {k: str(v) for k, v in (trigger.get("metadata") or {}).items()}
            if meta.get("protocol") != "http":
                problems.append(f"{path}: rabbitmq trigger protocol is {meta.get('protocol')!r}; it must be 'http' "
                                f"(over amqp KEDA counts only ready messages and scales busy workers away)")
            if meta.get("mode") != "QueueLength":
                problems.append(f"{path}: rabbitmq trigger mode is {meta.get('mode')!r}; expected 'QueueLength'")
            if meta.get("queueName") != f"{prefix}.extract":
                problems.append(f"{path}: queueName is {meta.get('queueName')!r}; expected {prefix + '.extract'!r}")
            if meta.get("excludeUnacknowledged", "").lower() != "false":
                problems.append(f"{path}: excludeUnacknowledged must be \"false\" (count ready + unacked), "
                                f"is {meta.get('excludeUnacknowledged')!r}")
            try:
                if float(meta.get("value", "nan")) <= 0:
                    raise ValueError
            except ValueError:
                problems.append(f"{path}: rabbitmq trigger value must be a positive number, is {meta.get('value')!r}")
            env_names = [meta[k] for k in ("hostFromEnv", "usernameFromEnv", "passwordFromEnv") if k in meta]
            if "hostFromEnv" not in meta and "host" not in meta and "authenticationRef" not in trigger:
                problems.append(f"{path}: rabbitmq trigger has no hostFromEnv, host or authenticationRef")
            if deployment is not None and env_names:
                containers = pod_spec(deployment).get("containers") or []
                wanted = spec.get("scaleTargetRef", {}).get("envSourceContainerName")
                container = next((c for c in containers if c.get("name") == wanted), containers[0] if containers else {})
                available, _ = container_env(container, secrets, cms)
                for name in env_names:
                    if name not in available:
                        problems.append(f"{path}: {name} (…FromEnv) is not in the environment of container "
                                        f"{container.get('name')!r} of Deployment {target} (add it to "
                                        f"{SECRET_EXAMPLE})")
    return problems, "rabbitmq trigger counts ready + unacked (http, QueueLength), cooldown outlasts the longest job"


def check_secret_refs(files):
    problems, refs = [], 0
    secrets, cms = example_secrets(files), configmaps(files)
    for path, doc, spec in workloads(files):
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            names, found = container_env(c, secrets, cms)
            refs += len(c.get("envFrom") or []) + len(c.get("env") or [])
            problems += [f"{path}: {doc['kind']} {doc['metadata']['name']}, container {c.get('name')}: {p}" for p in found]
    for _, so in ((p, d) for p, d in k8s_docs(files) if d.get("kind") == "ScaledObject"):
        for trigger in (so.get("spec") or {}).get("triggers") or []:
            for key in ("hostFromEnv", "usernameFromEnv", "passwordFromEnv"):
                name = (trigger.get("metadata") or {}).get(key)
                if name and not any(name in keys for keys in secrets.values()):
                    problems.append(f"{KEDA}: {key} {name} is not a key of a Secret in {SECRET_EXAMPLE}")
    return problems, f"{refs} env/envFrom references resolve to keys of {Path(SECRET_EXAMPLE).name}"


def check_config_env(files):
    problems = []
    cm_name, text, config = huskimo_config(files)
    used = set(ENV_REF.findall(text))
    # Secrets must be ${VAR} references, never values.
    for section, key in SECRET_CONFIG_KEYS:
        value = config.get(section)
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if isinstance(item, dict) and key in item and not ENV_REF.search(str(item[key])):
                where = f"{section}[{i}].{key}" if isinstance(value, list) else f"{section}.{key}"
                problems.append(f"{CONFIGMAP}: {where} holds a literal value; secrets must be ${{VAR}} references")
    if not (config.get("queue") or {}).get("management_url"):
        problems.append(f"{CONFIGMAP}: queue.management_url is not set (the loaders' unacked gauges, which the "
                        f"dashboard and alerts read, need it)")
    if len(ENV_REF.findall(text)) != text.count("${"):
        problems.append(f"{CONFIGMAP}: a malformed ${{…}} reference in {CONFIG_KEY}")
    secrets, cms = example_secrets(files), configmaps(files)
    mounting = 0
    for path, doc, spec in workloads(files):
        volumes = {v.get("name") for v in spec.get("volumes") or [] if (v.get("configMap") or {}).get("name") == cm_name}
        items = {v.get("name"): v["configMap"].get("items") for v in spec.get("volumes") or []
                 if (v.get("configMap") or {}).get("name") == cm_name}
        for c in spec.get("containers") or []:
            mounts = [m for m in c.get("volumeMounts") or [] if m.get("name") in volumes]
            if not mounts:
                continue
            mounting += 1
            who = f"{path}: {doc['kind']} {doc['metadata']['name']}, container {c.get('name')}"
            available, _ = container_env(c, secrets, cms)
            for var in sorted(used - available):
                problems.append(f"{who}: {CONFIG_KEY} uses ${{{var}}} but the container's environment lacks it "
                                f"(add it to Secret huskimo-secrets in {SECRET_EXAMPLE})")
            paths = set()
            for m in mounts:
                base = m.get("mountPath", "").rstrip("/")
                if m.get("subPath"):
                    if m["subPath"] == CONFIG_KEY:
                        paths.add(base)
                elif items.get(m["name"]):
                    paths |= {f"{base}/{i['path']}" for i in items[m["name"]] if i.get("key") == CONFIG_KEY}
                else:
                    paths.add(f"{base}/{CONFIG_KEY}")
            config_arg = flag(args_of(c), "--config")
            if config_arg not in paths:
                problems.append(f"{who}: --config {config_arg} is not where {CONFIG_KEY} is mounted ({sorted(paths)})")
    if not mounting:
        problems.append(f"{K8S}: no container mounts ConfigMap {cm_name}")
    # systemd and cron read the same file with the same variables.
    env_keys = set(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=", files.text(SYSTEMD_SECRETS), re.M))
    for var in sorted(used - env_keys):
        problems.append(f"{SYSTEMD_SECRETS}: lacks {var}, which {CONFIG_KEY} uses")
    return problems, f"{len(used)} ${{VAR}}s in {CONFIG_KEY} reach all {mounting} containers that mount it"


def strictly_equal(a, b):
    """== that tells True from 1 (RabbitMQ does: a bool argument is not an int one)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strictly_equal(x, y) for x, y in zip(a, b))
    return a == b


def check_definitions(files):
    """The definitions are huskimo-planner topology's output for the shipped config, pinned byte for byte by the Swift
    test DeployContractTests (the queue arguments are the product's, never copied here). This checks what a hand edit
    could break between the file and the recipes: vhosts, the one direct exchange of the ConfigMap's prefix, durable
    queues each bound by its own name, and a load queue pair for every target the ConfigMap names."""
    problems = []
    _, _, config = huskimo_config(files)
    prefix = (config.get("queue") or {}).get("prefix", "huskimo")
    d = files.json(DEFINITIONS)
    vhosts = {v.get("name") for v in d.get("vhosts") or []}
    for kind in ("exchanges", "queues", "bindings"):
        for item in d.get(kind) or []:
            if item.get("vhost") not in vhosts:
                problems.append(f"{DEFINITIONS}: {kind[:-1]} {item.get('name') or item.get('destination')} is in vhost "
                                f"{item.get('vhost')!r}, which 'vhosts' does not define")
    exchanges = d.get("exchanges") or []
    want_exchange = {"name": prefix, "type": "direct", "durable": True, "auto_delete": False, "internal": False}
    if len(exchanges) != 1 or any(not strictly_equal(exchanges[0].get(k), v) for k, v in want_exchange.items()):
        problems.append(f"{DEFINITIONS}: expected exactly one exchange {want_exchange}, found "
                        f"{[{k: e.get(k) for k in want_exchange} for e in exchanges]}")
    queues = {q.get("name"): q for q in d.get("queues") or []}
    for name, q in sorted(queues.items()):
        if q.get("durable") is not True or q.get("auto_delete") is not False:
            problems.append(f"{DEFINITIONS}: queue {name} must be durable and not auto_delete")
    for t in config_targets(config):
        for name in (f"{prefix}.load.{t}", f"{prefix}.load.{t}.failed"):
            if name not in queues:
                problems.append(f"{DEFINITIONS}: queue {name} is missing (target {t} of {CONFIGMAP}); regenerate with "
                                f"huskimo-planner topology")
    bindings = [(b.get("source"), b.get("destination"), b.get("destination_type"), b.get("routing_key"))
                for b in d.get("bindings") or []]
    want = {(prefix, n, "queue", n) for n in queues}
    for b in sorted(want - set(bindings)):
        problems.append(f"{DEFINITIONS}: binding {b[0]} → {b[1]} with key {b[3]} is missing")
    for b in sorted(set(bindings) - want, key=str):
        problems.append(f"{DEFINITIONS}: unexpected binding {b}")
    return problems, f"{len(queues)} durable queues, each bound by its name; every target's load queues present"


def check_rabbitmq_conf(files):
    values = {}
    for line in files.text(RABBITMQ_CONF).splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            k, v = (s.strip() for s in line.split("=", 1))
            values[k] = v
    timeout = values.get("consumer_timeout")
    if timeout is None:
        return [f"{RABBITMQ_CONF}: consumer_timeout is not set (default 30 min kills long jobs)"], ""
    if not timeout.isdigit() or int(timeout) < MIN_CONSUMER_TIMEOUT_MS:
        return [f"{RABBITMQ_CONF}: consumer_timeout {timeout} must be >= {MIN_CONSUMER_TIMEOUT_MS} ms"], ""
    return [], f"consumer_timeout {int(timeout) / 3_600_000:g} h"


def probe_ok(probe, path, port_names):
    get = (probe or {}).get("httpGet") or {}
    return get.get("path") == path and get.get("port") in port_names


def check_pods(files):
    problems = []
    _, _, config = huskimo_config(files)
    targets = config_targets(config)
    loaded = set()
    summary = []
    for path, doc, spec in workloads(files):
        name = f"{path}: {doc['kind']} {doc['metadata']['name']}"
        for c in spec.get("containers") or []:
            args = args_of(c)
            if "huskimo-worker" not in " ".join(args):
                continue
            role = "extract" if "extract" in args else "load" if "load" in args else None
            if role is None:
                problems.append(f"{name}: huskimo-worker without extract or load")
                continue
            metrics_port = flag(args, "--metrics-port")
            ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
            if metrics_port is None or str(ports.get("metrics")) != str(metrics_port):
                problems.append(f"{name}: --metrics-port {metrics_port} must match the container port named metrics "
                                f"({ports.get('metrics')})")
            port_refs = {"metrics", ports.get("metrics")}
            if not probe_ok(c.get("livenessProbe"), "/healthz", port_refs):
                problems.append(f"{name}: livenessProbe must be httpGet /healthz on the metrics port")
            if not probe_ok(c.get("readinessProbe"), "/readyz", port_refs):
                problems.append(f"{name}: readinessProbe must be httpGet /readyz on the metrics port")
            if not ((c.get("resources") or {}).get("limits") or {}).get("memory"):
                problems.append(f"{name}: no memory limit")
            if role == "extract":
                grace = float(flag(args, "--grace", DEFAULT_GRACE_S))
                termination = spec.get("terminationGracePeriodSeconds", 30)
                if not termination > grace:
                    problems.append(f"{name}: terminationGracePeriodSeconds {termination} must exceed --grace {grace:g} "
                                    f"(the kubelet would SIGKILL workers still handing jobs back)")
                concurrency = flag(args, "--concurrency", "4")
                if not (concurrency.isdigit() and 1 <= int(concurrency) <= 256):
                    problems.append(f"{name}: --concurrency {concurrency} must be 1–256")
                summary.append(f"worker grace {grace:g} s < {termination} s")
            else:
                target = flag(args, "--target")
                if target not in targets:
                    problems.append(f"{name}: --target {target!r} is not a target in {CONFIGMAP} ({targets})")
                loaded.add(target)
    for t in targets:
        if t not in loaded:
            problems.append(f"{K8S}: no loader Deployment for target {t!r} (huskimo-worker load --target {t})")
    cronjobs = [(p, d) for p, d in k8s_docs(files) if d.get("kind") == "CronJob"]
    if not cronjobs:
        problems.append(f"{K8S}: no planner CronJob")
    for path, cj in cronjobs:
        if (cj.get("spec") or {}).get("concurrencyPolicy") != "Forbid":
            problems.append(f"{path}: CronJob {cj['metadata']['name']} must have concurrencyPolicy: Forbid")
        containers = pod_spec(cj).get("containers") or []
        if not any("plan" in args_of(c) for c in containers):
            problems.append(f"{path}: CronJob {cj['metadata']['name']} does not run huskimo-planner plan")
    return problems, "; ".join(summary + [f"loaders for {sorted(loaded)}", "probes on /healthz and /readyz"])


# systemd --------------------------------------------------------------------------------------------------------

def parse_unit(text):
    """{section: {key: [values]}} of a systemd unit file (comments and continuation lines handled)."""
    sections, current, pending = {}, None, ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif "=" in line and current is not None:
            k, v = line.split("=", 1)
            current.setdefault(k.strip(), []).append(v.strip())
    return sections


def timespan_seconds(value):
    if value.strip() == "infinity":
        return math.inf
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60,
             "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400}
    total, rest = 0.0, value.replace(" ", "")
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)([a-z]*)", rest):
        if unit not in units and unit != "":
            raise ValueError(value)
        total += float(number) * units.get(unit, 1)
    if not re.fullmatch(r"(\d+(?:\.\d+)?[a-z]*)+", rest):
        raise ValueError(value)
    return total


def check_systemd(files):
    problems = []

    def unit(name):
        return parse_unit(files.text(f"{SYSTEMD}/{name}"))

    def one(u, section, key):
        values = u.get(section, {}).get(key) or []
        return values[-1] if values else None

    def common(path, u, exec_words):
        service = u.get("Service", {})
        exec_start = " ".join(service.get("ExecStart") or [])
        for word in exec_words:
            if word not in exec_start:
                problems.append(f"{path}: ExecStart lacks {word!r}")
        if "/etc/huskimo/secrets.env" not in service.get("EnvironmentFile", []):
            problems.append(f"{path}: no EnvironmentFile=/etc/huskimo/secrets.env (the config's ${{VAR}} secrets)")
        defined = {e.split("=", 1)[0] for line in service.get("Environment", []) for e in line.split()}
        for var in ENV_REF.findall(exec_start):
            if var not in defined:
                problems.append(f"{path}: ExecStart uses ${{{var}}} without a default Environment={var}=…")
        for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict")):
            if one(u, "Service", key) != want:
                problems.append(f"{path}: {key}={want} expected (hardening)")
        return service, exec_start

    def stop_timeout(path, u):
        value = one(u, "Service", "TimeoutStopSec")
        if value is None:
            problems.append(f"{path}: no TimeoutStopSec")
            return None
        try:
            return timespan_seconds(value)
        except ValueError:
            problems.append(f"{path}: TimeoutStopSec={value} is not a time span")

    path = f"{SYSTEMD}/huskimo-worker@.service"
    u = unit("huskimo-worker@.service")
    service, exec_start = common(path, u, ["huskimo-worker extract", "--config", "--metrics-port"])
    grace = float(flag(exec_start.split(), "--grace", DEFAULT_GRACE_S))
    timeout = stop_timeout(path, u)
    if timeout is not None and not timeout > grace:
        problems.append(f"{path}: TimeoutStopSec ({timeout:g} s) must exceed --grace {grace:g} "
                        f"(systemd would SIGKILL a worker still handing jobs back)")
    for key, want in (("KillSignal", "SIGTERM"), ("Restart", "on-failure")):
        if one(u, "Service", key) != want:
            problems.append(f"{path}: {key}={want} expected, found {one(u, 'Service', key)}")

    path = f"{SYSTEMD}/huskimo-loader@.service"
    u = unit("huskimo-loader@.service")
    common(path, u, ["huskimo-worker load", "--config", "--target %i", "--metrics-port"])
    stop_timeout(path, u)
    for key, want in (("KillSignal", "SIGTERM"), ("Restart", "on-failure")):
        if one(u, "Service", key) != want:
            problems.append(f"{path}: {key}={want} expected, found {one(u, 'Service', key)}")

    path = f"{SYSTEMD}/huskimo-planner.service"
    u = unit("huskimo-planner.service")
    common(path, u, ["huskimo-planner plan", "--config"])
    if one(u, "Service", "Type") != "oneshot":
        problems.append(f"{path}: Type=oneshot expected")

    path = f"{SYSTEMD}/huskimo-planner.timer"
    u = unit("huskimo-planner.timer")
    if not one(u, "Timer", "OnCalendar"):
        problems.append(f"{path}: no OnCalendar")
    if one(u, "Timer", "Persistent") not in ("true", "yes"):
        problems.append(f"{path}: Persistent=true expected (a missed night runs at boot)")
    if one(u, "Timer", "Unit") not in (None, "huskimo-planner.service"):
        problems.append(f"{path}: Unit= must be huskimo-planner.service")
    return problems, f"worker --grace {grace:g} s < TimeoutStopSec {timeout if timeout is None else f'{timeout:g}'} s; timer persistent"


def check_cron(files):
    problems, jobs, env = [], [], {}
    text = files.text(CRON)
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", s)
        if m:
            env[m.group(1)] = m.group(2)
            continue
        fields = s.split(None, 6)
        if len(fields) < 7:
            problems.append(f"{CRON}: not a /etc/cron.d line (5 time fields, user, command): {s[:60]}")
            continue
        jobs.append(fields[6])
        if re.search(r"(?<!\\)%", fields[6]):
            problems.append(f"{CRON}: unescaped % in a command (cron turns it into a newline): {fields[6][:60]}")
    run = [j for j in jobs if "huskimo-planner run" in j]
    if not run:
        problems.append(f"{CRON}: no `huskimo-planner run` line")
    for j in run:
        if "flock" not in j:
            problems.append(f"{CRON}: the run line has no flock (nights could overlap)")
        if "--config" not in j:
            problems.append(f"{CRON}: the run line has no --config")
    if not any("huskimo-planner status" in j and "--json" in j for j in jobs):
        problems.append(f"{CRON}: no `huskimo-planner status --json` line")
    if not env.get("MAILTO"):
        problems.append(f"{CRON}: MAILTO is not set (nobody hears of failures)")
    if not re.search(r"^#.*huskimo-planner plan", text, re.M):
        problems.append(f"{CRON}: the commented fleet-style `huskimo-planner plan` line is missing")
    return problems, f"{len(jobs)} jobs, run under flock, status mailed to MAILTO"


# Prometheus / Grafana -------------------------------------------------------------------------------------------

PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                   "offset", "inf", "nan", "atan2", "start", "end"}


def promql_metric_names(expr):
    """Metric names in a PromQL expression (a scanner, not a parser: enough for our rules and panels)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"'(?:[^'\\]|\\.)*'", "''", s)
    s = re.sub(r"`[^`]*`", "``", s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\$\{?\w+\}?", " ", s)
    names = []
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)", s):
        if re.match(r"\s*\(", s[m.end():]) or m.group(1).lower() in PROMQL_KEYWORDS:
            continue
        names.append(m.group(1))
    return names


def check_alerts(files):
    problems, seen = [], set()
    docs = files.yaml_docs(ALERTS)
    groups = (docs[0] if docs else {}).get("groups") or []
    if not groups:
        return [f"{ALERTS}: no groups"], ""
    for g in groups:
        for rule in g.get("rules") or []:
            name = rule.get("alert") or rule.get("record")
            where = f"{ALERTS}: {name or '(unnamed rule)'}"
            if "record" in rule:
                continue
            seen.add(name)
            expr = rule.get("expr")
            if not expr:
                problems.append(f"{where}: no expr")
                continue
            if not re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", str(rule.get("for", ""))):
                problems.append(f"{where}: no valid `for` duration")
            if (rule.get("labels") or {}).get("severity") not in {"critical", "warning", "info"}:
                problems.append(f"{where}: labels.severity must be critical, warning or info")
            annotations = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook_url"):
                if not annotations.get(key):
                    problems.append(f"{where}: no annotations.{key}")
            for metric in promql_metric_names(str(expr)):
                if metric not in KNOWN_METRICS:
                    problems.append(f"{where}: metric {metric} is not one Huskimo exports")
            for job in re.findall(r'job\s*=~?\s*"([^"]*)"', str(expr)):
                if job not in SCRAPE_JOBS:
                    problems.append(f"{where}: scrape job {job!r} is not one of {sorted(SCRAPE_JOBS)}")
    for missing in sorted(EXPECTED_ALERTS - seen):
        problems.append(f"{ALERTS}: alert {missing} is missing")
    return problems, f"{len(seen)} alerts with for, severity, summary and runbook; metrics all exported"


def all_panels(panels):
    for p in panels or []:
        yield p
        yield from all_panels(p.get("panels"))


def check_dashboard(files):
    problems = []
    d = files.json(DASHBOARD)
    variables = {v.get("name"): v for v in (d.get("templating") or {}).get("list") or []}
    ds_var = next((n for n, v in variables.items() if v.get("type") == "datasource"), None)
    if ds_var is None:
        problems.append(f"{DASHBOARD}: no datasource template variable")
    allowed_uids = {f"${{{ds_var}}}", f"${ds_var}", "${DS_PROMETHEUS}"}
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
        problems.append(f"{DASHBOARD}: schemaVersion {d.get('schemaVersion')} is older than 36")
    ids, count, exprs = set(), 0, 0
    for p in all_panels(d.get("panels")):
        where = f"{DASHBOARD}: panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in ids:
            problems.append(f"{where}: duplicate id")
        ids.add(p.get("id"))
        if p.get("type") == "row":
            continue
        count += 1
        targets = p.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        for ds in [p.get("datasource")] + [t.get("datasource") for t in targets]:
            if isinstance(ds, dict) and ds.get("uid") not in allowed_uids:
                problems.append(f"{where}: datasource uid {ds.get('uid')!r} is not the template variable")
        for t in targets:
            if not t.get("expr"):
                problems.append(f"{where}: target {t.get('refId')} has no expr")
                continue
            exprs += 1
            for metric in promql_metric_names(t["expr"]):
                if metric not in KNOWN_METRICS:
                    problems.append(f"{where}: metric {metric} is not one Huskimo exports")
    if count == 0:
        problems.append(f"{DASHBOARD}: no panels")
    return problems, f"{count} panels, {exprs} queries on exported metrics, datasource templated"


def _version():
    text = (ROOT / "Sources/Shared/Core/Support/Version.swift").read_text(encoding="utf-8")
    m = re.search(r'static let current = "([^"]+)"', text)
    if not m:
        raise Problem("Sources/Shared/Core/Support/Version.swift: no version")
    return m.group(1)


def _install_section():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^## Install\n(.*?)(?=^## )", text, re.S | re.M)
    block = m and re.search(r"^```sh\n(.*?)^```", m.group(1), re.S | re.M)
    if not block:
        raise Problem("README.md: no ## Install section with a ```sh block")
    return block.group(1)


def _apt_packages(text):
    """The package names of the first `apt-get install` in text (options and line continuations skipped)."""
    m = re.search(r"apt-get install((?:\\\n|[^\n&])*)", text)
    if not m:
        return None
    return sorted(w for w in m.group(1).replace("\\\n", " ").split() if not w.startswith("-"))


def check_release(files):
    """One runtime package list (runtime-packages.txt) for the README's Install section and the Containerfile's
    runtime stage; the image tag and the archive's name follow Version.swift; every recipe runs the binaries from the
    archive's layout (/opt/huskimo/bin)."""
    problems = []
    listed = sorted(line.strip() for line in files.text(RUNTIME_PACKAGES).splitlines()
                    if line.strip() and not line.startswith("#"))
    containerfile = files.text(CONTAINERFILE)
    stages = re.split(r"^FROM ", containerfile, flags=re.M)
    runtime = next((st for st in stages if st.startswith("debian:bookworm-slim")), None)
    if runtime is None:
        problems.append(f"{CONTAINERFILE}: no runtime stage FROM debian:bookworm-slim")
    elif _apt_packages(runtime) != listed:
        problems.append(f"{CONTAINERFILE}: the runtime stage installs {_apt_packages(runtime)}, {RUNTIME_PACKAGES} lists {listed}")
    if runtime is not None and not re.search(r"^USER (?!0\b|root\b)", runtime, re.M):
        problems.append(f"{CONTAINERFILE}: the runtime stage runs as root (no USER)")
    install = _install_section()
    if _apt_packages(install) != listed:
        problems.append(f"README.md Install: apt-get installs {_apt_packages(install)}, {RUNTIME_PACKAGES} lists {listed}")
    version = _version()
    if f"huskimo-{version}-linux-" not in install:
        problems.append(f"README.md Install: does not name the archive of version {version}")
    images = 0
    for path in sorted(p for p in files.texts if p.startswith(K8S) and p.endswith(".yaml")):
        for image in re.findall(r"^\s*image:\s*(\S+)", files.text(path), re.M):
            if "huskimo" in image:
                images += 1
                if not image.endswith(f":{version}"):
                    problems.append(f"{path}: image {image} is not tagged {version} (Version.swift)")
        for command in re.findall(r'command:\s*\["([^"]+)"', files.text(path)):
            if "huskimo" in command and not command.startswith(INSTALL_DIR):
                problems.append(f"{path}: runs {command}, not from {INSTALL_DIR}")
    for path in sorted(p for p in files.texts if p.startswith(SYSTEMD) and p.endswith(".service")):
        for exe in re.findall(r"^ExecStart=(\S+)", files.text(path), re.M):
            if not exe.startswith(INSTALL_DIR):
                problems.append(f"{path}: ExecStart runs {exe}, not from {INSTALL_DIR}")
    path_line = re.search(r"^PATH=(\S+)", files.text(CRON), re.M)
    if not path_line or INSTALL_DIR.rstrip("/") not in path_line.group(1).split(":"):
        problems.append(f"{CRON}: PATH does not include {INSTALL_DIR.rstrip('/')}")
    return problems, f"{len(listed)} runtime packages in one list, {images} images tagged {version}, binaries from {INSTALL_DIR}"


CHECKS = [
    ("syntax", check_syntax),
    ("kustomization", check_kustomization),
    ("keda", check_keda),
    ("secret-refs", check_secret_refs),
    ("config-env", check_config_env),
    ("pods", check_pods),
    ("rabbitmq-definitions", check_definitions),
    ("network-policy", check_network_policy),
    ("rabbitmq-conf", check_rabbitmq_conf),
    ("systemd", check_systemd),
    ("cron", check_cron),
    ("alerts", check_alerts),
    ("dashboard", check_dashboard),
    ("release", check_release),
]


def run_checks(files, out=None):
    """Runs every check; prints one line per check (and per problem) to out; returns the failed checks' problems."""
    failures = {}
    for name, check in CHECKS:
        try:
            problems, summary = check(files)
        except Problem as p:
            problems, summary = [f"cannot check: {p}"], ""
        except Exception as e:  # a malformed file shape (a list where a mapping belongs, …)
            problems, summary = [f"cannot check: {type(e).__name__}: {e}"], ""
        if problems:
            failures[name] = problems
            if out:
                for problem in problems:
                    print(f"FAIL  {name}: {problem}", file=out)
        elif out:
            print(f"ok    {name}: {summary}", file=out)
    return failures


# -------------------------------------------------------------------------------------------------- self-test

def replace(path, old, new, count=1):
    def mutate(texts):
        if old not in texts[path]:
            raise AssertionError(f"self-test is stale: {old!r} not found in {path}")
        texts[path] = texts[path].replace(old, new, count)
    return mutate


def drop_line(path, pattern):
    def mutate(texts):
        lines = texts[path].splitlines(keepends=True)
        kept = [line for line in lines if not re.search(pattern, line)]
        if len(kept) == len(lines):
            raise AssertionError(f"self-test is stale: no line matching {pattern!r} in {path}")
        texts[path] = "".join(kept)
    return mutate


def edit_json(path, edit):
    def mutate(texts):
        d = json.loads(texts[path])
        edit(d)
        texts[path] = json.dumps(d, indent=2)
    return mutate


def queue(d, name):
    return next(q for q in d["queues"] if q["name"] == name)


MUTATIONS = [
    ("a runtime package the Containerfile lacks", "runtime stage installs",
     replace(RUNTIME_PACKAGES, "libpq5\n", "libpq5\nlibzstd1\n")),
    ("an image tag behind the version", "is not tagged", replace(f"{K8S}/worker-deployment.yaml", "huskimo:0.4.0", "huskimo:0.3.9")),
    ("a unit running another build", "ExecStart runs",
     replace(f"{SYSTEMD}/huskimo-planner.service", "ExecStart=/opt/huskimo/bin/", "ExecStart=/usr/local/bin/")),
    ("KEDA over amqp (ready only)", "keda", replace(KEDA, "protocol: http", "protocol: amqp")),
    ("KEDA excluding unacked", "keda", replace(KEDA, 'excludeUnacknowledged: "false"', 'excludeUnacknowledged: "true"')),
    ("KEDA cooldown shorter than a job", "keda", replace(KEDA, "cooldownPeriod: 1800", "cooldownPeriod: 300")),
    ("KEDA rate mode", "keda", replace(KEDA, "mode: QueueLength", "mode: MessageRate")),
    ("KEDA on the wrong queue", "keda", replace(KEDA, "queueName: huskimo.extract", "queueName: huskimo.load.warehouse")),
    ("management URL missing from the Secret", "RABBITMQ_MANAGEMENT_URL", drop_line(SECRET_EXAMPLE, r"^\s+RABBITMQ_MANAGEMENT_URL:")),
    ("a config secret missing from the Secret", "WAREHOUSE_PASSWORD", drop_line(SECRET_EXAMPLE, r"^\s+WAREHOUSE_PASSWORD:")),
    ("envFrom a Secret that does not exist", "secretRef", replace(f"{K8S}/worker-deployment.yaml", "name: huskimo-secrets", "name: huskimo-secret")),
    ("secretKeyRef to a missing key", "secretKeyRef",
     replace(f"{K8S}/loader-deployment.yaml", "            - name: HUSKIMO_LOG_LEVEL\n              value: info\n",
             "            - name: EXTRA\n              valueFrom:\n                secretKeyRef:\n"
             "                  name: huskimo-secrets\n                  key: NOT_THERE\n")),
    ("a new ${VAR} in the config that no pod gets", "S3_BUCKET",
     replace(CONFIGMAP, "bucket: example-huskimo-staging", "bucket: ${S3_BUCKET}")),
    ("no management API for the loaders' gauges", "management_url", drop_line(CONFIGMAP, r"^\s+management_url:")),
    ("a literal password in the ConfigMap", "literal", replace(CONFIGMAP, "password: ${WAREHOUSE_PASSWORD}", "password: hunter2")),
    ("termination grace below --grace", "terminationGracePeriodSeconds",
     replace(f"{K8S}/worker-deployment.yaml", "terminationGracePeriodSeconds: 150", "terminationGracePeriodSeconds: 100")),
    ("--grace raised past the termination grace", "terminationGracePeriodSeconds",
     replace(f"{K8S}/worker-deployment.yaml", '"--grace", "120"', '"--grace", "200"')),
    ("metrics port and probe port disagree", "metrics-port",
     replace(f"{K8S}/worker-deployment.yaml", '"--metrics-port", "9464"', '"--metrics-port", "9465"')),
    ("loader for a target the config lacks", "--target",
     replace(f"{K8S}/loader-deployment.yaml", '"--target", "warehouse"', '"--target", "lake"')),
    ("liveness probe on the wrong path", "livenessProbe",
     replace(f"{K8S}/worker-deployment.yaml", "path: /healthz", "path: /metrics")),
    ("planner CronJob allowing overlap", "concurrencyPolicy",
     replace(f"{K8S}/planner-cronjob.yaml", "concurrencyPolicy: Forbid", "concurrencyPolicy: Allow")),
    ("example Secret applied by kustomize", "example Secret",
     replace(KUSTOMIZATION, "  - namespace.yaml\n", "  - namespace.yaml\n  - secret.example.yaml\n")),
    ("broken YAML", "not valid YAML", replace(f"{K8S}/servicemonitor.yaml", "endpoints:", "endpoints: [", 1)),
    ("systemd stop timeout below --grace", "TimeoutStopSec",
     replace(f"{SYSTEMD}/huskimo-worker@.service", "TimeoutStopSec=135", "TimeoutStopSec=100")),
    ("systemd worker not restarted", "Restart", replace(f"{SYSTEMD}/huskimo-worker@.service", "Restart=on-failure", "Restart=no")),
    ("systemd timer not persistent", "Persistent", replace(f"{SYSTEMD}/huskimo-planner.timer", "\nPersistent=true", "\nPersistent=false")),
    ("systemd secrets example lacking a variable", "TWILIO_ACME_TOKEN", drop_line(SYSTEMD_SECRETS, r"^TWILIO_ACME_TOKEN=")),
    ("cron line with a bare %", "unescaped %", replace(CRON, "--workers 4", "--workers 4 --date $(date +%F)")),
    ("cron run without flock", "flock", replace(CRON, "flock -n -E 75 /run/lock/huskimo-run.lock ", "")),
    # Queue arguments are the product's (huskimo-planner topology), pinned by the Swift test DeployContractTests.
    ("a load queue missing", "huskimo.load.warehouse.failed",
     edit_json(DEFINITIONS, lambda d: d["queues"].remove(queue(d, "huskimo.load.warehouse.failed")))),
    ("a queue bound by another key", "huskimo.extract.retry.600s",
     edit_json(DEFINITIONS, lambda d: [b.update({"routing_key": "x"}) for b in d["bindings"]
                                       if b["destination"] == "huskimo.extract.retry.600s"])),
    ("a NetworkPolicy admitting every port", "only the port named metrics",
     replace(f"{K8S}/networkpolicy.yaml", "        - port: metrics\n", "        - port: 8080\n")),
    ("a binding missing", "binding", edit_json(DEFINITIONS, lambda d: d["bindings"].pop())),
    ("a fanout exchange", "exchange", edit_json(DEFINITIONS, lambda d: d["exchanges"][0].update({"type": "fanout"}))),
    ("consumer_timeout at the 30 min default", "consumer_timeout",
     replace(RABBITMQ_CONF, "consumer_timeout = 10800000", "consumer_timeout = 1800000")),
    ("an alert without `for`", "for", replace(ALERTS, "        for: 10m\n", "", 1)),
    ("an alert without severity", "severity", replace(ALERTS, "          severity: critical\n", "", 1)),
    ("an alert on a metric nobody exports", "huskimo_api_throttles_total",
     replace(ALERTS, "huskimo_api_throttled_total", "huskimo_api_throttles_total")),
    ("an alert on a scrape job that does not exist", "scrape job", replace(ALERTS, 'job="huskimo-loader"', 'job="loader"')),
    ("a panel on a metric nobody exports", "huskimo_rows_loaded_total",
     replace(DASHBOARD, "huskimo_load_rows_total", "huskimo_rows_loaded_total")),
    ("a panel without targets", "no targets", edit_json(DASHBOARD, lambda d: next(
        p for p in d["panels"] if p.get("type") != "row").update({"targets": []}))),
    ("a hard-wired datasource", "datasource uid", edit_json(DASHBOARD, lambda d: next(
        p for p in d["panels"] if p.get("type") != "row").update({"datasource": {"type": "prometheus", "uid": "abc123"}}))),
]


def self_test():
    base = Files.from_disk()
    failures = run_checks(Files(dict(base.texts)))
    passed = failed = 0
    if failures:
        print("FAIL  baseline: the unmodified files do not pass; run without --self-test to see why")
        failed += 1
    for description, expect, mutate in MUTATIONS:
        texts = copy.deepcopy(base.texts)
        try:
            mutate(texts)
        except (AssertionError, StopIteration, KeyError) as e:
            print(f"FAIL  {description}: cannot apply the mutation: {e}")
            failed += 1
            continue
        problems = [p for ps in run_checks(Files(texts)).values() for p in ps]
        if not problems:
            print(f"FAIL  {description}: not caught")
            failed += 1
        elif not any(expect in p for p in problems):
            print(f"FAIL  {description}: caught, but no problem mentions {expect!r}: {problems[0]}")
            failed += 1
        else:
            print(f"ok    {description}: {next(p for p in problems if expect in p)}")
            passed += 1
    print(f"self-test: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--self-test", action="store_true", help="check that the checker catches broken recipes")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    failures = run_checks(Files.from_disk(), out=sys.stdout)
    failed = len(failures)
    print(f"deploy-check: {len(CHECKS) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
