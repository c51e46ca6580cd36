//! Tables: a GitHub table when every cell is a run of text, else (a table laying out a
//! page) each cell's blocks in order.

use dom_query::NodeRef;

use super::element::{Role, role};
use super::{Block, Flavor, Renderer, one_line};

/// The most rows a table shows; the rest are left out (and the output marked truncated).
pub const MAX_ROWS: usize = 5_000;
/// The most columns a table shows.
pub const MAX_COLUMNS: usize = 64;

impl Renderer {
    pub(super) fn table(&mut self, table: &NodeRef<'_>, depth: usize) -> Vec<Block> {
        let rows = rows_of(table);
        let mut out = Vec::new();
        if let Some(caption) = table
            .element_children()
            .into_iter()
            .find(|c| c.node_name().as_deref() == Some("caption"))
        {
            out.extend(self.blocks(&caption, depth + 1));
        }
        if rows.is_empty() {
            return out;
        }
        if lays_out_a_page(&rows) {
            for row in &rows {
                for cell in cells_of(row) {
                    out.extend(self.blocks(&cell, depth + 1));
                }
            }
            return out;
        }
        let grid = self.grid(&rows, depth);
        if !grid.is_empty() {
            out.push(Block::other(self.format(&grid)));
        }
        out
    }

    /// The cells' text, row by row, spans filled with empty cells.
    fn grid(&mut self, rows: &[NodeRef<'_>], depth: usize) -> Vec<Vec<String>> {
        let mut grid: Vec<Vec<String>> = Vec::new();
        // Per column: how many more rows a cell above still spans.
        let mut spanned: Vec<usize> = Vec::new();
        for row in rows.iter().take(MAX_ROWS) {
            if self.spent() {
                break;
            }
            let mut line = Vec::new();
            let mut cells = cells_of(row).into_iter();
            loop {
                let column = line.len();
                if column >= MAX_COLUMNS {
                    break;
                }
                if spanned.get(column).copied().unwrap_or(0) > 0 {
                    spanned[column] -= 1;
                    line.push(String::new());
                    continue;
                }
                let Some(cell) = cells.next() else { break };
                let mut text = String::new();
                self.inline_children(&cell, &mut text, depth + 1);
                let text = one_line(&text);
                let text = match self.flavor {
                    Flavor::Markdown => text.replace('|', "\\|"),
                    Flavor::Text => text,
                };
                let colspan = span(&cell, "colspan", MAX_COLUMNS);
                let rowspan = span(&cell, "rowspan", MAX_ROWS);
                for offset in 0..colspan {
                    let at = column + offset;
                    if at >= MAX_COLUMNS {
                        break;
                    }
                    if spanned.len() <= at {
                        spanned.resize(at + 1, 0);
                    }
                    spanned[at] = rowspan - 1;
                    line.push(if offset == 0 {
                        text.clone()
                    } else {
                        String::new()
                    });
                }
            }
            if line.iter().any(|cell| !cell.is_empty()) {
                grid.push(line);
            }
        }
        if rows.len() > MAX_ROWS {
            self.truncated = true;
        }
        grid
    }

    fn format(&self, grid: &[Vec<String>]) -> String {
        let columns = grid.iter().map(Vec::len).max().unwrap_or(0);
        let mut out = String::new();
        for (index, row) in grid.iter().enumerate() {
            let cells = (0..columns).map(|c| row.get(c).map_or("", String::as_str));
            match self.flavor {
                Flavor::Markdown => {
                    out.push('|');
                    for cell in cells {
                        out.push(' ');
                        out.push_str(cell);
                        out.push_str(" |");
                    }
                    if index == 0 {
                        out.push_str("\n|");
                        out.push_str(&" --- |".repeat(columns));
                    }
                }
                Flavor::Text => out.push_str(&cells.collect::<Vec<_>>().join("\t")),
            }
            out.push('\n');
        }
        out.truncate(out.trim_end().len());
        out
    }
}

/// The table's own rows (not those of tables inside it).
fn rows_of<'a>(table: &NodeRef<'a>) -> Vec<NodeRef<'a>> {
    let mut rows = Vec::new();
    for child in table.element_children() {
        match child.node_name().as_deref() {
            Some("tr") => rows.push(child),
            Some("thead" | "tbody" | "tfoot") => rows.extend(
                child
                    .element_children()
                    .into_iter()
                    .filter(|r| r.node_name().as_deref() == Some("tr")),
            ),
            _ => {}
        }
    }
    rows
}

fn cells_of<'a>(row: &NodeRef<'a>) -> Vec<NodeRef<'a>> {
    row.element_children()
        .into_iter()
        .filter(|c| matches!(c.node_name().as_deref(), Some("td" | "th")))
        .collect()
}

/// A `colspan` or `rowspan` within 1 ..= `max`.
fn span(cell: &NodeRef<'_>, name: &str, max: usize) -> usize {
    cell.attr(name)
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, max)
}

/// Whether the table arranges a page rather than holding data: a single column, or cells
/// holding tables, headings, code or quotes.
fn lays_out_a_page(rows: &[NodeRef<'_>]) -> bool {
    let widest = rows.iter().map(|r| cells_of(r).len()).max().unwrap_or(0);
    widest <= 1
        || rows.iter().flat_map(cells_of).any(|cell| {
            cell.descendants_it().any(|node| {
                node.node_name().is_some_and(|name| {
                    matches!(
                        role(&name),
                        Role::Table | Role::Heading(_) | Role::Code | Role::Quote
                    )
                })
            })
        })
}
