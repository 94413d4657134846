"""Shared test set-up: fast mode for everything, and no stderr from any notebook cell."""

import os

import pytest

os.environ.setdefault("ACV_FAST", "1")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fail a notebook cell (an nbval item) that wrote to stderr: warnings are fixed at their
    cause, not hidden, and a learner should never see red text in a clean run."""
    result = yield
    outputs = getattr(item, "test_outputs", None) or []
    stderr = "".join(o.get("text", "") for o in outputs
                     if o.get("output_type") == "stream" and o.get("name") == "stderr")
    if stderr:
        pytest.fail(f"{item.name} wrote to stderr:\n{stderr}", pytrace=False)
    return result
