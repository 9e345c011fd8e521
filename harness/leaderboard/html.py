"""Render the document model as one self-contained HTML file: inline CSS, inline sorting script and
images embedded as data URIs, so the page opens offline from anywhere. Every string is escaped."""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping, Sequence

from harness.leaderboard.doc import (
    Banner,
    Block,
    Bullets,
    Code,
    Figure,
    Heading,
    Img,
    Inline,
    Link,
    Para,
    Strong,
    Table,
    as_inlines,
    cell_of,
)
from harness.leaderboard.markdown import one_line

__all__ = ["render_html"]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1400px;padding:1rem 2rem;
color:#1b1f24;line-height:1.45}
h1{border-bottom:2px solid #d0d7de;padding-bottom:.3rem}h2{margin-top:2.2rem;border-bottom:1px solid #d0d7de}
.banner{background:#fff4e5;border-left:6px solid #d97706;padding:.6rem 1rem;font-weight:600}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #d0d7de;padding:.3rem .55rem;vertical-align:top}
th{background:#f6f8fa;text-align:left;white-space:nowrap}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:hover{background:#eaeef2}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody tr:nth-child(even){background:#fafbfc}
code{background:#f0f2f4;padding:0 .25rem;border-radius:3px;font-size:.9em}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #d0d7de}figcaption{color:#57606a;font-size:.9rem}
td img{max-width:160px;display:block}.scroll{overflow-x:auto;max-width:100%}
"""

# Click (or Enter on) a header to sort by that column; numbers sort by the cell's data-sort value.
SCRIPT = """
(function(){
  function key(td){
    if(!td) return {n:null,s:""};
    var raw=td.getAttribute("data-sort"); var s=raw!==null?raw:td.textContent.trim();
    var n=parseFloat(s); return {n:(s!==""&&isFinite(n)&&String(n)!=="NaN"&&/^[-+0-9.eE]+$/.test(s))?n:null,s:s};
  }
  function sortTable(table,col){
    var th=table.tHead.rows[0].cells[col];
    var asc=th.getAttribute("aria-sort")!=="ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(c){c.removeAttribute("aria-sort");});
    th.setAttribute("aria-sort",asc?"ascending":"descending");
    var body=table.tBodies[0]; var rows=Array.prototype.slice.call(body.rows);
    rows.forEach(function(r,i){r._i=i;});
    rows.sort(function(a,b){
      var x=key(a.cells[col]),y=key(b.cells[col]),d;
      if(x.n===null&&y.n!==null) return 1; if(y.n===null&&x.n!==null) return -1;
      if(x.n!==null) d=x.n-y.n; else d=x.s.localeCompare(y.s);
      return (asc?d:-d)||a._i-b._i;
    });
    rows.forEach(function(r){body.appendChild(r);});
  }
  document.querySelectorAll("table.sortable").forEach(function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,col){
      th.tabIndex=0; th.title="sort by this column";
      th.addEventListener("click",function(){sortTable(table,col);});
      th.addEventListener("keydown",function(e){if(e.key==="Enter"){sortTable(table,col);}});
    });
  });
})();
"""


# No network, and only the page's own script may run: even if some text escaped the escaping, an
# injected <script> or onerror= attribute would be blocked by the browser.
CSP = ("default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'; script-src 'sha256-"
       + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode() + "'")


def _e(text: object) -> str:
    return html.escape(one_line(text), quote=True)


class _Renderer:
    def __init__(self, assets: Mapping[str, bytes]):
        self.assets = assets

    def src(self, path: str) -> str:
        data = self.assets.get(path)
        if data is None:
            return html.escape(path, quote=True)
        return "data:image/png;base64," + base64.b64encode(data).decode("ascii")

    def inline(self, item: Inline) -> str:
        if isinstance(item, str):
            return _e(item)
        if isinstance(item, Code):
            return f"<code>{_e(item.text)}</code>"
        if isinstance(item, Strong):
            return f"<strong>{_e(item.text)}</strong>"
        if isinstance(item, Link):
            return f'<a href="{html.escape(item.href, quote=True)}">{_e(item.text)}</a>'
        if isinstance(item, Img):
            width = f' width="{int(item.width)}"' if item.width else ""
            return (f'<a href="{html.escape(item.src, quote=True)}"><img src="{self.src(item.src)}" '
                    f'alt="{_e(item.alt)}"{width}></a>')
        raise TypeError(f"not an inline: {item!r}")

    def inlines(self, content) -> str:
        return "".join(self.inline(i) for i in as_inlines(content))

    def table(self, table: Table) -> str:
        ident = f' id="table-{html.escape(table.name, quote=True)}"' if table.name else ""
        head = "".join(f"<th scope=\"col\">{_e(h)}</th>" for h in table.headers)
        body = []
        for row in table.rows:
            cells = []
            for i, value in enumerate(row):
                cell = cell_of(value)
                attrs = ' class="num"' if i in table.numeric else ""
                if cell.sort is not None:
                    attrs += f' data-sort="{html.escape(str(cell.sort), quote=True)}"'
                cells.append(f"<td{attrs}>{self.inlines(cell.content)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        return (f'<div class="scroll"><table class="sortable"{ident}><thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(body)}</tbody></table></div>")

    def block(self, block: Block) -> str:
        if isinstance(block, Banner):
            return f'<p class="banner" role="note">{_e(block.text)}</p>'
        if isinstance(block, Heading):
            level = min(max(int(block.level), 1), 6)
            anchor = f' id="{html.escape(block.anchor, quote=True)}"' if block.anchor else ""
            return f"<h{level}{anchor}>{_e(block.text)}</h{level}>"
        if isinstance(block, Para):
            return f"<p>{self.inlines(block.content)}</p>"
        if isinstance(block, Bullets):
            return "<ul>" + "".join(f"<li>{self.inlines(item)}</li>" for item in block.items) + "</ul>"
        if isinstance(block, Table):
            return self.table(block)
        if isinstance(block, Figure):
            caption = f"<figcaption>{_e(block.caption)}</figcaption>" if block.caption else ""
            return f'<figure><img src="{self.src(block.src)}" alt="{_e(block.alt)}">{caption}</figure>'
        raise TypeError(f"not a block: {block!r}")


def render_html(blocks: Sequence[Block], assets: Mapping[str, bytes], title: str = "Chart-QA leaderboard") -> str:
    r = _Renderer(assets)
    body = "\n".join(r.block(b) for b in blocks)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n"
        f"<script>{SCRIPT}</script>\n</body></html>\n"
    )
