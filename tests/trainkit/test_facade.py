"""The one import users need."""

from __future__ import annotations

import subprocess
import sys

import shared.trainkit as trainkit

PUBLIC = [
    "Trainer",
    "TrainerConfig",
    "FitResult",
    "StopReason",
    "TrainableModule",
    "DataModule",
    "Callback",
    "Metric",
    "EarlyStopping",
    "ModelCheckpoint",
    "ProgressReporter",
    "ReduceLROnPlateau",
    "CosineAnnealing",
    "Timer",
    "RunRecorder",
    "CancelToken",
    "TrainingDivergedError",
    "TrainingCancelledError",
    "ConfigError",
    "select_device",
    "save_checkpoint",
    "load_checkpoint",
]

# Records the environment at the moment torch is first looked up by the import system.
SPY = """
import os, sys
os.environ.pop('PYTORCH_ENABLE_MPS_FALLBACK', None)
seen = []
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == 'torch' and not seen:
            seen.append(os.environ.get('PYTORCH_ENABLE_MPS_FALLBACK'))
        return None
sys.meta_path.insert(0, Spy())
import shared.trainkit
print(seen[0])
"""


def test_facade_exports_the_public_api() -> None:
    missing = [name for name in PUBLIC if not hasattr(trainkit, name)]
    assert missing == []
    assert set(PUBLIC) <= set(trainkit.__all__)


def test_facade_enables_mps_fallback_before_torch_is_imported() -> None:
    out = subprocess.run([sys.executable, "-c", SPY], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "1"
