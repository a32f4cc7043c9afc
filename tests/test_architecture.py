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


@pytest.mark.parametrize(("package", "forbidden"), [
    # Adapters are plumbing below the use cases: they never call up into them.
    ("referral_service/adapters", ("flask", "flask_smorest", "referral_service.services",
                                   "referral_service.api", "referral_service.portal",
                                   "referral_service.cli")),
    # Schemas describe data: no framework, no database, no use cases.
    ("referral_service/schemas", ("flask", "flask_smorest", "sqlalchemy",
                                  "referral_service.services", "referral_service.adapters",
                                  "referral_service.api", "referral_service.portal",
                                  "referral_service.db")),
])
def test_adapters_and_schemas_stay_below_the_use_cases(package, forbidden):
    assert offenders(package, forbidden) == []


# The database-access rule (docs/ARCHITECTURE.md): the ORM by default; Core statements on
# tables, the session's raw connection and dialect-specific SQL only in the fast-path module.
FAST_PATH_MODULE = "referral_service/adapters/sql.py"
# Engine set-up (SQLite pragmas, pool pings) and the dump tools are per database by nature.
ENGINE_MODULES = ("referral_service/db.py", "referral_service/adapters/backup.py")


def database_access_outside_the_fast_paths() -> list[str]:
    """Return every use of Core tables, raw connections or dialects outside the allowed modules."""
    found = []
    for package in ("referral_service", "models", "scoring"):
        for path in (ROOT / package).rglob("*.py"):
            name = str(path.relative_to(ROOT))
            if name == FAST_PATH_MODULE or name in ENGINE_MODULES:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                        "sqlalchemy.dialects"):
                    found.append(f"{name}:{node.lineno} imports {node.module}")
                elif isinstance(node, ast.Attribute) and node.attr in (
                        "__table__", "dialect", "exec_driver_sql", "driver_connection"):
                    found.append(f"{name}:{node.lineno} uses .{node.attr}")
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                      and node.func.attr == "connection" and not node.args):
                    found.append(f"{name}:{node.lineno} takes the session's raw connection")
    return sorted(found)


def test_core_statements_and_dialect_sql_live_only_in_the_fast_path_module():
    assert database_access_outside_the_fast_paths() == []


def test_every_commit_and_rollback_belongs_to_the_unit_of_work():
    """Services, views and the CLI never commit or roll back; the unit of work does."""
    found = []
    allowed = {"referral_service/services/unit_of_work.py"}
    for path in (ROOT / "referral_service").rglob("*.py"):
        name = str(path.relative_to(ROOT))
        if name in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("commit", "rollback") and not node.args):
                found.append(f"{name}:{node.lineno} calls .{node.func.attr}()")
    assert sorted(found) == []
