"""A live Chorus on loopback for the seeds' own client code (tests/seeds/).

Each test module ports the code examples of one seed (../shared/seeds/) to Python `requests`
calls: the same requests, the same fields read, the same status codes checked. A user migrating
to Chorus pastes that code and changes only the base URL and the key; these tests are that user.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.plugins.services import Account
from tests.test_openai_fixtures import LiveApp, live_app


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from live_app(tmp_path_factory)


@pytest.fixture(scope="module")
def base_url(live: LiveApp) -> str:
    """What the seeds call BASE_URL / API_BASE (the server root; the seeds add /api/v1/...)."""
    return live.base_url


@pytest.fixture(scope="module")
def account(live: LiveApp) -> Account:
    return live.make_user(credits=200_000)


@pytest.fixture(scope="module")
def api_key(account: Account) -> str:
    return account.key
