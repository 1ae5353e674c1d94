"""The spec's resource shapes, made from the package's domain objects (dump only).

One module per resource, as Airflow's ``api_connexion/schemas``: the package returns
dataclasses and knows nothing of how they are served; these schemas say which fields a
client sees, under which names, and in what form (times, rounding).
"""
