//! Reading an uploaded file as CSV: refusing what is not text (images, workbooks, UTF-16),
//! naming the byte that is not UTF-8, and splitting it into a header and numbered rows.

use super::MAX_UPLOAD_BYTES;

/// What "save as CSV UTF-8" means in the tools people export from.
const SAVE_AS_CSV: &str = "In Excel choose File → Save As → \"CSV UTF-8 (Comma delimited)\"; \
                           in Google Sheets File → Download → \"Comma-separated values\"; \
                           then upload that file";

/// A file that could not be read as CSV at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty; export the employee list again and upload that file")]
    Empty,
    #[error("the file is larger than 20 MB; split it into smaller files and import each")]
    TooLarge,
    #[error("this looks like {kind}, not a CSV file. {SAVE_AS_CSV}")]
    NotCsv { kind: &'static str },
    #[error(
        "the file is not UTF-8 text: row {row} has the byte 0x{byte:02X}, which UTF-8 does not \
         allow. It was probably saved as \"CSV (Comma delimited)\" in a Windows or Latin-1 \
         encoding, which garbles names like José. {SAVE_AS_CSV}"
    )]
    NotUtf8 { row: u64, byte: u8 },
    #[error("the file has no header row; the first row must name the columns (e.g. Work Email)")]
    NoHeader,
    #[error("row {row} could not be read as CSV: {reason}")]
    Malformed { row: u64, reason: String },
}

/// A CSV file read into memory: its header and its rows, each with the row number a
/// spreadsheet shows (the header is row 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvFile {
    pub headers: Vec<String>,
    pub rows: Vec<CsvRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    pub row: u64,
    pub values: Vec<String>,
}

/// What a file's first bytes give away when it is not text.
fn binary_kind(bytes: &[u8]) -> Option<&'static str> {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"%PDF", "a PDF document"),
        (
            b"PK\x03\x04",
            "an Excel workbook (.xlsx) or another zip archive",
        ),
        (b"\xD0\xCF\x11\xE0", "an old Excel workbook (.xls)"),
        (b"\xFF\xFE", "UTF-16 text (Excel's \"Unicode Text\")"),
        (b"\xFE\xFF", "UTF-16 text"),
    ];
    if let Some((_, kind)) = SIGNATURES.iter().find(|(sig, _)| bytes.starts_with(sig)) {
        return Some(kind);
    }
    let head = &bytes[..bytes.len().min(8192)];
    head.contains(&0).then_some("a binary file")
}

/// Read an uploaded file as UTF-8 CSV (with or without a byte-order mark, LF or CRLF,
/// quoted fields with commas and line breaks inside). Rows whose cells are all blank, as
/// spreadsheets leave at the end, are skipped.
pub fn read_csv(bytes: &[u8]) -> Result<CsvFile, FileError> {
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(FileError::TooLarge);
    }
    if let Some(kind) = binary_kind(bytes) {
        return Err(FileError::NotCsv { kind });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(FileError::Empty);
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        let at = e.valid_up_to();
        let row = 1 + bytes[..at].iter().filter(|b| **b == b'\n').count() as u64;
        return Err(FileError::NotUtf8 {
            row,
            byte: bytes[at],
        });
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.records();
    let headers: Vec<String> = match records.next() {
        Some(Ok(record)) => record.iter().map(|h| h.trim().to_owned()).collect(),
        Some(Err(e)) => return Err(malformed(1, e)),
        None => return Err(FileError::NoHeader),
    };
    if headers.iter().all(String::is_empty) {
        return Err(FileError::NoHeader);
    }
    let mut rows = Vec::new();
    for (index, record) in records.enumerate() {
        let row = index as u64 + 2;
        let record = record.map_err(|e| malformed(row, e))?;
        if record.iter().all(|v| v.trim().is_empty()) {
            continue;
        }
        rows.push(CsvRow {
            row,
            values: record.iter().map(|v| v.trim().to_owned()).collect(),
        });
    }
    Ok(CsvFile { headers, rows })
}

fn malformed(row: u64, e: ::csv::Error) -> FileError {
    FileError::Malformed {
        row,
        reason: e.to_string(),
    }
}
