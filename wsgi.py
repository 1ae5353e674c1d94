"""Entry point for gunicorn: ``gunicorn -c config/gunicorn.py wsgi:app``."""

from handlers.app import create_app

app = create_app()
