"""Resolve CloudFormation intrinsic functions against the local stack's deterministic names.

Supported: Ref (resources, Parameters with Default/overrides, pseudo parameters), Fn::GetAtt,
Fn::Sub, Fn::If + Conditions (Fn::Equals/And/Or/Not/Condition), Fn::Join, Fn::Select,
Fn::Split, Fn::FindInMap, Fn::Base64, Fn::GetAZs, Fn::ToJsonString, Fn::Length.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from .naming import NAME_PROPERTY, ResourceName, default_name, get_att_value, ref_value
from .settings import ACCOUNT_ID, PARTITION, REGION, URL_SUFFIX

log = logging.getLogger(__name__)

LiveLookup = Callable[[ResourceName, str], Any]
"""(resource, attribute) -> value read from the running stack, or None (e.g. a table's StreamArn)."""


class TemplateError(ValueError):
    """The template asks for something the local stack cannot resolve."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = str(next(iter(value)))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def _param_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Resolver:
    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        stack_name: str,
        endpoint_url: str,
        parameter_overrides: Mapping[str, str] | None = None,
        live: LiveLookup | None = None,
    ) -> None:
        self.template = template
        self.stack_name = stack_name
        self.endpoint_url = endpoint_url
        self.live = live
        self.resources: Mapping[str, Any] = template.get("Resources") or {}
        self.parameters = self._parameters(parameter_overrides or {})
        self._conditions: dict[str, bool] = {}
        self._names: dict[str, ResourceName] = {}
        self._warned: set[str] = set()

    # --- parameters and conditions ------------------------------------------------------------
    def _parameters(self, overrides: Mapping[str, str]) -> dict[str, Any]:
        declared: Mapping[str, Any] = self.template.get("Parameters") or {}
        unknown = set(overrides) - set(declared)
        if unknown:
            raise TemplateError(f"parameter overrides name undeclared parameters: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in overrides:
                raw: Any = overrides[name]
            elif "Default" in spec:
                raw = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no Default: set it in SCRM_PARAMETER_OVERRIDES")
            text = _param_string(raw) if not isinstance(raw, list) else ",".join(map(str, raw))
            ptype = str(spec.get("Type", "String"))
            if ptype == "CommaDelimitedList" or ptype.startswith("List<"):
                values[name] = [part.strip() for part in text.split(",")] if text else []
            else:
                allowed = spec.get("AllowedValues")
                if allowed and text not in [_param_string(v) for v in allowed]:
                    raise TemplateError(f"parameter {name}={text!r} is not one of {allowed}")
                values[name] = text
        return values

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions: Mapping[str, Any] = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self._evaluate(conditions[name]))
        return self._conditions[name]

    def _evaluate(self, expr: Any) -> bool:
        if isinstance(expr, dict) and len(expr) == 1:
            fn, arg = next(iter(expr.items()))
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::Equals":
                left, right = (self.resolve(x) for x in arg)
                return _param_string(left) == _param_string(right)
            if fn == "Fn::And":
                return all(self._evaluate(x) for x in arg)
            if fn == "Fn::Or":
                return any(self._evaluate(x) for x in arg)
            if fn == "Fn::Not":
                return not self._evaluate(arg[0])
        resolved = self.resolve(expr)
        return resolved is True or str(resolved).lower() == "true"

    def resource_enabled(self, logical_id: str) -> bool:
        cond = (self.resources.get(logical_id) or {}).get("Condition")
        return True if cond is None else self.condition(cond)

    # --- names ----------------------------------------------------------------------------------
    def resource(self, logical_id: str) -> ResourceName:
        if logical_id not in self._names:
            spec = self.resources.get(logical_id)
            if spec is None:
                # SAM's implicit resources (<Fn>Role, ServerlessHttpApi ...) have no entry.
                if logical_id not in self._warned:
                    self._warned.add(logical_id)
                    log.debug("reference to %s, which the template does not declare", logical_id)
                rtype = "AWS::IAM::Role" if logical_id.endswith("Role") else "Custom::Implicit"
                self._names[logical_id] = ResourceName(
                    logical_id, rtype, f"{self.stack_name}-{logical_id}", {}
                )
            else:
                rtype = str(spec.get("Type", ""))
                props = spec.get("Properties") or {}
                explicit = props.get(NAME_PROPERTY.get(rtype, ""))
                name = (
                    str(self.resolve(explicit))
                    if explicit is not None
                    else default_name(self.stack_name, logical_id, rtype, props)
                )
                self._names[logical_id] = ResourceName(logical_id, rtype, name, props)
        return self._names[logical_id]

    def properties(self, logical_id: str) -> dict[str, Any]:
        props = (self.resources.get(logical_id) or {}).get("Properties") or {}
        resolved = self.resolve(props)
        assert isinstance(resolved, dict)
        return resolved

    # --- intrinsic functions --------------------------------------------------------------------
    def pseudo(self, name: str) -> Any:
        values: dict[str, Any] = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{self.stack_name}/x",
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::Partition": PARTITION,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if name not in values:
            raise TemplateError(f"unknown pseudo parameter {name}")
        return values[name]

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        return ref_value(self.resource(name), self.endpoint_url)

    def get_att(self, logical_id: str, attr: str) -> Any:
        res = self.resource(logical_id)
        if self.live is not None:
            value = self.live(res, attr)
            if value is not None:
                return value
        if res.type == "AWS::SSM::Parameter" and attr == "Value":
            return self.properties(logical_id).get("Value")
        value = get_att_value(res, attr, self.endpoint_url)
        if value is None:
            raise TemplateError(f"!GetAtt {logical_id}.{attr} is not supported locally ({res.type})")
        return value

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1] or {})

        def replace(match: re.Match[str]) -> str:
            var = match.group(1)
            if var.startswith("!"):
                return "${" + var[1:] + "}"
            if var in variables:
                return _param_string(self.resolve(variables[var]))
            if var.startswith("AWS::") or var in self.parameters or "." not in var:
                return _param_string(self.ref(var))
            logical_id, attr = var.split(".", 1)
            return _param_string(self.get_att(logical_id, attr))

        return _SUB_VARIABLE.sub(replace, text)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if is_intrinsic(value):
            fn, arg = next(iter(value.items()))
            return self._call(fn, arg)
        out = {}
        for key, item in value.items():
            resolved = self.resolve(item)
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out

    def _call(self, fn: str, arg: Any) -> Any:
        if fn == "Ref":
            return self.ref(arg)
        if fn == "Fn::GetAtt":
            parts = arg.split(".", 1) if isinstance(arg, str) else [self.resolve(a) for a in arg]
            return self.get_att(parts[0], parts[1])
        if fn == "Fn::Sub":
            return self.sub(arg)
        if fn == "Fn::If":
            cond, when_true, when_false = arg
            return self.resolve(when_true if self.condition(cond) else when_false)
        if fn == "Fn::Join":
            delimiter, items = arg
            return delimiter.join(_param_string(v) for v in self.resolve(items))
        if fn == "Fn::Select":
            index, items = self.resolve(arg)
            return items[int(index)]
        if fn == "Fn::Split":
            delimiter, text = self.resolve(arg)
            return str(text).split(delimiter)
        if fn == "Fn::FindInMap":
            name, top, second = (self.resolve(a) for a in arg[:3])
            return self.resolve(self.template["Mappings"][name][top][second])
        if fn == "Fn::Base64":
            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        if fn == "Fn::GetAZs":
            return [f"{REGION}{zone}" for zone in "abc"]
        if fn == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        if fn == "Fn::Length":
            return len(self.resolve(arg))
        if fn in ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not", "Condition"):
            return self._evaluate({fn: arg})
        raise TemplateError(f"{fn} is not supported by the local stack")
