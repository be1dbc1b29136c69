"""The errors that mean "this input cannot be used": each carries one line naming the file, key or
setting and the problem, so a front end shows it as it is (no traceback; the program goes on)."""
from engine.config import ConfigError
from engine.data.errors import DataError
from engine.device import DeviceError
from engine.training.checkpoint import CheckpointError
from engine.training.run_folder import RunFolderError

USER_ERRORS = (ConfigError, DataError, CheckpointError, DeviceError, RunFolderError)
