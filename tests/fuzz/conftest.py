"""The fuzzing suite: Hypothesis throws generated and mutated audio, image, CSV, YAML and checkpoint bytes,
text in any script, spreadsheets' encodings and separators (and odd parameters) at the decoders, the
tokenizer, the folder loader, the config loader and the checkpoint loader (the studio's settings file has
its own, tests/studio/test_settings_fuzz.py). The property is always the same: a clean result, or the
layer's one-line error (DataError / ConfigError / CheckpointError), never anything else, and never
slower than the deadline.

`make test` runs the "ci" profile: derandomized (every run tries the same examples) and without an
example database, in about a minute. `HYPOTHESIS_PROFILE=explore` draws fresh examples, ten times as
many, without deadlines: a longer hunt for new failures (commit each one found as an explicit example).
"""
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, database=None, deadline=timedelta(seconds=5),
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", max_examples=1000, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="module")
def scratch():
    """One folder per module: Hypothesis runs many examples per test, a function's tmp_path is made once."""
    with tempfile.TemporaryDirectory(prefix="nlmm-fuzz-") as folder:
        yield Path(folder)


def one_line(message: str, limit: int = 600) -> bool:
    return "\n" not in message and 0 < len(message) <= limit
