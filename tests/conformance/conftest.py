"""The fakesnow server fixture, shared with the integration tests."""

from tests.integration.conftest import fakesnow_server  # noqa: F401 - a fixture
