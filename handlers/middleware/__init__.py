"""The ASGI middlewares every request passes through, in the order ``handlers/app.py`` stacks them:
keys in query strings refused, body size, deadline and budget, requests in flight, routing's 404 and
405, the request id, metrics and the access line, security headers and CORS."""
