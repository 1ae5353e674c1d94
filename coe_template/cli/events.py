"""``coe-template events``: the registry's history, listed and verified."""

from __future__ import annotations

import sys

import click

from coe_template.cli.context import Context, fail_clearly, iso_time, pass_context
from coe_template.registry.events import ACTIONS, Event
from coe_template.registry.history import list_events, verify_history


@click.group()
def events() -> None:
    """The registry's history: every change to versions and aliases, hash-chained."""


@events.command("verify")
@pass_context
@fail_clearly
def verify_events(context: Context) -> None:
    """Walk the whole chain: OK with the count, or where it breaks (exit status 1)."""
    found = verify_history(context.registry)
    if found.broken_at is None:
        click.echo(f"OK: {found.count} events, the chain holds")
        return
    click.echo(
        f"BROKEN at event {found.broken_at}: {found.why} ({found.count} events before it hold)", err=True
    )
    sys.exit(1)


@events.command("list")
@click.option("--model", "name", required=True, help="The model whose events to list.")
@click.option("--action", type=click.Choice(ACTIONS))
@pass_context
@fail_clearly
def list_model_events(context: Context, name: str, action: str | None) -> None:
    """The events of model NAME, oldest first: sequence, time, actor, action, alias, versions, reason."""
    after: int | None = 0
    while after is not None:
        page, after = list_events(context.registry, name, action=action, after=after, limit=100)
        for event in page:
            click.echo(line(event))


def line(event: Event) -> str:
    versions = " -> ".join(str(v) for v in (event.from_version, event.to_version) if v is not None)
    return (
        f"{event.sequence:>5}  {iso_time(event.at)}  {event.actor:<12}  {event.action:<17}  "
        f"{event.alias or '-':<12}  {versions or '-':<8}  {event.reason or ''}".rstrip()
    )
