"""The HTTP layer: one module per resource of ``openapi/spec.yaml``, plus the app factory.

Connexion routes each ``operationId`` (e.g. ``predictions.create``) to a function
here; the functions parse, call ``coe_template`` and shape the answer.
"""
