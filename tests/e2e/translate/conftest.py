"""The translation end-to-end tests share one fleet of fakes and one proxy per module
(tests/e2e/translate_fleet.py); each test starts from fresh fakes and ends checking that no
secret reached anything it should not."""

from __future__ import annotations

import pytest

from tests.e2e.translate_fleet import no_secret_leaked, shared


@pytest.fixture(scope="module")
def fleet(request, tmp_path_factory):
    return shared(request, tmp_path_factory)[0]


@pytest.fixture(scope="module")
def proxy(request, tmp_path_factory):
    return shared(request, tmp_path_factory)[1]


@pytest.fixture(autouse=True)
def fresh(fleet):
    fleet.reset()
    yield
    no_secret_leaked(fleet)
