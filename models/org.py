"""The organisation tree: committee → second-level committee → general branch → branch → group."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from models.base import Base, UTCDateTime, str_enum, utcnow


class OrgKind(StrEnum):
    COMMITTEE = "committee"  # 党委 / 机关党委
    SUB_COMMITTEE = "sub_committee"  # 二级党委
    GENERAL_BRANCH = "general_branch"  # 党总支
    BRANCH = "branch"  # 党支部
    JOINT_BRANCH = "joint_branch"  # 联合党支部
    TEMPORARY_BRANCH = "temporary_branch"  # 临时党支部
    GROUP = "group"  # 党小组

    @property
    def is_branch(self) -> bool:
        return self in BRANCH_KINDS

    @property
    def label(self) -> str:
        return ORG_KIND_LABELS[self]


BRANCH_KINDS = frozenset({OrgKind.BRANCH, OrgKind.JOINT_BRANCH, OrgKind.TEMPORARY_BRANCH})

ORG_KIND_LABELS = {
    OrgKind.COMMITTEE: "党委",
    OrgKind.SUB_COMMITTEE: "二级党委",
    OrgKind.GENERAL_BRANCH: "党总支",
    OrgKind.BRANCH: "党支部",
    OrgKind.JOINT_BRANCH: "联合党支部",
    OrgKind.TEMPORARY_BRANCH: "临时党支部",
    OrgKind.GROUP: "党小组",
}

# Longest suffix first: 临时党支部 and 联合党支部 end in 党支部 too.
_SUFFIXES: tuple[tuple[str, OrgKind], ...] = (
    ("临时党支部", OrgKind.TEMPORARY_BRANCH),
    ("联合党支部", OrgKind.JOINT_BRANCH),
    ("党总支", OrgKind.GENERAL_BRANCH),
    ("党支部", OrgKind.BRANCH),
    ("党小组", OrgKind.GROUP),
    ("党委", OrgKind.COMMITTEE),
)


def kind_from_name(name: str, parent_kind: OrgKind | None) -> OrgKind | None:
    """The kind a name's suffix gives; a 党委 under another 党委 is a second-level committee."""
    for suffix, kind in _SUFFIXES:
        if name.endswith(suffix):
            if kind is OrgKind.COMMITTEE and parent_kind in (OrgKind.COMMITTEE, OrgKind.SUB_COMMITTEE):
                return OrgKind.SUB_COMMITTEE
            return kind
    return None


class Organisation(Base):
    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # Full `/`-separated path from the top: the natural key used by the roster.
    path: Mapped[str] = mapped_column(String(500), unique=True)
    kind: Mapped[OrgKind] = mapped_column(str_enum(OrgKind, 20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    # 企业微信群机器人 webhook key, for summaries posted to the organisation's work group.
    webhook_key: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[Organisation | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Organisation]] = relationship(back_populates="parent")

    def __repr__(self) -> str:
        return f"<Organisation {self.path}>"

    @property
    def depth(self) -> int:
        return self.path.count("/")

    def is_within(self, other: Organisation) -> bool:
        """True when this organisation is `other` or lies beneath it."""
        return path_within(self.path, other.path)


def path_within(path: str, top: str) -> bool:
    """True when the organisation at `path` is the one at `top` or lies beneath it."""
    return path == top or path.startswith(top + "/")


def tree_order(org: Organisation, within: Mapping[int, Organisation] | None = None) -> list[int]:
    """Sort key of the tree as the roster draws it: each organisation right after its parent, and
    siblings in the order the roster created them (their ids), not by the characters' code points.
    `within`: the organisations loaded already (a subtree, by id); the chain stops at the first
    one not among them. Without it, the chain climbs `parent` to the top."""
    chain = []
    node: Organisation | None = org
    while node is not None:
        chain.append(node.id)
        if within is None:
            node = node.parent
        else:
            node = within.get(node.parent_id) if node.parent_id is not None else None
    return chain[::-1]


def subtree(session: Session, org: Organisation) -> list[Organisation]:
    """`org` and every organisation beneath it, top-down."""
    rows = session.scalars(
        select(Organisation).where(
            (Organisation.id == org.id) | Organisation.path.startswith(org.path + "/", autoescape=True)
        )
    ).all()
    return sorted(rows, key=lambda o: (o.depth, o.path))


def find_by_path(session: Session, path: str) -> Organisation | None:
    return session.scalar(select(Organisation).where(Organisation.path == path))


def find_org(session: Session, text: str) -> list[Organisation]:
    """The organisations `text` names: a full path (one), else every organisation of that name
    (one when the name is unique in the tree, several for the caller to list as candidates,
    none when nothing matches). Surrounding slashes and spaces are ignored."""
    wanted = text.strip().strip("/").strip()
    if not wanted:
        return []
    exact = find_by_path(session, wanted)
    if exact is not None:
        return [exact]
    rows = session.scalars(select(Organisation).where(Organisation.name == wanted.rsplit("/", 1)[-1])).all()
    if "/" in wanted:  # a partial path: its tail must match
        rows = [o for o in rows if o.path.endswith("/" + wanted)]
    return sorted(rows, key=lambda o: o.path)
