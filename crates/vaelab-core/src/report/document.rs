//! The report as one document model: headings, paragraphs, notes, lists, tables, figures
//! and galleries. Its text is written once, by `render`, and turned into Markdown and
//! HTML by the two writers beside this file.
use std::path::PathBuf;

use super::figures::Figure;

/// A report page.
#[derive(Debug, Clone, Default)]
pub(super) struct Document {
    pub title: String,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone)]
pub(super) enum Block {
    Heading {
        level: u8,
        text: String,
    },
    Paragraph {
        text: String,
        style: ParagraphStyle,
    },
    /// A call-out the reader must not miss, e.g. runs left out of the comparison.
    Note {
        id: &'static str,
        label: &'static str,
        text: String,
    },
    List {
        items: Vec<String>,
    },
    Table(Table),
    Figure {
        figure: Figure,
        style: FigureStyle,
    },
    /// Pictures side by side, one per variant.
    Gallery {
        /// What every picture shows, for alternative text.
        subject: String,
        cells: Vec<GalleryCell>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ParagraphStyle {
    Body,
    /// Small print: when and by what the report was made.
    Meta,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FigureStyle {
    /// A figure with its own heading, caption and SVG link.
    Titled,
    /// One of a series (a run's curves): the title is the caption.
    Compact,
}

/// One picture of a gallery, copied into the report at `path`.
#[derive(Debug, Clone)]
pub(super) struct GalleryCell {
    /// The variant it belongs to.
    pub label: String,
    /// What distinguishes it, e.g. `seed 0` or `epoch 3, seed 0`.
    pub note: String,
    /// Relative to the report directory.
    pub path: PathBuf,
    pub png: Vec<u8>,
}

/// A table: what the CSV files, the Markdown and the HTML are all written from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Table {
    /// The HTML element id (`comparison`, `differences`, `runs`).
    pub id: &'static str,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn new(
        id: &'static str,
        header: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            id,
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// RFC 4180 CSV with a header line.
    pub(super) fn to_csv(&self) -> Vec<u8> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        // Writing into memory cannot fail, and every row has the header's width.
        let _ = writer.write_record(&self.header);
        for row in &self.rows {
            let _ = writer.write_record(row);
        }
        writer.into_inner().unwrap_or_default()
    }
}

impl Document {
    pub(super) fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    pub(super) fn heading(&mut self, level: u8, text: impl Into<String>) {
        self.blocks.push(Block::Heading {
            level,
            text: text.into(),
        });
    }

    pub(super) fn paragraph(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Paragraph {
            text: text.into(),
            style: ParagraphStyle::Body,
        });
    }

    pub(super) fn push(&mut self, block: Block) {
        self.blocks.push(block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut table = Table::new("t", ["a", "b"]);
        table.rows.push(vec!["x,y".into(), "1".into()]);
        assert_eq!(
            String::from_utf8(table.to_csv()).unwrap(),
            "a,b\n\"x,y\",1\n"
        );
    }
}
