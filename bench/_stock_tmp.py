from handlers.app import create_app
from handlers import inloop
app = create_app()
layer = app.app.extensions[inloop.EXTENSION]
app._middleware_app.asgi_app = layer.pool
