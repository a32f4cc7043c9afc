"""The dependency direction of STYLE.md, checked by walking every import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports_of(package: str) -> dict[str, set[str]]:
    """Map each module file of `package` to the top-level names it imports."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module, names in imports_of(package).items()
        for name in names
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


@pytest.mark.parametrize(("package", "forbidden"), [
    ("scoring", ("flask", "flask_smorest", "sqlalchemy", "models", "referral_service")),
    ("models", ("flask", "flask_smorest", "referral_service", "scoring")),
    ("referral_service/services", ("flask", "flask_smorest", "flask_wtf", "werkzeug.exceptions",
                                   "referral_service.api", "referral_service.portal",
                                   "referral_service.cli")),
    ("referral_service/api", ("referral_service.portal", "referral_service.cli")),
    ("referral_service/portal", ("referral_service.api", "referral_service.cli")),
])
def test_layers_import_only_downwards(package, forbidden):
    assert offenders(package, forbidden) == []


def test_cli_imports_neither_api_nor_portal():
    names = imports_of("referral_service")["referral_service/cli.py"]
    assert not any(n.startswith(("referral_service.api", "referral_service.portal"))
                   for n in names)


def test_wsgi_only_builds_the_app():
    tree = ast.parse((ROOT / "wsgi.py").read_text())
    assigned = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets]
    assert assigned == ["app"]
