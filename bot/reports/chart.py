"""The portrait as an SVG bar chart, drawn on the server (no script, no library): one bar per
feature in chart order, the baseline as one stepped line (each feature may have its own), bars
below it marked, and the three furthest below named under the title."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from bot.reports.portrait import Portrait
from bot.texts.portrait import furthest_words, score_text

FONTS = ("PingFang SC, Hiragino Sans GB, Microsoft YaHei, Noto Sans CJK SC, Source Han Sans SC, "
         "WenQuanYi Micro Hei, sans-serif")
WIDTH, HEIGHT = 360, 300
LEFT, RIGHT, TOP, PLOT = 28, 8, 64, 160  # plot area: x from LEFT to WIDTH − RIGHT, y from TOP, PLOT tall
BAR = 26
COLOURS = {"ok": "#2e7d32", "below": "#c62828", "unset": "#9e9e9e"}


def _y(score: int) -> float:
    return TOP + PLOT * (1 - score / 100)


def portrait_svg(portrait: Portrait) -> str:
    """The chart as a standalone SVG document (UTF-8 text)."""
    slot = (WIDTH - LEFT - RIGHT) / len(portrait.features)
    furthest = {f.name for f in portrait.furthest}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'font-family={quoteattr(FONTS)} role="img">',
        f'<title>{escape(portrait.org.name)} 画像</title>',
        f'<text class="title" x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">'
        f'{escape(portrait.org.name)} 画像</text>',
        f'<text class="furthest" x="{WIDTH / 2}" y="40" text-anchor="middle" font-size="10" fill="#c62828">'
        f'距基线最远：{escape(furthest_words(portrait))}</text>',
    ]
    for tick in (0, 50, 100):
        parts.append(f'<text x="{LEFT - 4}" y="{_y(tick) + 3:.1f}" text-anchor="end" font-size="9" fill="#666">'
                     f'{tick}</text>')
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_y(tick):.1f}" y2="{_y(tick):.1f}" '
                     f'stroke="#e0e0e0" stroke-width="1"/>')
    steps = []
    for i, feature in enumerate(portrait.features):
        x0 = LEFT + i * slot
        cx = x0 + slot / 2
        state = "unset" if feature.score is None else ("below" if feature.below else "ok")
        height = 0 if feature.score is None else PLOT * feature.score / 100
        classes = "feature" + ("" if state == "ok" else f" {state}") + (" furthest" if feature.name in furthest else "")
        parts.append(
            f'<rect class="{classes}" data-feature={quoteattr(feature.name)} data-score="{score_text(feature)}" '
            f'data-baseline="{feature.baseline}" x="{cx - BAR / 2:.1f}" y="{TOP + PLOT - height:.1f}" width="{BAR}" '
            f'height="{height:.1f}" fill="{COLOURS[state]}"/>')
        label_y = TOP + PLOT - height - 4
        parts.append(f'<text x="{cx:.1f}" y="{label_y:.1f}" text-anchor="middle" font-size="10">'
                     f'{score_text(feature)}{" ▼" if feature.name in furthest else ""}</text>')
        for line, text in enumerate((feature.name[:2], feature.name[2:])):
            parts.append(f'<text x="{cx:.1f}" y="{TOP + PLOT + 14 + 12 * line}" text-anchor="middle" font-size="11">'
                         f'{escape(text)}</text>')
        y = _y(feature.baseline)
        steps.append(f"{'M' if i == 0 else 'L'}{x0:.1f},{y:.1f} L{x0 + slot:.1f},{y:.1f}")
    parts.append(f'<path class="baseline" d="{" ".join(steps)}" fill="none" stroke="#ef6c00" stroke-width="2" '
                 f'stroke-dasharray="5,3"/>')
    legend_y = HEIGHT - 22
    parts += [
        f'<line x1="{LEFT}" x2="{LEFT + 22}" y1="{legend_y}" y2="{legend_y}" stroke="#ef6c00" stroke-width="2" '
        f'stroke-dasharray="5,3"/>',
        f'<text x="{LEFT + 26}" y="{legend_y + 4}" font-size="10">基线</text>',
        f'<rect x="{LEFT + 64}" y="{legend_y - 5}" width="10" height="10" fill="{COLOURS["below"]}"/>',
        f'<text x="{LEFT + 78}" y="{legend_y + 4}" font-size="10">低于基线（▼ 距基线最远）</text>',
        f'<rect x="{LEFT + 210}" y="{legend_y - 5}" width="10" height="10" fill="{COLOURS["unset"]}"/>',
        f'<text x="{LEFT + 224}" y="{legend_y + 4}" font-size="10">未评分</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
