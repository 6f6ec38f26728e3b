"""Self-reported points items (申报, SPEC §8): a member claims, a secretary of their branch decides.

A report takes a number from the one shared sequence (models/numbers.py) when it is made. 核实
awards the verified value in the same transaction (models/points.py: award_claim), within what the
month's rules let the category claim; 驳回 records the reason. Nothing needs proof (SPEC §7)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from config.points_rules import Category, Claim
from models.base import Base, UTCDateTime, str_enum, utcnow
from models.event import record
from models.numbers import ItemKind, allocate, attach
from models.org import Organisation
from models.person import Person
from models.points import award_claim, period_of, rules_for


class ReportStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class SelfReport(Base):
    __tablename__ = "self_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)  # from the shared sequence
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    category: Mapped[Category] = mapped_column(str_enum(Category, 12))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[ReportStatus] = mapped_column(str_enum(ReportStatus, 10), default=ReportStatus.PENDING)
    points: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    person: Mapped[Person] = relationship(foreign_keys=[person_id])
    branch: Mapped[Organisation] = relationship()


def submit(session: Session, person: Person, branch: Organisation, category: Category, content: str, *,
           at: datetime) -> SelfReport:
    """Record a claim for the branch to decide; numbered in the shared sequence."""
    number = allocate(session, ItemKind.SELF_REPORT)
    report = SelfReport(number=number, person_id=person.id, branch_id=branch.id, category=category,
                        content=content, created_at=at)
    session.add(report)
    session.flush()
    attach(session, number, report.id)
    record(session, "self_report.submitted", actor=person, subject=report, at=at,
           data={"number": number, "category": category.value, "content": content})
    return report


def by_number(session: Session, number: int) -> SelfReport | None:
    return session.scalar(select(SelfReport).where(SelfReport.number == number))


class Decision(StrEnum):
    DECIDED = "decided"
    ALREADY = "already"  # decided before: nothing changes
    OUT_OF_RANGE = "out_of_range"  # the value is outside what the category may claim


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    report: SelfReport
    claim: Claim | None = None


def claim_of(session: Session, category: Category, at: datetime) -> Claim | None:
    """What the category may claim under the rules of `at`'s month (None: not claimable)."""
    return rules_for(session, period_of(at)).claims.get(category)


def verify(session: Session, report: SelfReport, decider: Person, points: int | None, *, at: datetime) -> Outcome:
    """Verify the claim at `points` (the rule's default when None) and award it, capped."""
    locked = session.get(SelfReport, report.id, with_for_update=True, populate_existing=True)
    claim = claim_of(session, locked.category, at)
    if locked.status is not ReportStatus.PENDING:
        return Outcome(Decision.ALREADY, locked, claim)
    value = claim.default if (points is None and claim is not None) else points
    if claim is None or value is None or not claim.low <= value <= claim.high:
        return Outcome(Decision.OUT_OF_RANGE, locked, claim)
    locked.status, locked.points = ReportStatus.VERIFIED, value
    locked.decided_by_id, locked.decided_at = decider.id, at
    award_claim(session, locked.person_id, locked.category, value, locked.id, at=at)
    record(session, "self_report.verified", actor=decider, subject=locked, at=at, data={"points": value})
    return Outcome(Decision.DECIDED, locked, claim)


def reject(session: Session, report: SelfReport, decider: Person, reason: str, *, at: datetime) -> Outcome:
    """Reject the claim with the reason; the member is told by the caller."""
    locked = session.get(SelfReport, report.id, with_for_update=True, populate_existing=True)
    if locked.status is not ReportStatus.PENDING:
        return Outcome(Decision.ALREADY, locked)
    locked.status, locked.reason = ReportStatus.REJECTED, reason
    locked.decided_by_id, locked.decided_at = decider.id, at
    record(session, "self_report.rejected", actor=decider, subject=locked, at=at, data={"reason": reason})
    return Outcome(Decision.DECIDED, locked)


def verified_count(session: Session, person_ids: list[int], first: datetime, last: datetime) -> int:
    """Self-reports of these people verified in [first, last)."""
    from sqlalchemy import func
    return session.scalar(select(func.count()).select_from(SelfReport).where(
        SelfReport.person_id.in_(person_ids), SelfReport.status == ReportStatus.VERIFIED,
        SelfReport.decided_at >= first, SelfReport.decided_at < last)) or 0
