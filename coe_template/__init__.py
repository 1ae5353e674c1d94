"""Tag machine-learning projects from their title and description.

The package knows nothing of HTTP: it reads data, trains and evaluates a
scikit-learn pipeline, stores each run's artifacts and predicts with them.
Its command line (``cli``) is the one place that reaches into the API layer, where
it must agree with it: a batch job printed as the API serves it, a worker's metrics.
``make lint`` holds this (the import contract in setup.cfg).
"""

from coe_template.data import ACCEPTED_TAGS, OTHER_TAG

__all__ = ["ACCEPTED_TAGS", "OTHER_TAG"]
