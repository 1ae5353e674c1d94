"""``coe-template models``: list, promote, roll back, archive, cancel, export and import versions."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from coe_template.artifacts.transfer import read_export, write_export
from coe_template.bootstrap import training_jobs
from coe_template.cli.context import (
    Context,
    echo_json,
    echo_table,
    fail_clearly,
    iso_time,
    json_option,
    pass_context,
)
from coe_template.registry import PRODUCTION, VersionInfo
from coe_template.registry.history import promote as promote_alias
from coe_template.registry.history import rollback as rollback_alias
from coe_template.registry.schema import STATUSES


@click.group()
def models() -> None:
    """List, promote, roll back, archive, cancel, export and import model versions."""


@models.command("list")
@json_option
@pass_context
@fail_clearly
def list_models(context: Context, as_json: bool) -> None:
    """Every model with its versions and aliases: a table, or JSON with --json."""
    found = context.registry.list_models()
    if as_json:
        echo_json([{**asdict(model), "created_at": iso_time(model.created_at)} for model in found])
        return
    echo_table(
        ("NAME", "VERSIONS", "LATEST", "ALIASES", "CREATED"),
        (
            (
                model.name,
                model.version_count,
                model.latest_version,
                ",".join(f"{alias}={number}" for alias, number in sorted(model.aliases.items())),
                iso_time(model.created_at),
            )
            for model in found
        ),
    )


@models.command()
@click.argument("name")
@click.option("--status", type=click.Choice(STATUSES))
@json_option
@pass_context
@fail_clearly
def versions(context: Context, name: str, status: str | None, as_json: bool) -> None:
    """The versions of model NAME, oldest first: a table, or JSON with --json."""
    found: list[VersionInfo] = []
    after: int | None = 0
    while after is not None:
        page, after = context.registry.list_versions(name, status=status, after=after, limit=100)
        found.extend(page)
    if as_json:
        echo_json(
            [
                {**asdict(v), "created_at": iso_time(v.created_at), "finished_at": iso_time(v.finished_at)}
                for v in found
            ]
        )
        return
    echo_table(
        ("VERSION", "STATUS", "ALIASES", "F1", "CREATED"),
        ((v.version, v.status, ",".join(v.aliases), _f1(v), iso_time(v.created_at)) for v in found),
    )


def _f1(version: VersionInfo) -> str | None:
    f1 = (version.performance or {}).get("overall", {}).get("f1")
    return None if f1 is None else f"{f1:.3f}"


@models.command()
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--alias", default=PRODUCTION, show_default=True)
@click.option("--reason", default=None, help=f"Why, for the registry's history (required for {PRODUCTION}).")
@pass_context
@fail_clearly
def promote(context: Context, name: str, version: int, alias: str, reason: str | None) -> None:
    """Point ALIAS of model NAME at VERSION."""
    promote_alias(context.registry, name, alias, version, reason)
    click.echo(f"{name}: {alias} -> version {version}")


@models.command()
@click.argument("name")
@click.option(
    "--to",
    "target",
    type=click.IntRange(min=1),
    help="Version to go back to [default: the one the alias served before its last move, if still ready].",
)
@click.option("--alias", default=PRODUCTION, show_default=True)
@click.option("--reason", required=True, help="Why, for the registry's history.")
@pass_context
@fail_clearly
def rollback(context: Context, name: str, target: int | None, alias: str, reason: str) -> None:
    """Point ALIAS of model NAME back at the version it served before (or at --to)."""
    done = rollback_alias(context.registry, name, alias, reason, target)
    click.echo(f"{name}: {alias} -> version {done.now} (was {done.was})")


@models.command()
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@pass_context
@fail_clearly
def archive(context: Context, name: str, version: int) -> None:
    """Archive VERSION of model NAME (refused while an alias points at it, or while it trains)."""
    context.registry.archive_version(name, version)
    click.echo(f"{name}: version {version} archived")


@models.command()
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@pass_context
@fail_clearly
def cancel(context: Context, name: str, version: int) -> None:
    """Cancel VERSION of model NAME while it trains (queued or running): it fails, and its trainer stops."""
    training_jobs(context.settings, context.registry).cancel(name, version)
    click.echo(f"{name}: version {version} cancelled (failed)")


@models.command("export")
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (a gzipped tar: manifest.json and the run's files).",
)
@pass_context
@fail_clearly
def export_version(context: Context, name: str, version: int, out: Path) -> None:
    """Write ready VERSION of model NAME, with its digests, to one file another registry can import."""
    manifest, files = context.registry.export_version(name, version)
    write_export(out, manifest, files)
    click.echo(
        f"{name} version {version} (run {manifest['run_id']}, {len(files)} files, "
        f"{sum(map(len, files.values()))} bytes) exported to {out}"
    )


@models.command("import")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model", "name", default=None, help="Model to add the version to [default: the exported model's name]."
)
@pass_context
@fail_clearly
def import_version(context: Context, path: Path, name: str | None) -> None:
    """Record the version exported in FILE as a new ready version, after checking every file's digest."""
    manifest, files = read_export(path)
    name = name or manifest["model"]
    version = context.registry.import_version(name, manifest, files)
    click.echo(
        f"{name}: imported {manifest['model']} version {manifest['version']} "
        f"(run {manifest['run_id']}) as version {version.version}, ready; promote it with "
        f"`coe-template models promote {name} {version.version}`"
    )
