//! The report as a small document: headings, paragraphs, lists, tables, commands and figures.
//! [`super::report`] builds one from a `PlanReport`; [`super::markdown`] and [`super::html`]
//! print it, so both say the same thing.

/// A run of text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inline {
    Text(String),
    Strong(String),
    Code(String),
}

pub(crate) type Line = Vec<Inline>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
    /// Left, and given room in HTML (a column of sentences).
    Wide,
}

/// How a cell reads: plainly, or as a pass or a failure (coloured in HTML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    Plain,
    Pass,
    Fail,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell {
    pub text: String,
    pub tone: Tone,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    /// Column headings, each with its alignment.
    pub head: Vec<(String, Align)>,
    pub rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    /// Level 1 to 3.
    Heading(u8, String),
    Para(Line),
    List(Vec<Line>),
    Table(Table),
    /// A shell command, shown as is.
    Command(String),
    /// A chart by file name, with its title and a sentence on how to read it.
    Figure {
        file: &'static str,
        title: String,
        caption: String,
    },
}

/// Plain text.
pub(crate) fn t(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

/// Bold text.
pub(crate) fn b(s: impl Into<String>) -> Inline {
    Inline::Strong(s.into())
}

/// Code (a file, a commit, a hash).
pub(crate) fn code(s: impl Into<String>) -> Inline {
    Inline::Code(s.into())
}

/// A paragraph of plain text.
pub(crate) fn para(s: impl Into<String>) -> Block {
    Block::Para(vec![t(s)])
}

/// A plain cell.
pub(crate) fn cell(s: impl Into<String>) -> Cell {
    Cell {
        text: s.into(),
        tone: Tone::Plain,
    }
}

impl Table {
    pub(crate) fn new(head: &[(&str, Align)]) -> Self {
        Table {
            head: head.iter().map(|(h, a)| ((*h).to_string(), *a)).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }
}
