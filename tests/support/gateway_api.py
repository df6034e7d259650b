"""Holds the Gateway API objects of a multi-document YAML file to the
Standard channel CRDs' schemas, offline.

usage: gateway_api.py CRD_DIR FILE

Each object whose apiVersion is gateway.networking.k8s.io/* is checked
against the openAPIV3Schema of its kind and version in CRD_DIR (the
CustomResourceDefinitions of one Gateway API release), strictly: a field
the schema does not list is an error, as the API server's pruning would
drop it silently. Prints one line per object checked; exits 1 on any
error, 2 when a kind or version is not in CRD_DIR. The CEL rules
(x-kubernetes-validations) are not evaluated here.
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
        errors += len(found)
        if not found:
            print(f"{kind}/{name}: valid against {GROUP}/{version}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
