"""``paperfeed digest preview`` / ``send --dry-run`` from the command line have the "for
you" section, as the server's digest does: queued models are trained first."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from click.testing import CliRunner

from paperfeed.cli import main
from paperfeed.digest import subscriptions as subs
from paperfeed.model import SubscriptionContents
from paperfeed.recommend.feedback import FeedbackKind, give_feedback
from tests.recommend.conftest import Embedded


def test_the_cli_digest_has_the_for_you_picks(embedded: Embedded, tmp_path: Path) -> None:
    e = embedded
    liked = e.find("diffusion")[:5]
    assert len(liked) == 5
    for p in liked:
        give_feedback(e.store, e.user.id, p.id, FeedbackKind.LIKE)
    sub = subs.subscribe(
        e.store,
        "local@example.org",
        contents=SubscriptionContents(trending=False),
        user_id=e.user.id,
    )
    assert sub.contents.for_you
    e.store.update_subscription(sub.id, confirmed_at=dt.datetime.now(dt.UTC))
    data = str(e.settings.data_dir)
    e.store.close()  # the command opens the store itself

    runner = CliRunner()
    preview = runner.invoke(main, ["digest", "preview", "local@example.org", "--data-dir", data])
    assert preview.exit_code == 0, preview.output
    # Without the recommender the digest would be empty (no trending, no searches).
    assert "close to “" in preview.stdout  # each pick says which liked paper it is near

    sent = runner.invoke(main, ["digest", "send", "--dry-run", "--json", "--data-dir", data])
    assert sent.exit_code == 0, sent.output
    outcomes = json.loads(sent.stdout)["outcomes"]
    assert [o["email"] for o in outcomes] == ["local@example.org"]
    assert outcomes[0]["items"] > 0
