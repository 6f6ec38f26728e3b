"""The Chinese summary of an import that the command line prints (the same for `--dry-run`)."""

from __future__ import annotations

from bot.roster.report import ImportReport, PersonLine

SHOWN = 200  # at most this many entries per list; moves are always listed in full


def _who(person: PersonLine) -> str:
    return f"{person.name}（{person.wecom_userid}）" if person.wecom_userid else person.name


def _more(total: int, shown: int = SHOWN) -> list[str]:
    return [f"……另有 {total - shown} 项"] if total > shown else []


def _section(title: str, entries: list[str], *, limit: int | None = SHOWN) -> list[str]:
    if not entries:
        return []
    shown = entries if limit is None else entries[:limit]
    return [f"{title}（{len(entries)}）：", *(f"· {e}" for e in shown), *_more(len(entries), len(shown))]


def _signed(detail: str) -> str:
    sign, rest = detail[0], detail[1:]
    return {"+": "新增 ", "-": "移除 ", "~": "改为 "}[sign] + rest


def render_report(report: ImportReport) -> str:
    """Counts first, then every change by name, then who cannot be reached and what was ignored."""
    prefix = "试运行，未写入任何数据。如果导入，将会：" if report.dry_run else ""
    if report.changed:
        verb = "" if report.dry_run else "导入完成："
        lines = [
            f"{prefix}{verb}共 {report.rows} 行，{report.people_in_file} 人；"
            f"组织 新增 {report.organisations_created}；"
            f"人员 新增 {report.people_created}，更新 {report.people_updated}，未变 {report.people_unchanged}；"
            f"组织关系 新增 {report.memberships_added}，变更 {report.memberships_changed}，"
            f"移除 {report.memberships_removed}；"
            f"职务 新增 {report.roles_added}，撤销 {report.roles_removed}；"
            f"联系组织 新增 {report.liaisons_added}，移除 {report.liaisons_removed}。"
        ]
    else:
        lines = [f"{'试运行：' if report.dry_run else ''}名册与系统一致，没有变化"
                 f"（共 {report.rows} 行，{report.people_in_file} 人）。"]
    if report.under:
        lines.append(f"组织路径均相对于「{report.under}」。")
    lines += [f"「{name}」按名称对应到已有的「{path}」。" for name, path in report.matched]
    lines += _section("新增组织", report.organisations_added)
    lines += _section("新增人员", [f"{_who(p)}：{p.detail}" if p.detail else _who(p) for p in report.people_added])
    lines += _section("调动", [f"{m.name}{f'（{m.userid}）' if m.userid else ''}：{m.from_path} → {m.to_path}"
                             for m in report.moves], limit=None)
    lines += _section("信息变更", [f"{_who(p)}：{p.detail}" for p in report.people_changed])
    lines += _section("组织关系变更", [f"{_who(p)}：{_signed(p.detail)}" for p in report.memberships])
    lines += _section("职务变更", [f"{_who(p)}：{_signed(p.detail)}" for p in report.roles])
    lines += _section("联系组织变更", [f"{_who(p)}：{_signed(p.detail)}" for p in report.liaisons])
    lines += _section("转出（不再推送，历史记录保留）", [_who(p) for p in report.left])
    lines += _section("重新在册", [_who(p) for p in report.returned])
    if report.unreachable:
        lines.append(f"以下 {len(report.unreachable)} 人没有企业微信账号，暂时收不到任何消息：")
        lines += [f"· {p.name}（{p.detail}）" if p.detail else f"· {p.name}" for p in report.unreachable[:SHOWN]]
        lines += _more(len(report.unreachable))
        lines.append("  请在名册中补填其「企业微信账号」后重新导入；没有企业微信的，由所在组织的书记向机器人发送"
                     "「绑定码 姓名」，把验证码当面交给本人，本人关注公众号后回复「绑定 验证码」即可。")
    if report.ignored_columns:
        lines.append(f"已忽略无法识别的列：{'、'.join(report.ignored_columns)}")
    for header, column in report.column_hints:
        lines.append(f"注意：「{header}」列没有读取。如果它就是「{column}」，请把表头改为「{column}」后重新导入。")
    if report.footer_rows:
        lines.append(f"已跳过表尾说明行：第 {'、'.join(map(str, report.footer_rows))} 行。")
    if report.not_in_file:
        lines.append(f"以下 {len(report.not_in_file)} 人不在本次名册中，未删除：")
        for person in report.not_in_file[:SHOWN]:
            lines.append(f"· {person.name}（{person.wecom_userid or '无企业微信账号'}）")
        if len(report.not_in_file) > SHOWN:
            lines.append(f"……另有 {len(report.not_in_file) - SHOWN} 人")
        lines.append("  如已转出，请在名册「状态」列填「已转出」，或运行 python -m bot member leave 姓名。")
    return "\n".join(lines)
