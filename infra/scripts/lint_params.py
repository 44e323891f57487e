#!/usr/bin/env python3
"""Turns `deploy.sh --parameters` output (Key=Value lines on stdin) into a cfn-lint
parameter file (CloudFormation's [{ParameterKey, ParameterValue}] JSON) on stdout.

cfn-lint expects the value of a List<...> or CommaDelimitedList parameter as a JSON
array, where `aws cloudformation deploy` takes the comma-separated string; this is the
only conversion made.

    deploy.sh --parameters | lint_params.py infra/template.yaml > params.json
"""

from __future__ import annotations

import json
import sys

from cfnlint.decode import decode


def main(template_path: str) -> int:
    template, matches = decode(template_path)
    if template is None:
        for m in matches:
            print(m, file=sys.stderr)
        return 1
    types = {name: p.get("Type", "String") for name, p in template["Parameters"].items()}
    out = []
    for line in sys.stdin.read().splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or key not in types:
            print(f"lint_params: {line!r} is not Key=Value of a template parameter", file=sys.stderr)
            return 2
        is_list = types[key].startswith("List<") or types[key] == "CommaDelimitedList"
        out.append({"ParameterKey": key, "ParameterValue": value.split(",") if is_list else value})
    json.dump(out, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
