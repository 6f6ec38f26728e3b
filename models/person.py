"""People, their memberships, roles per organisation and liaison assignments."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from models.base import Base, UTCDateTime, str_enum, utcnow
from models.org import Organisation


class Role(StrEnum):
    MEMBER = "member"  # 党员
    SECRETARY = "secretary"  # 书记
    DEPUTY_SECRETARY = "deputy_secretary"  # 副书记
    ORGANISATION_MEMBER = "organisation_member"  # 组织委员
    PUBLICITY_MEMBER = "publicity_member"  # 宣传委员
    DISCIPLINE_MEMBER = "discipline_member"  # 纪检委员
    LIAISON = "liaison"  # 联络员
    ADMIN = "admin"  # 管理员

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]

    @property
    def is_committee(self) -> bool:
        """书记, 副书记 and 委员 lead the organisation they hold the role in."""
        return self in COMMITTEE_ROLES


ROLE_LABELS = {
    Role.MEMBER: "党员",
    Role.SECRETARY: "书记",
    Role.DEPUTY_SECRETARY: "副书记",
    Role.ORGANISATION_MEMBER: "组织委员",
    Role.PUBLICITY_MEMBER: "宣传委员",
    Role.DISCIPLINE_MEMBER: "纪检委员",
    Role.LIAISON: "联络员",
    Role.ADMIN: "管理员",
}
ROLE_BY_LABEL = {label: role for role, label in ROLE_LABELS.items()}
COMMITTEE_ROLES = frozenset(
    {
        Role.SECRETARY,
        Role.DEPUTY_SECRETARY,
        Role.ORGANISATION_MEMBER,
        Role.PUBLICITY_MEMBER,
        Role.DISCIPLINE_MEMBER,
    }
)


class MembershipKind(StrEnum):
    HOME = "home"
    TEMPORARY = "temporary"


class MemberCategory(StrEnum):
    """The roster's 党员类别."""

    FULL = "full"  # 正式党员
    PROBATIONARY = "probationary"  # 预备党员

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self]


class PostType(StrEnum):
    """The roster's 岗位类型: how the member works (the portrait's 党员岗位特点 counts the last two)."""

    OFFICE = "office"  # 机关
    FIELD = "field"  # 外勤
    POSTED = "posted"  # 驻外

    @property
    def label(self) -> str:
        return POST_TYPE_LABELS[self]


CATEGORY_LABELS = {MemberCategory.FULL: "正式党员", MemberCategory.PROBATIONARY: "预备党员"}
CATEGORY_BY_LABEL = {label: c for c, label in CATEGORY_LABELS.items()}
POST_TYPE_LABELS = {PostType.OFFICE: "机关", PostType.FIELD: "外勤", PostType.POSTED: "驻外"}
POST_TYPE_BY_LABEL = {label: t for t, label in POST_TYPE_LABELS.items()}


class Person(Base):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), index=True)
    # The roster's 企业微信账号: the key that identifies a person across rows and re-imports.
    wecom_userid: Mapped[str | None] = mapped_column(String(64), unique=True)
    mobile: Mapped[str | None] = mapped_column(String(20), index=True)
    category: Mapped[MemberCategory] = mapped_column(str_enum(MemberCategory, 20), default=MemberCategory.FULL,
                                                     server_default=MemberCategory.FULL.value)
    post_type: Mapped[PostType | None] = mapped_column(str_enum(PostType, 20))
    # The day the member transferred out (状态 已转出): no memberships, roles or pushes since; history kept.
    left_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="person", cascade="all, delete-orphan")
    roles: Mapped[list[OrgRole]] = relationship(back_populates="person", cascade="all, delete-orphan")
    liaisons: Mapped[list[Liaison]] = relationship(back_populates="person", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<Person {self.id} {self.name}>"

    @property
    def has_left(self) -> bool:
        return self.left_on is not None

    def role_set(self) -> set[Role]:
        return {r.role for r in self.roles}

    def led_organisations(self) -> list[Organisation]:
        """Organisations where this person is 书记, 副书记 or a 委员."""
        return sorted({r.organisation for r in self.roles if r.role.is_committee}, key=lambda o: o.path)

    def is_secretary(self) -> bool:
        return any(r.role.is_committee for r in self.roles)

    def is_liaison(self) -> bool:
        return bool(self.liaisons) or Role.LIAISON in self.role_set()

    def is_admin(self) -> bool:
        return Role.ADMIN in self.role_set()

    def home_branch(self) -> Organisation | None:
        for m in self.memberships:
            if m.kind is MembershipKind.HOME:
                return m.organisation
        return None


class Membership(Base):
    """A person's place in a branch (or group): one home branch, any number of temporary ones."""

    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("person_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    kind: Mapped[MembershipKind] = mapped_column(str_enum(MembershipKind, 20), default=MembershipKind.HOME)

    person: Mapped[Person] = relationship(back_populates="memberships")
    organisation: Mapped[Organisation] = relationship()


def home_memberships():
    """(person_id, organisation_id) of every member counted where they are now: home memberships
    of people who have not left. The one definition the reports' member counts and points per
    member share (季度通报, observation points), so their figures agree."""
    return (select(Membership.person_id, Membership.organisation_id)
            .join(Person, Person.id == Membership.person_id)
            .where(Membership.kind == MembershipKind.HOME, Person.left_on.is_(None)))


class OrgRole(Base):
    __tablename__ = "org_role"
    __table_args__ = (UniqueConstraint("person_id", "organisation_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role, 30))

    person: Mapped[Person] = relationship(back_populates="roles")
    organisation: Mapped[Organisation] = relationship()


class Liaison(Base):
    """A 联络员 assigned to look after an organisation."""

    __tablename__ = "liaison"
    __table_args__ = (UniqueConstraint("person_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)

    person: Mapped[Person] = relationship(back_populates="liaisons")
    organisation: Mapped[Organisation] = relationship()


def people_named(session: Session, name: str) -> list[Person]:
    return list(session.scalars(select(Person).where(Person.name == name).order_by(Person.id)))


def members_under(session: Session, org: Organisation) -> list[Person]:
    """Every person with a membership in `org` or beneath it, each once."""
    stmt = (
        select(Person)
        .join(Membership, Membership.person_id == Person.id)
        .join(Organisation, Organisation.id == Membership.organisation_id)
        .where((Organisation.id == org.id) | Organisation.path.startswith(org.path + "/", autoescape=True))
        .distinct()
        .order_by(Person.id)
    )
    return list(session.scalars(stmt))
