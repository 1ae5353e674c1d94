"""CORS, off unless ``COE_CORS_ORIGINS`` names origins: Starlette's middleware, with its refusals as problems."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from handlers import problems
from handlers.middleware.request_id import current_request_id, request_id_for


class CORS(CORSMiddleware):
    """A refused preflight (origin, method or headers not allowed) is a 400 problem like every error,
    not Starlette's ``text/plain``."""

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code < 400:
            return answer
        request_id = current_request_id() or request_id_for(None)
        headers, body = problems.raw(
            answer.status_code, bytes(answer.body).decode(), request_id, headers={"Vary": "Origin"}
        )
        return Response(
            body,
            status_code=answer.status_code,
            headers={name.decode("latin-1"): value.decode("latin-1") for name, value in headers},
        )
