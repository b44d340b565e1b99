"""The versioned model store: ``ModelStorage`` and the records it returns."""

from shared.trainkit.storage.model_loading import LoadedModel
from shared.trainkit.storage.model_storage import JSON_FILES, ModelStorage
from shared.trainkit.storage.records import ModelSummary, ModelVersion

__all__ = ["JSON_FILES", "LoadedModel", "ModelStorage", "ModelSummary", "ModelVersion"]
