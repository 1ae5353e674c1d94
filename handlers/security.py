"""Bearer keys for the operations that change the registry.

Keys come from the environment (``COE_ADMIN_KEYS``, ``COE_READ_KEYS``) through the
app's lifespan state; Connexion checks scopes only for OAuth2, so the admin role
is enforced here.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

from connexion.exceptions import ProblemException
from starlette.requests import Request


def _known(token: str, keys: Iterable[str]) -> bool:
    # Compare against every key, in constant time, so timing reveals nothing.
    return any([hmac.compare_digest(token.encode(), key.encode()) for key in keys])


def bearer_info(token: str, request: Request) -> dict[str, Any] | None:
    state = request.scope.get("state", {})
    if _known(token, state.get("admin_keys", ())):
        return {"sub": "admin", "scope": ["admin"]}
    if _known(token, state.get("read_keys", ())):
        raise ProblemException(status=403, title="Forbidden", detail="this key may read but not change the registry")
    return None  # Connexion answers 401
