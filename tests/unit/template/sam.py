"""template.yaml as written (SAM's YAML reader) and as CloudFormation receives it (SAM's transform)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())


class NoManagedPolicyNames:
    def load(self) -> dict[str, str]:
        raise AssertionError("policies are templates or statements, never bare managed-policy names")


def transformed(document: dict[str, Any] = TEMPLATE) -> dict[str, Any]:
    """SAM's transform of the template (code URIs stubbed); needs AWS_DEFAULT_REGION."""
    document = copy.deepcopy(document)
    for resource in document["Resources"].values():
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = "s3://bucket/key"
    return dict(transform(document, {}, NoManagedPolicyNames()))
