"""The sensitive-word list (IM-11): what is masked, refused or flagged in what patients and family send."""

from __future__ import annotations

from imserver.actions.base import Actor, Context, Tx, transact
from imserver.bus import WordsChanged
from imserver.store import moderation
from imserver.words import Policy, normalise
from protocol import ErrorCode, ProtocolError


async def do_set_word(ctx: Context, actor: Actor, word: str, policy: Policy | None) -> None:
    """Add a word or change its policy; remove it with ``policy`` None. Every node rebuilds its filter.

    Error handling: BAD_REQUEST (``word``) for a word with nothing to match (no letters or digits);
    NOT_FOUND (``word``) to remove a word that is not listed.
    """
    if not normalise(word):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "the word has no letters", field="word")
    stored = None if policy is None else str(policy)

    async def body(tx: Tx) -> None:
        if not await moderation.set_word_txn(tx.db, word, stored, actor.id):
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such word", field="word")
        await tx.audit("words_set" if stored else "words_remove", detail={"word": word, "policy": stored})
        tx.emit(WordsChanged())
    await transact(ctx, actor, "words_set", body)
