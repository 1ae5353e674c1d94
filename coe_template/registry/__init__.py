"""Several versions per model, aliases such as ``production`` onto them, verified loading."""

from coe_template.registry.registry import (
    PRODUCTION,
    AliasNotFound,
    Conflict,
    ModelNotFound,
    Registry,
    RegistryError,
    StillTraining,
    VersionNotFound,
)

__all__ = [
    "PRODUCTION",
    "AliasNotFound",
    "Conflict",
    "ModelNotFound",
    "Registry",
    "RegistryError",
    "StillTraining",
    "VersionNotFound",
]
