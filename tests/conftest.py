import os

# Qt must never look for a display in tests; set before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _gallery_cache(tmp_path_factory):
    """Embedded galleries are cached in a folder of the test session, never the user's ~/.cache
    (subprocesses inherit it)."""
    os.environ["NLMM_CACHE_DIR"] = str(tmp_path_factory.mktemp("nlmm-cache"))
    yield


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
