"""Tag machine-learning projects from their title and description.

The package knows nothing of HTTP: it reads data, trains and evaluates a
scikit-learn pipeline, stores each run's artifacts and predicts with them.
Its command line (``cli``) is the one exception, where it must agree with the API:
the import contract in setup.cfg, checked by ``make lint``, says where.
"""

from coe_template.data import ACCEPTED_TAGS, OTHER_TAG

__all__ = ["ACCEPTED_TAGS", "OTHER_TAG"]
