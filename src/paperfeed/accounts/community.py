"""Votes and collections, with who may see and change what.

Every method takes the acting user. A collection that is not yours is *invisible* unless
it is public — and then read-only — so another user's private collection answers exactly
like one that does not exist (no 403 that would confirm it is there).
"""

from __future__ import annotations

from typing import TextIO

from paperfeed.errors import NotFoundError, PaperfeedError
from paperfeed.export import get_exporter
from paperfeed.model import Collection, CollectionItem, User
from paperfeed.store import Store

MAX_NAME = 100
MAX_NOTE = 5000


def _check_name(name: str) -> str:
    text = " ".join(name.split())
    if not text or len(text) > MAX_NAME:
        raise PaperfeedError(f"a collection name has 1 to {MAX_NAME} characters")
    return text


class Community:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- votes --------------------------------------------------------------------------
    def vote(self, user: User, paper_id: str, *, up: bool = True) -> int:
        """Vote for a paper (``up=False`` undoes it); the paper's local vote count after."""
        return self.store.set_vote(user.id, paper_id, up)

    def voted(self, user: User | None, paper_ids: list[str]) -> set[str]:
        return set() if user is None else self.store.voted(user.id, paper_ids)

    # -- collections ----------------------------------------------------------------------
    def create_collection(self, user: User, name: str, *, public: bool = False) -> Collection:
        return self.store.create_collection(user.id, _check_name(name), is_public=public)

    def collections(self, user: User) -> list[Collection]:
        return self.store.collections(user.id)

    def collection(self, viewer: User | None, collection_id: int) -> Collection:
        """A collection the viewer may read: their own, or anyone's public one."""
        found = self.store.get_collection(collection_id)
        if found is None or not (
            found.is_public or (viewer is not None and viewer.id == found.user_id)
        ):
            raise NotFoundError(f"no collection {collection_id}")
        return found

    def own_collection(self, user: User, collection_id: int) -> Collection:
        """A collection the user may change: only their own."""
        found = self.store.get_collection(collection_id)
        if found is None or found.user_id != user.id:
            raise NotFoundError(f"no collection {collection_id}")
        return found

    def update_collection(
        self,
        user: User,
        collection_id: int,
        *,
        name: str | None = None,
        public: bool | None = None,
    ) -> Collection:
        self.own_collection(user, collection_id)
        return self.store.update_collection(
            collection_id,
            name=None if name is None else _check_name(name),
            is_public=public,
        )

    def delete_collection(self, user: User, collection_id: int) -> None:
        self.own_collection(user, collection_id)
        self.store.delete_collection(collection_id)

    def add(self, user: User, collection_id: int, paper_id: str, note: str = "") -> None:
        self.own_collection(user, collection_id)
        if len(note) > MAX_NOTE:
            raise PaperfeedError(f"a note has at most {MAX_NOTE} characters")
        self.store.add_to_collection(collection_id, paper_id, note.strip())

    def remove(self, user: User, collection_id: int, paper_id: str) -> None:
        self.own_collection(user, collection_id)
        if not self.store.remove_from_collection(collection_id, paper_id):
            raise NotFoundError(f"paper {paper_id!r} is not in this collection")

    def items(self, viewer: User | None, collection_id: int) -> list[CollectionItem]:
        self.collection(viewer, collection_id)
        return self.store.collection_items(collection_id)

    def export(self, viewer: User | None, collection_id: int, fmt: str, out: TextIO) -> int:
        """Write the collection's papers as BibTeX, RIS, CSV, JSON or JSONL; how many."""
        writer = get_exporter(fmt)
        return writer((item.paper for item in self.items(viewer, collection_id)), out)
