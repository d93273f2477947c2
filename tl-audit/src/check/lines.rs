//! Reading the input one bounded line at a time, as text.
//!
//! A line is never buffered past the limit (a log that is one huge line, or
//! a binary file without newlines, cannot exhaust memory); `\n` and `\r\n`
//! both end a line; a byte-order mark opening the input is skipped; a line
//! that is not UTF-8 is an error naming the offset of its first bad byte.

use std::io::{self, BufRead};

use super::error::CheckError;

/// Reads the lines of an input, numbering them from 1.
pub(super) struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    limit: usize,
    /// Lines read so far, blank ones included.
    read: usize,
}

impl<R: BufRead> Lines<R> {
    pub(super) fn new(input: R, limit: usize) -> Self {
        Self {
            input,
            buf: Vec::new(),
            limit,
            read: 0,
        }
    }

    /// Lines read so far, blank ones included.
    pub(super) fn count(&self) -> usize {
        self.read
    }

    /// The next line's number and text (without its line ending), or
    /// `Ok(None)` at the end of the input.
    pub(super) fn next_line(&mut self) -> Result<Option<(usize, &str)>, CheckError> {
        let line = self.read + 1;
        self.buf.clear();
        match read_line(&mut self.input, &mut self.buf, self.limit) {
            Ok(Line::Eof) => return Ok(None),
            Ok(Line::TooLong) => {
                return Err(CheckError::LineTooLong {
                    line,
                    limit: self.limit,
                });
            }
            Ok(Line::Read) => {}
            Err(source) => return Err(CheckError::Read { line, source }),
        }
        self.read = line;
        let mut bytes = self.buf.as_slice();
        if line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let text = core::str::from_utf8(bytes).map_err(|e| CheckError::NotUtf8 {
            line,
            offset: e.valid_up_to(),
        })?;
        Ok(Some((line, text)))
    }
}

enum Line {
    Read,
    TooLong,
    Eof,
}

/// Reads one line (without its `\n` or `\r\n`) into `buf`, refusing to
/// buffer more than `limit` bytes.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> io::Result<Line> {
    let mut read_any = false;
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        read_any = true;
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if buf.len() + chunk.len() > limit {
            return Ok(Line::TooLong);
        }
        buf.extend_from_slice(chunk);
        let used = done.unwrap_or(chunk.len());
        input.consume(used);
        if done.is_some() {
            break;
        }
    }
    if !read_any {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Line::Read)
}
