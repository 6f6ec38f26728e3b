"""The portrait page (/m/portrait/<org>): the chart, each score with where it came from, the
guidance, the formulas, and for liaisons (and the committee above) a form to score the features
the records cannot give. Reads through the chat's access functions (bot.access)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request

from bot import access
from bot.web.auth import signed_in
from bot.web.pages import _context, _forbidden, _globals, _not_found, check_csrf
from models.org import Organisation

bp = Blueprint("portrait", __name__, url_prefix="/m", template_folder="templates")
# The same CSRF check, template globals and refusal pages as the other pages.
bp.before_request(check_csrf)
bp.context_processor(_globals)
bp.register_error_handler(403, _forbidden)
bp.register_error_handler(404, _not_found)


def _organisation(ctx, org_id: int) -> Organisation:
    org = ctx.session.get(Organisation, org_id)
    if org is None:
        abort(404, description="没有这个组织。")
    if not access.may_view_portrait(ctx.person, org):
        abort(403, description=f"您无权查看「{org.name}」的画像：只有该组织及上级组织的书记、副书记、支委和它的联络员可以查看。")
    return org


@bp.get("/portrait/<int:org_id>")
@signed_in
def portrait_page(org_id: int):
    from bot.reports.chart import portrait_svg
    from bot.reports.portrait import FAR_BELOW, portrait
    from bot.texts import portrait as words
    from models.portrait import SETTABLE

    with _context() as ctx:
        org = _organisation(ctx, org_id)
        found = portrait(ctx.session, org, now=ctx.now, tz=ctx.settings.tz)
        tz = ctx.settings.tz
        rows = [(f, words.score_text(f), words.basis(f, tz)) for f in found.features]
        return render_template("portrait.html", org=org, portrait=found, svg=portrait_svg(found), rows=rows,
                               furthest=words.furthest_words(found), guidance=words.guidance_line(found),
                               formulas=words.FORMULAS, settable=SETTABLE, far_below=FAR_BELOW,
                               may_set=access.may_set_portrait(ctx.person, org), now=ctx.now)


@bp.get("/portrait/<int:org_id>/chart.svg")
@signed_in
def portrait_chart(org_id: int):
    from bot.reports.chart import portrait_svg
    from bot.reports.portrait import portrait

    with _context() as ctx:
        org = _organisation(ctx, org_id)
        svg = portrait_svg(portrait(ctx.session, org, now=ctx.now, tz=ctx.settings.tz))
    return Response(svg, mimetype="image/svg+xml")


@bp.post("/portrait/<int:org_id>")
@signed_in
def set_portrait(org_id: int):
    from bot.texts.portrait import score_refusal
    from models.portrait import ScoreError, set_score

    feature, score = request.form.get("feature", "")[:20], request.form.get("score", "")[:10]
    with _context(write=True) as ctx:
        org = _organisation(ctx, org_id)
        if not access.may_set_portrait(ctx.person, org):
            abort(403, description=f"只有「{org.name}」的联络员和上级党委可以为它评分。")
        try:
            result = set_score(ctx.session, org, feature, score, at=ctx.now, actor_id=ctx.person.id)
        except ScoreError as exc:
            ctx.session.rollback()
            flash(score_refusal(exc, feature, score), "error")
        else:
            flash(f"已将「{org.name}」的「{result.feature}」评为 {result.score} 分")
    return redirect(f"/m/portrait/{org_id}")
