"""``/models/{model-name}/events``: the model's history, a page at a time."""

from __future__ import annotations

from coe_template.registry.history import list_events
from handlers.aliases import parse_time
from handlers.context import services
from handlers.envelope import enveloped
from handlers.schemas.events import event_schema


@enveloped()
def search(
    model_name: str,
    action: str | None = None,
    since: str | None = None,
    page_size: int = 20,
    page_token: str | None = None,
) -> dict:
    events, after = list_events(
        services().registry,
        model_name,
        action=action,
        since=None if since is None else parse_time("since", since),
        after=int(page_token or 0),
        limit=page_size,
    )
    return {
        "events": event_schema.dump(events, many=True),
        "next_page_token": None if after is None else str(after),
    }
