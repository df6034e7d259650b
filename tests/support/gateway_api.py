"""Holds the Gateway API objects of a multi-document YAML file to the
Standard channel CRDs' schemas, offline.

usage: gateway_api.py CRD_DIR FILE

Each object whose apiVersion is gateway.networking.k8s.io/* is checked
against the openAPIV3Schema of its kind and version in CRD_DIR (the
CustomResourceDefinitions of one Gateway API release), strictly: a field
the schema does not list is an error, as the API server's pruning would
drop it silently. Then the CEL rules (x-kubernetes-validations) that
manage's objects could break, written out here (no CEL evaluator is at
hand): listener names and port/protocol/hostname unique, TLS only on
HTTPS and with a certificate, no redirect beside backends; and what a
controller would refuse across objects of the file: a parentRef's
sectionName naming no listener of its Gateway, or a parentRef whose
listeners match none of the route's hostnames. Prints one line per object checked; exits 1
on any error, 2 when a kind or version is not in CRD_DIR.
"""

import copy
import glob
import os
import sys

import jsonschema
import yaml

GROUP = "gateway.networking.k8s.io"


def strict(schema):
    """The schema with unlisted fields refused wherever it lists fields."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if not isinstance(node, dict):
            return
        props = node.get("properties")
        if (
            isinstance(props, dict)
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for value in node.values():
            if isinstance(value, dict):
                walk(value)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

    walk(schema)
    # metadata is the API server's ObjectMeta, which a CRD does not describe.
    schema.get("properties", {})["metadata"] = {"type": "object"}
    return schema


def load_crds(directory):
    schemas = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                if spec["group"] != GROUP:
                    continue
                for version in spec["versions"]:
                    key = (spec["names"]["kind"], version["name"])
                    schemas[key] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def cel_rules(doc):
    """The CEL rules of the CRDs that manage's objects touch."""
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    errors = []
    if kind == "Gateway":
        listeners = spec.get("listeners") or []
        names = [l.get("name") for l in listeners]
        if len(names) != len(set(names)):
            errors.append("Listener name must be unique within the Gateway")
        keys = [(l.get("port"), l.get("protocol"), l.get("hostname")) for l in listeners]
        if len(keys) != len(set(keys)):
            errors.append("Combination of port, protocol and hostname must be unique for each listener")
        for l in listeners:
            tls = l.get("tls")
            if l.get("protocol") in ("HTTP", "TCP", "UDP") and tls is not None:
                errors.append(f"listener {l.get('name')}: tls must not be specified for {l['protocol']}")
            if l.get("protocol") == "HTTPS":
                if not tls or tls.get("mode", "Terminate") != "Terminate":
                    errors.append(f"listener {l.get('name')}: HTTPS needs tls in mode Terminate")
                elif not tls.get("certificateRefs") and not tls.get("options"):
                    errors.append(f"listener {l.get('name')}: certificateRefs or options must be specified")
    if kind == "HTTPRoute":
        for i, rule in enumerate(spec.get("rules") or []):
            redirect = any("requestRedirect" in f for f in rule.get("filters") or [])
            if redirect and rule.get("backendRefs"):
                errors.append(f"rules/{i}: RequestRedirect filter must not be used together with backendRefs")
    return errors


def host_matches(listener, host):
    if listener is None:
        return True
    if listener.startswith("*."):
        return host.endswith(listener[1:]) or host == listener
    return host == listener


def attachments(docs):
    """Each HTTPRoute's parentRefs against the Gateways in the same file."""
    gateways = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Gateway"}
    errors = []
    for d in docs:
        if d.get("kind") != "HTTPRoute":
            continue
        name = d["metadata"]["name"]
        hosts = (d.get("spec") or {}).get("hostnames") or []
        for ref in (d.get("spec") or {}).get("parentRefs") or []:
            gateway = gateways.get(ref.get("name"))
            if gateway is None or ref.get("namespace"):
                continue
            listeners = gateway["spec"]["listeners"]
            if "sectionName" in ref:
                listeners = [l for l in listeners if l["name"] == ref["sectionName"]]
                if not listeners:
                    errors.append(f"HTTPRoute/{name}: no listener {ref['sectionName']} on Gateway/{ref['name']}")
                    continue
            # A route attaches to a listener when one of its hostnames
            # matches the listener's (or either has none).
            if hosts and not any(
                host_matches(l.get("hostname"), host) for l in listeners for host in hosts
            ):
                section = ref.get("sectionName", "any listener")
                errors.append(
                    f"HTTPRoute/{name}: no hostname of it matches {section} of Gateway/{ref['name']}"
                )
    return errors


def main():
    crd_dir, file = sys.argv[1], sys.argv[2]
    schemas = load_crds(crd_dir)
    if not schemas:
        print(f"no {GROUP} CRDs in {crd_dir}")
        return 2
    errors = 0
    with open(file) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for doc in docs:
        api = doc.get("apiVersion", "")
        if not api.startswith(GROUP + "/"):
            continue
        kind, version = doc.get("kind"), api.split("/", 1)[1]
        name = doc.get("metadata", {}).get("name")
        schema = schemas.get((kind, version))
        if schema is None:
            print(f"{kind} {version}: not in the CRDs of {crd_dir}")
            return 2
        validator = jsonschema.Draft7Validator(schema)
        found = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        for e in found:
            path = "/".join(str(p) for p in e.path)
            print(f"{kind}/{name}: {path}: {e.message}")
        for message in cel_rules(doc):
            print(f"{kind}/{name}: {message}")
            found.append(message)
        errors += len(found)
        if not found:
            print(f"{kind}/{name}: valid against {GROUP}/{version}")
    for message in attachments([d for d in docs if d.get("apiVersion", "").startswith(GROUP + "/")]):
        print(message)
        errors += 1
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
