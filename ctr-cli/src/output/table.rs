//! The one table writer: columns padded to their widest cell plus three
//! spaces, as docker's tabwriter does; the last column is not padded.

use std::io::Write;

/// Column gap, as docker's tabwriter pads.
const GAP: usize = 3;

/// Rows of any number of cells (a `table` template's lines, split at
/// tabs); a column is as wide as its widest cell among the rows that have
/// a cell after it.
pub fn write_rows(out: &mut impl Write, rows: &[impl AsRef<[String]>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        let row = row.as_ref();
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in rows {
        let row = row.as_ref();
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count() + GAP));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_all_but_the_last_column() {
        let rows = [["A", "BB", "C"].map(String::from), ["long", "x", "é"].map(String::from)];
        let mut out = Vec::new();
        write_rows(&mut out, &rows).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A      BB   C\nlong   x    é\n");
    }

    #[test]
    fn rows_may_differ_in_length() {
        let rows = [vec!["ID".to_owned(), "NAME".to_owned()], vec!["abcdef".to_owned()]];
        let mut out = Vec::new();
        write_rows(&mut out, &rows).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "ID   NAME\nabcdef\n");
    }
}
