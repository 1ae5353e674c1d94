"""Tag machine-learning projects from their title and description.

The package knows nothing of HTTP: it reads data, trains and evaluates a
scikit-learn pipeline, stores each run's artifacts and predicts with them. Where its
command line must agree with the API (a batch job's shape), both take the package's
(:mod:`coe_template.shapes`); the import contracts in setup.cfg (``make lint``) hold it.
"""

from coe_template.model.data import ACCEPTED_TAGS, OTHER_TAG

__all__ = ["ACCEPTED_TAGS", "OTHER_TAG"]
