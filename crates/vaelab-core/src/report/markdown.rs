//! Writes a [`Document`] as Markdown (`report.md`): figures and pictures by relative link.
use std::fmt::Write as _;

use super::document::{Block, Document, FigureStyle, Table};

pub(super) fn render(document: &Document) -> String {
    let mut out = format!("# {}\n\n", document.title);
    for block in &document.blocks {
        block_markdown(&mut out, block);
    }
    out
}

fn block_markdown(out: &mut String, block: &Block) {
    match block {
        Block::Heading { level, text } => {
            let _ = writeln!(out, "{} {text}\n", "#".repeat(usize::from(*level)));
        }
        Block::Paragraph { text, .. } => {
            let _ = writeln!(out, "{text}\n");
        }
        Block::Note { label, text, .. } => {
            let _ = writeln!(out, "> **{label}:** {text}\n");
        }
        Block::List { items } => {
            for item in items {
                let _ = writeln!(out, "- {item}");
            }
            out.push('\n');
        }
        Block::Table(table) => {
            out.push_str(&table_markdown(table));
            out.push('\n');
        }
        Block::Figure { figure, style } => {
            let (name, title) = (&figure.name, &figure.title);
            match style {
                FigureStyle::Titled => {
                    let _ = writeln!(
                        out,
                        "### {title}\n\n![{title}](figures/{name}.png)\n\n{} ([SVG](figures/{name}.svg))\n",
                        figure.caption
                    );
                }
                FigureStyle::Compact => {
                    let _ = writeln!(out, "![{title}](figures/{name}.png)\n");
                }
            }
        }
        Block::Gallery { cells, .. } => {
            for cell in cells {
                let _ = writeln!(
                    out,
                    "**{}** ({})\n\n![{}]({})\n",
                    cell.label,
                    cell.note,
                    cell.label,
                    cell.path.display()
                );
            }
        }
    }
}

/// A pipe table; pipes inside cells are escaped.
pub(super) fn table_markdown(table: &Table) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let join = |cells: &[String]| {
        cells
            .iter()
            .map(|c| cell(c))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let mut out = format!(
        "| {} |\n|{}\n",
        join(&table.header),
        "---|".repeat(table.header.len())
    );
    for row in &table.rows {
        let _ = writeln!(out, "| {} |", join(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_tables_escape_pipes() {
        let mut table = Table::new("t", ["a", "b"]);
        table.rows.push(vec!["x|y".into(), "1".into()]);
        assert_eq!(
            table_markdown(&table),
            "| a | b |\n|---|---|\n| x\\|y | 1 |\n"
        );
    }
}
