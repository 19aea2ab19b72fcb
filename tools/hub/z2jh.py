"""Check docs/z2jh/values.yaml against a Zero to JupyterHub chart's own schema.

``python -m tools.hub.z2jh CHART_DIR`` (a checkout of the chart: the directory holding its
``values.yaml`` and ``values.schema.yaml``) merges the values into the chart's defaults as
``helm install --values`` does (mappings merged, lists replaced) and validates the result
with the chart's JSON schema.  Prints one line per error, or one "ok" line; exit 1 on errors,
2 when the chart directory is not usable.  The chart is not part of this repository.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
VALUES = ROOT / "docs" / "z2jh" / "values.yaml"


def merge(a: Any, b: Any) -> Any:
    """``b`` over ``a`` as helm merges --values: mappings merged key by key, the rest replaced."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {**a, **{k: merge(a.get(k), v) for k, v in b.items()}}
    return b


def schema_errors(chart: Path, values: dict[str, Any]) -> list[str]:
    """The chart schema's complaints about ``values`` merged into the chart's defaults."""
    import jsonschema  # type: ignore[import-untyped]

    schema = yaml.safe_load((chart / "values.schema.yaml").read_text(encoding="utf-8"))
    defaults = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8")) or {}
    return [f"{'.'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in
            jsonschema.Draft7Validator(schema).iter_errors(merge(defaults, values))]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tools.hub.z2jh CHART_DIR", file=sys.stderr)
        return 2
    chart = Path(args[0])
    for name in ("values.yaml", "values.schema.yaml"):
        if not (chart / name).is_file():
            print(f"z2jh: {chart / name} is missing (give the chart's directory)", file=sys.stderr)
            return 2
    try:
        errors = schema_errors(chart, yaml.safe_load(VALUES.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        print(f"z2jh: the chart's YAML does not parse: {str(exc).splitlines()[0]}",
              file=sys.stderr)
        return 2
    for line in errors:
        print(f"z2jh: {line}")
    if not errors:
        print(f"z2jh: {VALUES.relative_to(ROOT)} is valid against {chart}'s schema")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
