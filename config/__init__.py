"""Service configuration: settings read from the environment, gunicorn config, training args."""
