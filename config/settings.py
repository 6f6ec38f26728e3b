"""One typed settings object, read from the environment (and a `.env` file) once."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import date, time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.points_rules import Rules
from config.points_rules import load as load_points_rules

DEFAULT_INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"
WECOM_DEFAULT_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin/"
MP_DEFAULT_API_BASE = "https://api.weixin.qq.com/cgi-bin/"
WECOM_DEFAULT_OAUTH_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"

WECOM_VARS = ("WECOM_CORP_ID", "WECOM_AGENT_ID", "WECOM_SECRET", "WECOM_TOKEN", "WECOM_AES_KEY")
MP_VARS = ("MP_APP_ID", "MP_SECRET", "MP_TOKEN")


class SettingsError(ValueError):
    """The environment describes an impossible configuration; the message names the variable."""


@dataclass(frozen=True)
class WeComSettings:
    corp_id: str
    agent_id: int
    secret: str
    token: str
    aes_key: str
    api_base: str = WECOM_DEFAULT_API_BASE


@dataclass(frozen=True)
class MpSettings:
    app_id: str
    secret: str
    token: str
    aes_key: str | None = None
    api_base: str = MP_DEFAULT_API_BASE


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None = None
    wecom: WeComSettings | None = None
    mp: MpSettings | None = None
    timezone: str = "Asia/Shanghai"
    scheduler_tick_seconds: float = 15.0
    secret_key: str = field(default="", repr=False)
    instance_dir: Path = DEFAULT_INSTANCE_DIR
    # The address people's phones reach the bot at, for every link it sends (no trailing slash).
    public_base_url: str | None = None
    wecom_oauth_url: str = WECOM_DEFAULT_OAUTH_URL
    # Operational knobs with sensible defaults; not part of the fixed interface.
    http_timeout_seconds: float = 5.0
    max_body_bytes: int = 64 * 1024
    max_clock_skew_seconds: int = 300
    outbox_batch_size: int = 200
    wecom_rate_per_minute: int = 1800
    # Every Redis key this instance writes starts with it (the tests give each test its own).
    redis_prefix: str = "zhitong:"
    # Local hours when non-urgent pushes wait for the morning (SPEC §5); "" turns it off.
    quiet_hours: str = "22:00-07:30"
    # Extra public holidays and adjusted working days (SPEC §5), for years the built-in calendar
    # does not cover yet.
    holidays_file: Path | None = None
    # A TOML file that replaces the built-in points rules (SPEC §8); None: the built-in ones.
    points_rules_file: Path | None = None

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"BOT_TIMEZONE 不是有效的时区：{self.timezone}") from exc
        if self.scheduler_tick_seconds <= 0:
            raise SettingsError("SCHEDULER_TICK_SECONDS 必须大于 0")
        parse_quiet_hours(self.quiet_hours)
        if self.public_base_url is not None and not self.public_base_url.startswith(("http://", "https://")):
            raise SettingsError(f"PUBLIC_BASE_URL 应以 http:// 或 https:// 开头，现在是 {self.public_base_url!r}")
        if self.holidays_file is not None:
            read_holidays_file(self.holidays_file)  # a bad file stops start-up, line by line
        if self.points_rules_file is not None:
            try:
                load_points_rules(self.points_rules_file)  # a bad file stops start-up, naming the fault
            except ValueError as exc:
                raise SettingsError(f"POINTS_RULES：{exc}") from None

    @property
    def points_rules(self) -> Rules:
        """The points rules in force for months that open from now on."""
        return load_points_rules(self.points_rules_file)

    @property
    def holidays(self) -> dict[date, bool]:
        """The dates of `HOLIDAYS_FILE` (True: an adjusted working day 班), empty without one."""
        return read_holidays_file(self.holidays_file) if self.holidays_file is not None else {}

    @property
    def quiet_window(self) -> tuple[time, time] | None:
        """(start, end) in local time, or None when quiet hours are off."""
        return parse_quiet_hours(self.quiet_hours)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, *, read_dotenv: bool = True) -> Settings:
        """Build settings from the environment; a `.env` in the working directory is read too."""
        if environ is None:
            if read_dotenv:
                from dotenv import load_dotenv

                load_dotenv(Path.cwd() / ".env", override=False)
            environ = dict(os.environ)
        env = {k: v.strip() for k, v in environ.items() if v is not None and v.strip() != ""}

        instance_dir = Path(env.get("BOT_INSTANCE_DIR", str(DEFAULT_INSTANCE_DIR)))
        database_url = normalise_database_url(env.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'zhitong.sqlite3'}")
        tick = env.get("SCHEDULER_TICK_SECONDS", "15")
        try:
            tick_seconds = float(tick)
        except ValueError as exc:
            raise SettingsError(f"SCHEDULER_TICK_SECONDS 必须是数字，现在是 {tick!r}") from exc

        return cls(
            database_url=database_url,
            redis_url=env.get("REDIS_URL"),
            wecom=_wecom_from_env(env),
            mp=_mp_from_env(env),
            timezone=env.get("BOT_TIMEZONE", "Asia/Shanghai"),
            scheduler_tick_seconds=tick_seconds,
            quiet_hours=env.get("QUIET_HOURS", "22:00-07:30"),
            holidays_file=Path(env["HOLIDAYS_FILE"]) if "HOLIDAYS_FILE" in env else None,
            points_rules_file=Path(env["POINTS_RULES"]) if "POINTS_RULES" in env else None,
            secret_key=env.get("SECRET_KEY") or _instance_secret(instance_dir),
            instance_dir=instance_dir,
            public_base_url=env["PUBLIC_BASE_URL"].rstrip("/") if "PUBLIC_BASE_URL" in env else None,
            wecom_oauth_url=env.get("WECOM_OAUTH_URL", WECOM_DEFAULT_OAUTH_URL),
        )

    def require_public_base_url(self, role: str) -> None:
        """The split roles send links but cannot guess their own address: start-up names it."""
        if (self.wecom is not None or self.mp is not None) and not self.public_base_url:
            raise SettingsError(f"{role} 需要设置 PUBLIC_BASE_URL（手机访问本服务的地址，例如 https://dj.example.cn），"
                                "消息里的页面链接都以它开头")


def parse_quiet_hours(value: str) -> tuple[time, time] | None:
    """`22:00-07:30` → (22:00, 07:30); the window may cross midnight. Empty or `off` → None."""
    text = (value or "").strip().replace("－", "-").replace("：", ":")
    if text.lower() in ("", "off", "none", "关闭"):
        return None
    parts = text.split("-")
    try:
        if len(parts) != 2:
            raise ValueError(text)
        start, end = (time.fromisoformat(p.strip().zfill(5)) for p in parts)
    except ValueError as exc:
        raise SettingsError(
            f"QUIET_HOURS 格式应为 开始-结束（24 小时制），例如 22:00-07:30，现在是 {value!r}") from exc
    if start == end:
        raise SettingsError(f"QUIET_HOURS 的开始和结束不能相同，现在是 {value!r}")
    return start, end


HOLIDAY_KINDS = {"休": False, "班": True}
_HOLIDAY_LINE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})")


def read_holidays_file(path: Path) -> dict[date, bool]:
    """`HOLIDAYS_FILE`: one date a line, `2027-02-06 休` (a day off) or `2027-02-14 班` (an adjusted
    working day); `#` starts a comment; blank lines are skipped. Any bad line refuses the whole
    file, every bad line named by its number."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise SettingsError(f"HOLIDAYS_FILE 指定的文件不存在：{path}") from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(f"HOLIDAYS_FILE（{path}）不是 UTF-8 编码的文本文件") from exc
    except OSError as exc:
        raise SettingsError(f"HOLIDAYS_FILE（{path}）无法读取：{exc.strerror or exc}") from exc
    days: dict[date, bool] = {}
    seen_on: dict[date, int] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.replace("＃", "#").split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        problem = None
        found = _HOLIDAY_LINE.fullmatch(parts[0])
        if len(parts) != 2:
            problem = "应为「日期 休」或「日期 班」，例如「2027-02-06 休」"
        elif found is None:
            problem = f"日期「{parts[0]}」应写作 年-月-日，例如 2027-02-06"
        elif parts[1] not in HOLIDAY_KINDS:
            problem = f"「{parts[1]}」应为「休」（放假）或「班」（调休上班）"
        else:
            try:
                day = date(*map(int, found.groups()))
            except ValueError:
                problem = f"没有这一天：{parts[0]}"
            else:
                working = HOLIDAY_KINDS[parts[1]]
                if day in days and days[day] != working:
                    problem = f"{parts[0]} 与第 {seen_on[day]} 行矛盾（一行写休，一行写班）"
                else:
                    days[day] = working
                    seen_on.setdefault(day, number)
        if problem:
            problems.append(f"第 {number} 行「{raw.strip()}」：{problem}")
    if problems:
        raise SettingsError(f"HOLIDAYS_FILE（{path}）有 {len(problems)} 行无法识别，未采用：\n" + "\n".join(problems))
    return days


def normalise_database_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean the psycopg 3 driver this project installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _require_all(env: dict[str, str], names: tuple[str, ...], channel: str) -> bool:
    present = [n for n in names if n in env]
    if not present:
        return False
    missing = [n for n in names if n not in env]
    if missing:
        raise SettingsError(
            f"{channel} 配置不完整：已设置 {', '.join(present)}，但缺少 {', '.join(missing)}"
        )
    return True


def _wecom_from_env(env: dict[str, str]) -> WeComSettings | None:
    if not _require_all(env, WECOM_VARS, "企业微信"):
        return None
    try:
        agent_id = int(env["WECOM_AGENT_ID"])
    except ValueError as exc:
        raise SettingsError(f"WECOM_AGENT_ID 必须是整数，现在是 {env['WECOM_AGENT_ID']!r}") from exc
    _check_aes_key(env["WECOM_AES_KEY"], "WECOM_AES_KEY")
    return WeComSettings(
        corp_id=env["WECOM_CORP_ID"],
        agent_id=agent_id,
        secret=env["WECOM_SECRET"],
        token=env["WECOM_TOKEN"],
        aes_key=env["WECOM_AES_KEY"],
        api_base=_api_base(env.get("WECOM_API_BASE", WECOM_DEFAULT_API_BASE)),
    )


def _mp_from_env(env: dict[str, str]) -> MpSettings | None:
    if not _require_all(env, MP_VARS, "公众号"):
        if "MP_AES_KEY" in env:
            raise SettingsError("公众号配置不完整：已设置 MP_AES_KEY，但缺少 " + ", ".join(MP_VARS))
        return None
    aes_key = env.get("MP_AES_KEY")
    if aes_key:
        _check_aes_key(aes_key, "MP_AES_KEY")
    return MpSettings(
        app_id=env["MP_APP_ID"],
        secret=env["MP_SECRET"],
        token=env["MP_TOKEN"],
        aes_key=aes_key,
        api_base=_api_base(env.get("MP_API_BASE", MP_DEFAULT_API_BASE)),
    )


def _check_aes_key(key: str, name: str) -> None:
    import base64
    import binascii

    try:
        raw = base64.b64decode(key + "=", validate=True)
    except binascii.Error as exc:
        raise SettingsError(f"{name} 不是有效的 EncodingAESKey（应为 43 位 Base64 字符）") from exc
    if len(key) != 43 or len(raw) != 32:
        raise SettingsError(f"{name} 不是有效的 EncodingAESKey（应为 43 位 Base64 字符）")


def _api_base(value: str) -> str:
    return value if value.endswith("/") else value + "/"


def _instance_secret(instance_dir: Path) -> str:
    """A secret generated once per instance directory, so sessions survive restarts."""
    path = instance_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        instance_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        path.write_text(key)
        path.chmod(0o600)
        return key
