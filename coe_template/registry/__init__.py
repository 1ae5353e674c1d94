"""Several versions per model, aliases such as ``production`` onto them, verified loading."""

from coe_template.registry.registry import (
    PRODUCTION,
    AliasChange,
    AliasNotFound,
    Conflict,
    ModelInfo,
    ModelNotFound,
    Registry,
    RegistryError,
    StillTraining,
    VersionInfo,
    VersionNotFound,
)

__all__ = [
    "PRODUCTION",
    "AliasChange",
    "AliasNotFound",
    "Conflict",
    "ModelInfo",
    "ModelNotFound",
    "Registry",
    "RegistryError",
    "StillTraining",
    "VersionInfo",
    "VersionNotFound",
]
