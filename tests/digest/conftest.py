from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.smtp_server import Mailbox, smtp_server


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as (box, port):
        yield box, port
