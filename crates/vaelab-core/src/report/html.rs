//! Writes a [`Document`] as one self-contained HTML page (`index.html`): every figure and
//! picture inlined as a data URI, no script, font or style from outside.
use std::fmt::Write as _;

use base64::Engine as _;

use super::document::{Block, Document, FigureStyle, ParagraphStyle, Table};
use super::figures::Figure;

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1320px;padding:0 1rem;color:#1a1a1a;line-height:1.45}\
h1{margin-bottom:.2rem}h2{margin-top:2.4rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}\
table{border-collapse:collapse;margin:1rem 0;font-size:.88rem;display:block;overflow-x:auto}\
th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:right;white-space:nowrap}\
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}\
figure{margin:1.2rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{font-size:.85rem;color:#555}.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.6rem 1rem}\
.readings li{margin:.3rem 0}.cells{display:flex;flex-wrap:wrap;gap:1rem}\
.cell{text-align:center;font-size:.85rem}.cell img{image-rendering:pixelated;width:100%;min-width:180px;max-width:420px}\
.meta{color:#666;font-size:.85rem}";

pub(super) fn render(document: &Document) -> String {
    let title = escape(&document.title);
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title} — vaelab report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    for block in &document.blocks {
        block_html(&mut out, block);
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn block_html(out: &mut String, block: &Block) {
    match block {
        Block::Heading { level, text } => {
            let _ = writeln!(out, "<h{level}>{}</h{level}>", escape(text));
        }
        Block::Paragraph { text, style } => {
            let class = match style {
                ParagraphStyle::Body => "",
                ParagraphStyle::Meta => " class=\"meta\"",
            };
            let _ = writeln!(out, "<p{class}>{}</p>", escape(text));
        }
        Block::Note { id, label, text } => {
            let _ = writeln!(
                out,
                "<p class=\"note\" id=\"{id}\"><strong>{label}:</strong> {}</p>",
                escape(text)
            );
        }
        Block::List { items } => {
            out.push_str("<ul class=\"readings\">\n");
            for item in items {
                let _ = writeln!(out, "<li>{}</li>", escape(item));
            }
            out.push_str("</ul>\n");
        }
        Block::Table(table) => out.push_str(&table_html(table)),
        Block::Figure { figure, style } => out.push_str(&figure_html(figure, *style)),
        Block::Gallery { subject, cells } => {
            out.push_str("<div class=\"cells\">\n");
            for cell in cells {
                let label = escape(&cell.label);
                let _ = writeln!(
                    out,
                    "<figure class=\"cell\"><img src=\"{}\" alt=\"{label} {}\"><figcaption><strong>{label}</strong> ({})</figcaption></figure>",
                    data_uri(&cell.png),
                    escape(subject),
                    escape(&cell.note)
                );
            }
            out.push_str("</div>\n");
        }
    }
}

pub(super) fn table_html(table: &Table) -> String {
    let mut out = format!("<table id=\"{}\">\n<thead><tr>", table.id);
    for h in &table.header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for c in row {
            let _ = write!(out, "<td>{}</td>", escape(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    out
}

/// A figure inlined as PNG, with its caption and a link to its SVG.
fn figure_html(figure: &Figure, style: FigureStyle) -> String {
    let heading = match style {
        FigureStyle::Titled => format!("<strong>{}.</strong>", escape(&figure.title)),
        FigureStyle::Compact => escape(&figure.title),
    };
    format!(
        "<figure id=\"{}\"><img src=\"{}\" alt=\"{}\"><figcaption>{heading} {} <a href=\"figures/{}.svg\">SVG</a></figcaption></figure>\n",
        figure.name,
        data_uri(&figure.png),
        escape(&figure.title),
        escape(&figure.caption),
        figure.name
    )
}

fn data_uri(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
