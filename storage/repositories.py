"""All repositories over one session (one unit of work). The repositories themselves live in
``storage/repos/``, one module per aggregate."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storage.repos.attachments import AttachmentRepo
from storage.repos.audit import AuditRepo
from storage.repos.base import LEFT, OPEN_STATUSES
from storage.repos.blocks import BlockRepo
from storage.repos.cases import CaseRepo
from storage.repos.conversations import ConversationRepo
from storage.repos.desk import BoardRepo, DeskRepo
from storage.repos.journal import (
    DeskJournalRepo,
    InboxRepo,
    UpdateRepo,
    add_first,
    chat_waiting,
)
from storage.repos.messages import MessageRepo
from storage.repos.outbox import OutboxRepo, mark_delivered_many
from storage.repos.staff import CounsellorRepo, CredentialRepo, WebSessionRepo
from storage.repos.users import UserRepo

# The hot path's statements that run alone (`Database.lone`) as well as in a repository.
__all__ = ["LEFT", "OPEN_STATUSES", "Repos", "add_first", "chat_waiting", "mark_delivered_many"]


class Repos:
    """All repositories over one session (one unit of work)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.users = UserRepo(session)
        self.conversations = ConversationRepo(session)
        self.messages = MessageRepo(session)
        self.cases = CaseRepo(session)
        self.attachments = AttachmentRepo(session)
        self.counsellors = CounsellorRepo(session)
        self.audit = AuditRepo(session)
        self.updates = UpdateRepo(session)
        self.outbox = OutboxRepo(session)
        self.inbox = InboxRepo(session)
        self.desk_updates = DeskJournalRepo(session)
        self.credentials = CredentialRepo(session)
        self.web_sessions = WebSessionRepo(session)
        self.board = BoardRepo(session)
        self.desk = DeskRepo(session)
        self.blocks = BlockRepo(session)

    async def flush(self) -> None:
        await self.session.flush()

    async def refresh(self, record: object) -> None:
        await self.session.refresh(record)
