"""A small evaluator of CloudFormation intrinsics, for the parts of the template that
moto's CloudFormation does not create (lifecycle hooks of an existing group, alarms,
bucket/queue/topic policies, event invoke configs) or ignores (a security group's
inline egress rules).

It resolves a resource or property with the same parameters and conditions as the
stack, and with the physical ids moto gave the resources it did create, so the tests
assert on what CloudFormation would send, and can apply it through the service API.
Only what the template uses is implemented; anything else raises.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

PARTITION = "aws"


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


def load_template(path: Path) -> dict[str, Any]:
    """The template as plain JSON-able data (short-form tags expanded)."""
    template, matches = decode(str(path))
    if template is None:
        raise ValueError(f"{path}: {matches}")
    return _plain(template)


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, str):
        return str(v)
    return v


class Stack:
    """One evaluated stack: parameters (given or default), conditions, physical ids."""

    def __init__(
        self,
        template: dict[str, Any],
        parameters: dict[str, str],
        *,
        account: str,
        region: str,
        stack_name: str,
        physical: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self.t = template
        self.account = account
        self.region = region
        self.stack_name = stack_name
        self.physical = physical or {}
        self.params: dict[str, Any] = {}
        for name, spec in template["Parameters"].items():
            raw = parameters.get(name, spec.get("Default"))
            if raw is None:
                raise KeyError(f"parameter {name} has no value and no default")
            raw = str(raw)
            kind = spec.get("Type", "String")
            if kind.startswith("List<") or kind == "CommaDelimitedList":
                self.params[name] = raw.split(",") if raw else [""]
            else:
                self.params[name] = raw
        self._conditions: dict[str, bool] = {}

    # --- conditions -----------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = self._cond(self.t["Conditions"][name])
        return self._conditions[name]

    def _cond(self, e: Any) -> bool:
        (fn, arg), = e.items()
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::Equals":
            a, b = (self.value(x) for x in arg)
            return str(a) == str(b)
        if fn == "Fn::Not":
            return not self._cond(arg[0])
        if fn == "Fn::And":
            return all(self._cond(x) for x in arg)
        if fn == "Fn::Or":
            return any(self._cond(x) for x in arg)
        raise NotImplementedError(fn)

    def exists(self, logical_id: str) -> bool:
        c = self.t["Resources"][logical_id].get("Condition")
        return c is None or self.condition(c)

    # --- values -----------------------------------------------------------------------
    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.value(self.t["Resources"][logical_id].get("Properties", {}))

    def value(self, e: Any) -> Any:
        if isinstance(e, list):
            return [x for x in (self.value(i) for i in e) if x is not NO_VALUE]
        if not isinstance(e, dict):
            return e
        if len(e) == 1:
            (k, arg), = e.items()
            if k == "Ref":
                return self._ref(arg)
            if k == "Fn::GetAtt":
                return self._getatt(*(arg.split(".", 1) if isinstance(arg, str) else arg))
            if k == "Fn::Sub":
                return self._sub(arg)
            if k == "Fn::If":
                name, yes, no = arg
                return self.value(yes if self.condition(name) else no)
            if k == "Fn::Join":
                sep, items = arg
                return sep.join(str(x) for x in self.value(items))
            if k == "Fn::Select":
                i, items = arg
                return self.value(items)[int(self.value(i))]
            if k.startswith("Fn::") or k == "Condition":
                raise NotImplementedError(k)
        out = {}
        for k, v in e.items():
            x = self.value(v)
            if x is not NO_VALUE:
                out[k] = x
        return out

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": PARTITION,
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        kind, physical = self._physical(name)
        return physical

    def _physical(self, logical_id: str) -> tuple[str, str]:
        if logical_id not in self.physical:
            raise KeyError(f"{logical_id}: no physical id (not created, or not by moto)")
        return self.physical[logical_id]

    def _getatt(self, logical_id: str, attr: str) -> str:
        kind, pid = self._physical(logical_id)
        r, a = self.region, self.account
        arns = {
            "AWS::KMS::Key": f"arn:{PARTITION}:kms:{r}:{a}:key/{pid}",
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{pid}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{r}:{a}:function:{pid}",
            "AWS::Events::Rule": f"arn:{PARTITION}:events:{r}:{a}:rule/{pid}",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{a}:role/{pid}",
            "AWS::IAM::InstanceProfile": f"arn:{PARTITION}:iam::{a}:instance-profile/{pid}",
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{r}:{a}:log-group:{pid}:*",
        }
        if kind == "AWS::SQS::Queue":
            name = pid.rstrip("/").rsplit("/", 1)[-1]
            return {"Arn": f"arn:{PARTITION}:sqs:{r}:{a}:{name}", "QueueName": name, "QueueUrl": pid}[attr]
        if kind == "AWS::EC2::SecurityGroup" and attr == "GroupId":
            return pid
        if attr == "Arn" and kind in arns:
            return arns[kind]
        raise NotImplementedError(f"GetAtt {logical_id}.{attr} ({kind})")

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        else:
            text, raw_vars = arg
            variables = {k: self.value(v) for k, v in raw_vars.items()}

        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical, attr = name.split(".", 1)
                return self._getatt(logical, attr)
            v = self._ref(name)
            if isinstance(v, list):
                raise ValueError(f"Fn::Sub of the list parameter {name}")
            return str(v)

        return re.sub(r"\$\{([^}]+)\}", one, text)
