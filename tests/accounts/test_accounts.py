"""Accounts, sessions, tokens, rate limiting, votes and collections over a real store."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from paperfeed.accounts import Accounts, AuthError, RateLimitedError, SignatureError, Signer
from paperfeed.accounts.community import Community
from paperfeed.accounts.passwords import verify_password
from paperfeed.accounts.service import MAX_FAILURES, local_user, secret_hash
from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.model import SubscriptionContents, new_paper
from paperfeed.store import IncomingRecord, Store


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 14, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(store: Store, clock: Clock) -> Accounts:
    return Accounts(store, clock=clock)


def add_papers(store: Store, *titles: str) -> list[str]:
    papers = [new_paper(title=t, abstract=f"About {t}.", source="jsonl") for t in titles]
    store.write_batch([IncomingRecord(p) for p in papers], [])
    return [p.id for p in papers]


def test_first_user_is_admin_and_names_are_unique(accounts: Accounts) -> None:
    ada = accounts.sign_up("ada", "correct horse battery", email="ada@example.org")
    bob = accounts.sign_up("bob", "another long password")
    assert ada.is_admin
    assert not bob.is_admin
    with pytest.raises(PaperfeedError, match="username is already taken"):
        accounts.sign_up("ADA", "whatever password 1")
    with pytest.raises(PaperfeedError, match="e-mail address is already taken"):
        accounts.sign_up("ada2", "whatever password 1", email="Ada@Example.org")
    with pytest.raises(PaperfeedError, match="at least 10 characters"):
        accounts.sign_up("carol", "short")
    with pytest.raises(PaperfeedError, match="username"):
        accounts.sign_up("<script>", "long enough password")
    with pytest.raises(PaperfeedError, match="not an e-mail address"):
        accounts.sign_up("dave", "long enough password", email="nope")


def test_passwords_are_argon2id_hashes(accounts: Accounts, store: Store) -> None:
    accounts.sign_up("ada", "correct horse battery")
    found = store.user_credentials("ada")
    assert found is not None
    stored = found[1]
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert verify_password(stored, "correct horse battery")


def test_log_in_by_name_or_email_and_sessions(accounts: Accounts, store: Store) -> None:
    ada = accounts.sign_up("ada", "correct horse battery", email="ada@example.org")
    by_name = accounts.log_in("ada", "correct horse battery")
    by_mail = accounts.log_in("ADA@example.org", "correct horse battery")
    assert by_name.user.id == by_mail.user.id == ada.id
    assert accounts.session_user(by_name.session_token) == ada
    # The store never sees the token itself.
    assert store.session_user(by_name.session_token, dt.datetime.now(dt.UTC)) is None
    assert store.session_user(secret_hash(by_name.session_token), accounts.clock()) == ada
    accounts.log_out(by_name.session_token)
    assert accounts.session_user(by_name.session_token) is None
    assert accounts.session_user(by_mail.session_token) == ada
    assert accounts.session_user("forged") is None
    assert accounts.session_user(None) is None


def test_sessions_expire(accounts: Accounts, clock: Clock) -> None:
    accounts.sign_up("ada", "correct horse battery")
    session = accounts.log_in("ada", "correct horse battery")
    clock.now += dt.timedelta(days=31)
    assert accounts.session_user(session.session_token) is None


def test_wrong_passwords_are_rate_limited(accounts: Accounts, clock: Clock) -> None:
    accounts.sign_up("ada", "correct horse battery")
    for _ in range(MAX_FAILURES):
        with pytest.raises(AuthError, match="wrong username or password"):
            accounts.log_in("ada", "wrong password!!", client="10.0.0.1")
    # Now even the right password is refused, from anywhere, for this login...
    with pytest.raises(RateLimitedError, match="too many failed log-ins"):
        accounts.log_in("ada", "correct horse battery", client="10.0.0.2")
    # ...and that client cannot try other names either.
    with pytest.raises(RateLimitedError):
        accounts.log_in("bob", "whatever", client="10.0.0.1")
    clock.now += dt.timedelta(minutes=16)
    assert accounts.log_in("ada", "correct horse battery", client="10.0.0.2").user.username == "ada"


def test_unknown_users_fail_like_wrong_passwords(accounts: Accounts) -> None:
    with pytest.raises(AuthError, match="wrong username or password"):
        accounts.log_in("nobody", "some password here")


def test_change_password_ends_other_sessions(accounts: Accounts) -> None:
    ada = accounts.sign_up("ada", "correct horse battery")
    other = accounts.log_in("ada", "correct horse battery")
    with pytest.raises(AuthError):
        accounts.change_password(ada, "not the password", "new long password")
    fresh = accounts.change_password(ada, "correct horse battery", "new long password")
    assert accounts.session_user(other.session_token) is None
    assert accounts.session_user(fresh.session_token) == ada
    with pytest.raises(AuthError):
        accounts.log_in("ada", "correct horse battery")
    assert accounts.log_in("ada", "new long password").user == ada


def test_api_tokens_are_hashed_and_owned(accounts: Accounts, store: Store) -> None:
    ada = accounts.sign_up("ada", "correct horse battery")
    bob = accounts.sign_up("bob", "another long password")
    new = accounts.create_api_token(ada, "laptop")
    assert new.secret.startswith("pf_")
    assert accounts.api_token_user(new.secret) == ada
    assert accounts.api_token_user("pf_forged") is None
    assert accounts.api_token_user(None) is None
    listed = store.api_tokens(ada.id)
    assert [t.name for t in listed] == ["laptop"]
    assert listed[0].last_used_at is not None
    assert store.api_tokens(bob.id) == []
    with pytest.raises(NotFoundError):
        accounts.revoke_api_token(bob, new.token.id)  # not bob's
    assert accounts.api_token_user(new.secret) == ada
    accounts.revoke_api_token(ada, new.token.id)
    assert accounts.api_token_user(new.secret) is None


def test_delete_account_takes_all_its_data(accounts: Accounts, store: Store) -> None:
    ada = accounts.sign_up("ada", "correct horse battery", email="ada@example.org")
    (paper,) = add_papers(store, "Attention is all you need")
    community = Community(store)
    community.vote(ada, paper)
    collection = community.create_collection(ada, "reading")
    community.add(ada, collection.id, paper, "read first")
    accounts.create_api_token(ada, "laptop")
    store.create_subscription(
        "ada@example.org",
        user_id=ada.id,
        frequency="daily",
        contents=SubscriptionContents(),
        max_items=10,
    )
    with pytest.raises(AuthError):
        accounts.delete_account(ada, "wrong")
    accounts.delete_account(ada, "correct horse battery")
    assert store.get_user(ada.id) is None
    assert store.vote_counts([paper]) == {}
    assert store.get_collection(collection.id) is None
    assert store.api_tokens(ada.id) == []
    assert store.subscription_by_email("ada@example.org") is None
    assert store.get_paper(paper) is not None  # papers are shared: they stay


def test_votes_count_once_per_user_and_undo(accounts: Accounts, store: Store) -> None:
    ada = accounts.sign_up("ada", "correct horse battery")
    bob = accounts.sign_up("bob", "another long password")
    (paper,) = add_papers(store, "Attention is all you need")
    community = Community(store)
    assert community.vote(ada, paper) == 1
    assert community.vote(ada, paper) == 1
    assert community.vote(bob, paper) == 2
    assert community.voted(ada, [paper]) == {paper}
    assert community.vote(ada, paper, up=False) == 1
    assert community.voted(ada, [paper]) == set()
    assert store.vote_counts([paper]) == {paper: 1}
    with pytest.raises(NotFoundError):
        community.vote(ada, "2401.99999")


def test_collections_are_private_unless_public(accounts: Accounts, store: Store) -> None:
    ada = accounts.sign_up("ada", "correct horse battery")
    bob = accounts.sign_up("bob", "another long password")
    first, second = add_papers(store, "Attention is all you need", "BERT & <friends>")
    community = Community(store)
    private = community.create_collection(ada, "secret list")
    public = community.create_collection(ada, "reading group", public=True)
    community.add(ada, private.id, first, "mine")
    community.add(ada, public.id, second, "week 1")
    community.add(ada, public.id, second, "week 2")  # updates the note
    with pytest.raises(PaperfeedError, match="already have a collection"):
        community.create_collection(ada, "secret list")

    # Bob cannot see ada's private collection (it looks like it does not exist)...
    with pytest.raises(NotFoundError):
        community.items(bob, private.id)
    with pytest.raises(NotFoundError):
        community.items(None, private.id)
    # ...can read the public one, but never change either.
    assert [i.note for i in community.items(bob, public.id)] == ["week 2"]
    for attempt in (
        lambda: community.add(bob, public.id, first),
        lambda: community.remove(bob, public.id, second),
        lambda: community.update_collection(bob, public.id, public=False),
        lambda: community.delete_collection(bob, private.id),
        lambda: community.add(bob, private.id, first),
    ):
        with pytest.raises(NotFoundError):
            attempt()
    assert [c.name for c in community.collections(bob)] == []
    assert [(c.name, c.size) for c in community.collections(ada)] == [
        ("reading group", 1),
        ("secret list", 1),
    ]

    out = io.StringIO()
    assert community.export(bob, public.id, "bibtex", out) == 1
    assert "BERT" in out.getvalue()
    community.remove(ada, public.id, second)
    assert community.items(ada, public.id) == []


def test_signed_tokens_check_purpose_integrity_and_age() -> None:
    signer = Signer(b"0123456789abcdef0123456789abcdef")
    token = signer.sign("unsubscribe", "7:ada@example.org", now=1000)
    assert signer.verify("unsubscribe", token, max_age=None, now=10**9) == "7:ada@example.org"
    with pytest.raises(SignatureError, match=r"not for this purpose|not valid"):
        signer.verify("confirm-subscription", token, max_age=None)
    tampered = token.replace(token.split(".")[0], "OTphZGFAZXhhbXBsZS5vcmc")
    with pytest.raises(SignatureError):
        signer.verify("unsubscribe", tampered, max_age=None)
    with pytest.raises(SignatureError, match="expired"):
        signer.verify("unsubscribe", token, max_age=60, now=2000)
    with pytest.raises(SignatureError, match="incomplete"):
        signer.verify("unsubscribe", "abc", max_age=None)
    other = Signer(b"another secret key of enough length")
    with pytest.raises(SignatureError):
        other.verify("unsubscribe", token, max_age=None)


def test_the_local_user_cannot_log_in_and_does_not_take_the_admin_seat(
    accounts: Accounts, store: Store
) -> None:
    local = local_user(store)
    assert local.is_admin  # the laptop's owner
    assert local_user(store) == local
    with pytest.raises(AuthError):
        accounts.log_in("local", "")
    with pytest.raises(AuthError):
        accounts.log_in("local", "!no-login:local-user")
    assert accounts.sign_up("ada", "correct horse battery").is_admin
