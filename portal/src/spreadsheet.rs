//! CSV downloads that open safely in a spreadsheet: formula-looking cells neutralised, the
//! right headers, and large files streamed a page at a time.

use std::borrow::Cow;
use std::future::Future;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::PortalError;

/// A cell starting with `=`, `+`, `-` or `@` (or a tab or carriage return, which some
/// spreadsheets skip before reading one of those) would be run as a formula when the file is
/// opened: prefix it with `'` so it reads as text. Only for text; numbers we write ourselves
/// go out as they are.
pub fn safe_cell(text: &str) -> Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{text}")),
        _ => Cow::Borrowed(text),
    }
}

/// A cell of text from people (names, emails, codes), neutralised.
pub fn text(value: impl AsRef<str>) -> String {
    safe_cell(value.as_ref()).into_owned()
}

/// Rows written as CSV into memory, taken out a chunk at a time.
pub struct CsvChunk {
    writer: csv::Writer<Vec<u8>>,
}

impl CsvChunk {
    pub fn new() -> Self {
        Self {
            writer: Self::writer(),
        }
    }

    fn writer() -> csv::Writer<Vec<u8>> {
        csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new())
    }

    /// One record, written as given: pass text from people through [`text`].
    pub fn plain<I, T>(&mut self, cells: I) -> &mut Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.writer
            .write_record(cells)
            .expect("writing CSV into memory cannot fail");
        self
    }

    pub fn take(&mut self) -> Bytes {
        let writer = std::mem::replace(&mut self.writer, Self::writer());
        Bytes::from(
            writer
                .into_inner()
                .expect("flushing into memory cannot fail"),
        )
    }
}

impl Default for CsvChunk {
    fn default() -> Self {
        Self::new()
    }
}

/// A CSV download named `filename`.
pub fn download(filename: &str, body: Body) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A body produced page by page: `next_page(cursor)` returns the CSV of one page and the
/// cursor of the next, or `None` when done. Memory stays one page however large the file;
/// a failure part-way ends the download early (logged), since the status is already sent.
pub fn paged_body<C, F, Fut>(first: Bytes, next_page: F) -> Body
where
    C: Send + 'static,
    F: Fn(Option<C>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Bytes, Option<C>), PortalError>> + Send + 'static,
{
    enum State<C> {
        Header,
        Page(Option<C>),
        Done,
    }
    let stream = futures_util::stream::unfold(
        (State::Header, first, next_page),
        |(state, first, next_page)| async move {
            match state {
                State::Header => {
                    let chunk = first.clone();
                    Some((Ok(chunk), (State::Page(None), first, next_page)))
                }
                State::Page(cursor) => match next_page(cursor).await {
                    Ok((chunk, Some(next))) => {
                        Some((Ok(chunk), (State::Page(Some(next)), first, next_page)))
                    }
                    Ok((chunk, None)) => Some((Ok(chunk), (State::Done, first, next_page))),
                    Err(e) => {
                        tracing::error!(error = %e, "a CSV export failed part-way");
                        Some((Err(e), (State::Done, first, next_page)))
                    }
                },
                State::Done => None,
            }
        },
    );
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_cells_are_neutralised_and_others_kept() {
        for risky in ["=SUM(A1:A9)", "+1", "-2+3", "@cmd", "\t=1", "\r=1"] {
            assert_eq!(safe_cell(risky), format!("'{risky}"), "{risky:?}");
        }
        for plain in [
            "Ada Lovelace",
            "ada@example.com",
            "CC-100",
            "12.50",
            "",
            "a=b",
        ] {
            assert_eq!(safe_cell(plain), plain);
        }
        let mut chunk = CsvChunk::new();
        chunk
            .plain(["name", "amount"])
            .plain([text("=HYPERLINK(\"http://evil\")"), text("-5")]);
        let text = String::from_utf8(chunk.take().to_vec()).unwrap();
        assert_eq!(
            text,
            "name,amount\r\n\"'=HYPERLINK(\"\"http://evil\"\")\",'-5\r\n"
        );
    }
}
