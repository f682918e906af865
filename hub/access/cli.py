"""`parkhub vehicles import`: load an operator's pass, whitelist or blocklist file from a shell.

Runs as the database owner (DATABASE_URL) acting as the operator's admin, through the same service as the
GraphQL `importVehicleList`: all rows or none. Progress goes to stderr, the report as JSON to stdout; the exit
status is 1 when the file had problems (nothing was written) or the import could not run, with one plain
sentence on stderr.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

import typer
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from hub.access import service
from hub.access.rules import ListKind
from hub.config import get_settings
from hub.db import PLATFORM, Database, make_engine
from hub.errors import DomainError
from hub.principal import Principal
from tenants import service as tenants_service

vehicles_app = typer.Typer(help="Vehicle lists: passes, whitelist and blocklist.", no_args_is_help=True)


@vehicles_app.callback()
def _vehicles_group() -> None:
    """Vehicle lists: passes, whitelist and blocklist."""
    # A callback keeps `import` a subcommand (typer would otherwise make a lone command the group itself).


def _fail(message: str) -> NoReturn:
    typer.echo(f"parkhub: {message}", err=True)
    raise typer.Exit(1)


def _progress(message: str) -> None:
    typer.echo(message, err=True)


async def _import(slug: str, kind: ListKind, text: str, dry_run: bool) -> service.ImportReport:
    settings = get_settings()
    owner = Database(make_engine(settings.database_url, settings, pool_size=1))
    try:
        async with owner.transaction(PLATFORM) as session:
            tenant = await tenants_service.get_tenant_by_slug(session, slug)
            # The platform acts as the operator's admin: the service checks and filters by this tenant.
            admin = Principal("operator", subject="cli:vehicles", tenant_id=tenant.id, role="operator_admin")
            return await service.import_list(session, admin, kind, text, dry_run=dry_run, progress=_progress)
    finally:
        await owner.dispose()


def report_json(slug: str, report: service.ImportReport) -> dict[str, Any]:
    shown = {key: value for key, value in asdict(report).items() if key != "errors"}
    shown["tenant"] = slug
    shown["errors_truncated"] = report.errors_truncated
    shown["errors"] = [asdict(error) for error in report.errors]
    return shown


@vehicles_app.command("import")
def import_file(
    file: Path = typer.Argument(..., metavar="FILE.csv", help="UTF-8 CSV with a header row."),
    tenant: str = typer.Option(..., "--tenant", metavar="SLUG", help="The operator whose list it is."),
    kind: str = typer.Option(..., "--kind", help="pass, whitelist or blocklist."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row and write nothing."),
) -> None:
    """Import a vehicle list from CSV (all rows or none) and print the report as JSON. The columns are those of
    the GraphQL mutation importVehicleList (see schema/schema.graphql)."""
    try:
        list_kind = service.parse_list_kind(kind)
    except DomainError as error:
        _fail(error.message)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        _fail(f"{file} is not UTF-8 text; save it as CSV UTF-8")
    except OSError as error:
        _fail(f"cannot read {file}: {error.strerror or error}")
    _progress(f"importing {file} into the {list_kind} list of {tenant}" + (" (dry run)" if dry_run else ""))
    try:
        report = asyncio.run(_import(tenant, list_kind, text, dry_run))
    except DomainError as error:
        _fail(error.message)
    except (OperationalError, InterfaceError, OSError) as error:
        _fail(f"cannot reach the database: {error.__class__.__name__}. Is PostgreSQL running?")
    except DBAPIError as error:
        _fail(f"the database refused the import: {str(error.orig).strip()}")
    typer.echo(json.dumps(report_json(tenant, report), indent=2, ensure_ascii=False, default=str))
    if report.error_count:
        _fail(f"{report.error_count:,} problems in {file}; nothing was written")
    if not dry_run:
        _progress(f"imported {report.imported:,} entries")
