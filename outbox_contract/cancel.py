"""Cancel queued mail from code, inside the caller's transaction.

Only ``pending`` rows can be cancelled: a row being sent, sent or failed is
past stopping. A cancelled row is never sent, keeps its history, and frees
its dedupe key (the key is unique only among rows not yet done).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from outbox_contract.schema import CANCELLED, PENDING, Outbox


@dataclass(frozen=True)
class Cancelled:
    """What a cancel did: the rows it stopped, and why the others were left."""

    cancelled: list[int] = field(default_factory=list)
    # id -> its status ("sending", "sent", "failed", ...), or "missing".
    not_cancelled: dict[int, str] = field(default_factory=dict)


def cancel_email(
    session: Session, ids: Iterable[int] = (), *, dedupe_key: str | None = None
) -> Cancelled:
    """Cancel the pending rows among ``ids``, and the pending row of ``dedupe_key``.

    Nothing is committed: the cancel joins ``session``'s transaction, so it
    commits (or rolls back) with the caller's own writes.
    """
    ids = sorted(set(ids))
    if not ids and dedupe_key is None:
        raise ValueError("name the rows to cancel: ids, or a dedupe_key")
    which = []
    if ids:
        which.append(Outbox.id.in_(ids))
    if dedupe_key is not None:
        which.append(Outbox.dedupe_key == dedupe_key)
    statement = (
        update(Outbox)
        .where(Outbox.status == PENDING, or_(*which))
        .values(status=CANCELLED)
        .returning(Outbox.id)
        .execution_options(synchronize_session=False)
    )
    cancelled = sorted(session.execute(statement).scalars())
    left = [i for i in ids if i not in cancelled]
    query = select(Outbox.id, Outbox.status).where(Outbox.id.in_(left))
    found = {row_id: status for row_id, status in session.execute(query)}
    return Cancelled(cancelled, {i: found.get(i, "missing") for i in left})
