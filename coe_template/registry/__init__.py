"""Several versions per model, aliases such as ``production`` onto them, verified loading."""

from coe_template.errors import Conflict
from coe_template.registry.records import (
    AliasChange,
    AliasNotFound,
    ModelInfo,
    ModelNotFound,
    RegistryError,
    StillTraining,
    VersionInfo,
    VersionNotFound,
)
from coe_template.registry.registry import PRODUCTION, Registry

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
