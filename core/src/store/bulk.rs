//! Bulk writes: many rows of one tenant in a few statements, each backend in the shape it
//! reads fastest. PostgreSQL gets one array per column, `UNNEST`ed, [`POSTGRES_CHUNK`] rows a
//! statement; SQLite, which has no arrays, gets multi-row `VALUES` with anonymous parameters,
//! [`sqlite_chunk`] rows a statement. The callers write only their table, columns and
//! conflict handling, the same on both.

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, FromRow};
use time::{Date, OffsetDateTime};

use super::{StoreError, StoreResult, Tx};
use crate::ids::TenantId;

/// How a SQLite statement names its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placeholders {
    /// `?`: bound by position, with no lookup by name.
    Anonymous,
    /// `$1`, `$2`, …: each is found by name, in time proportional to how many the statement
    /// has, so far larger batches are slower, not faster.
    Numbered,
}

/// Rows per multi-row statement on SQLite for `columns` parameters a row: up to SQLite's
/// limit of 32,766 bound parameters with anonymous ones, a few thousand with numbered ones.
pub(crate) fn sqlite_chunk(columns: usize, placeholders: Placeholders) -> usize {
    let budget = match placeholders {
        Placeholders::Anonymous => 30_000,
        Placeholders::Numbered => 2_000,
    };
    (budget / columns).max(1)
}

/// `(?, ?, ?), (?, ?, ?)` for `rows` rows of `columns` parameters: SQLite binds anonymous
/// parameters by position, with no lookup by name.
fn sqlite_placeholders(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

/// Rows per `UNNEST` batch on PostgreSQL: large enough to amortise the round trip, small
/// enough to keep each message a few megabytes.
const POSTGRES_CHUNK: usize = 10_000;

/// One column's value in a row. The variant decides the column's array type on PostgreSQL.
pub(crate) enum Value<'a> {
    Uuid(Option<uuid::Uuid>),
    Text(Option<&'a str>),
    /// JSON text: `jsonb` on PostgreSQL, text on SQLite.
    Json(Option<String>),
    Int(i64),
    Bool(bool),
    Date(Option<Date>),
    At(OffsetDateTime),
}

impl From<uuid::Uuid> for Value<'_> {
    fn from(v: uuid::Uuid) -> Self {
        Self::Uuid(Some(v))
    }
}

impl From<Option<uuid::Uuid>> for Value<'_> {
    fn from(v: Option<uuid::Uuid>) -> Self {
        Self::Uuid(v)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Self::Text(Some(v))
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Self::Text(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Self::Text(v)
    }
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<Date> for Value<'_> {
    fn from(v: Date) -> Self {
        Self::Date(Some(v))
    }
}

impl From<Option<Date>> for Value<'_> {
    fn from(v: Option<Date>) -> Self {
        Self::Date(v)
    }
}

impl From<OffsetDateTime> for Value<'_> {
    fn from(v: OffsetDateTime) -> Self {
        Self::At(v)
    }
}

/// A table's columns after `tenant_id`, which every bulk write fills with the tenant.
pub(crate) struct Columns<const N: usize> {
    pub table: &'static str,
    pub names: [&'static str; N],
}

/// `INSERT` the rows, then `tail` (conflict handling), the same text on both backends.
/// Returns how many rows were written.
pub(crate) async fn insert<'a, R, const N: usize>(
    tx: &mut Tx,
    tenant: TenantId,
    columns: &Columns<N>,
    tail: &str,
    rows: &'a [R],
    values: impl Fn(&'a R) -> [Value<'a>; N],
) -> StoreResult<u64> {
    let mut written = 0;
    match tx {
        Tx::Postgres(tx) => {
            for chunk in rows.chunks(POSTGRES_CHUNK) {
                let (sql, args) = pg_insert(tenant, columns, tail, chunk, &values)?;
                let done = sqlx::query_with(&sql, args).execute(&mut **tx).await?;
                written += done.rows_affected();
            }
        }
        Tx::Sqlite(tx) => {
            for chunk in rows.chunks(sqlite_chunk(N + 1, Placeholders::Anonymous)) {
                let (sql, args) = sqlite_insert(tenant, columns, tail, chunk, &values)?;
                let done = sqlx::query_with(&sql, args).execute(&mut **tx).await?;
                written += done.rows_affected();
            }
        }
    }
    Ok(written)
}

/// [`insert`] with a `RETURNING` clause in `tail`: the rows it returns.
pub(crate) async fn insert_returning<'a, O, R, const N: usize>(
    tx: &mut Tx,
    tenant: TenantId,
    columns: &Columns<N>,
    tail: &str,
    rows: &'a [R],
    values: impl Fn(&'a R) -> [Value<'a>; N],
) -> StoreResult<Vec<O>>
where
    O: for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
{
    let mut returned = Vec::new();
    match tx {
        Tx::Postgres(tx) => {
            for chunk in rows.chunks(POSTGRES_CHUNK) {
                let (sql, args) = pg_insert(tenant, columns, tail, chunk, &values)?;
                let query = sqlx::query_as_with::<_, O, _>(&sql, args);
                returned.extend(query.fetch_all(&mut **tx).await?);
            }
        }
        Tx::Sqlite(tx) => {
            for chunk in rows.chunks(sqlite_chunk(N + 1, Placeholders::Anonymous)) {
                let (sql, args) = sqlite_insert(tenant, columns, tail, chunk, &values)?;
                let query = sqlx::query_as_with::<_, O, _>(&sql, args);
                returned.extend(query.fetch_all(&mut **tx).await?);
            }
        }
    }
    Ok(returned)
}

/// `UPDATE` the tenant's rows that match a row's first `keys` columns, setting the other
/// columns to the row's values.
pub(crate) async fn update<'a, R, const N: usize>(
    tx: &mut Tx,
    tenant: TenantId,
    columns: &Columns<N>,
    keys: usize,
    rows: &'a [R],
    values: impl Fn(&'a R) -> [Value<'a>; N],
) -> StoreResult<()> {
    let table = columns.table;
    let matching: String = columns.names[..keys]
        .iter()
        .map(|c| format!(" AND {table}.{c} = u.{c}"))
        .collect();
    let names = columns.names.join(", ");
    match tx {
        Tx::Postgres(tx) => {
            for chunk in rows.chunks(POSTGRES_CHUNK) {
                let mut args = PgArguments::default();
                add(&mut args, tenant)?;
                let (unnest, json) = pg_unnest(&mut args, chunk, &values)?;
                let read = pg_read(&columns.names, &json);
                let set = set_columns(&columns.names[keys..], &read[keys..]);
                let sql = format!(
                    "UPDATE {table} SET {set} FROM {unnest} AS u({names})
                     WHERE {table}.tenant_id = $1{matching}"
                );
                sqlx::query_with(&sql, args).execute(&mut **tx).await?;
            }
        }
        Tx::Sqlite(tx) => {
            for chunk in rows.chunks(sqlite_chunk(N, Placeholders::Anonymous)) {
                let mut args = SqliteArguments::default();
                for row in chunk {
                    for value in values(row) {
                        bind_sqlite(&mut args, value)?;
                    }
                }
                add(&mut args, tenant)?;
                let read: Vec<String> = columns.names.iter().map(|c| format!("u.{c}")).collect();
                let set = set_columns(&columns.names[keys..], &read[keys..]);
                let sql = format!(
                    "WITH u({names}) AS (VALUES {}) UPDATE {table} SET {set} FROM u
                     WHERE {table}.tenant_id = ?{matching}",
                    sqlite_placeholders(chunk.len(), N)
                );
                sqlx::query_with(&sql, args).execute(&mut **tx).await?;
            }
        }
    }
    Ok(())
}

/// `a = u.a, b = u.b`
fn set_columns(names: &[&str], read: &[String]) -> String {
    names
        .iter()
        .zip(read)
        .map(|(name, read)| format!("{name} = {read}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pg_insert<'a, R, const N: usize>(
    tenant: TenantId,
    columns: &Columns<N>,
    tail: &str,
    chunk: &'a [R],
    values: &impl Fn(&'a R) -> [Value<'a>; N],
) -> StoreResult<(String, PgArguments)> {
    let mut args = PgArguments::default();
    add(&mut args, tenant)?;
    let (unnest, json) = pg_unnest(&mut args, chunk, values)?;
    let sql = format!(
        "INSERT INTO {} (tenant_id, {}) SELECT $1, {} FROM {unnest} AS u({}){tail}",
        columns.table,
        columns.names.join(", "),
        pg_read(&columns.names, &json).join(", "),
        columns.names.join(", "),
    );
    Ok((sql, args))
}

/// `u.name` for each column, read as `jsonb` where the rows hold JSON text.
fn pg_read(names: &[&str], json: &[bool]) -> Vec<String> {
    names
        .iter()
        .zip(json)
        .map(|(name, json)| match json {
            true => format!("u.{name}::jsonb"),
            false => format!("u.{name}"),
        })
        .collect()
}

/// `UNNEST($2::uuid[], $3::text[], …)` over the chunk's columns, bound after what `args`
/// already holds, and which columns hold JSON text.
fn pg_unnest<'a, R, const N: usize>(
    args: &mut PgArguments,
    chunk: &'a [R],
    values: &impl Fn(&'a R) -> [Value<'a>; N],
) -> StoreResult<(String, Vec<bool>)> {
    let mut arrays: Vec<Array<'a>> = Vec::with_capacity(N);
    for (index, row) in chunk.iter().enumerate() {
        for (column, value) in values(row).into_iter().enumerate() {
            if index == 0 {
                arrays.push(Array::of(&value, chunk.len()));
            }
            arrays[column].push(value)?;
        }
    }
    let json = arrays.iter().map(|a| matches!(a, Array::Json(_))).collect();
    let mut params = Vec::with_capacity(N);
    for array in arrays {
        let pg_type = array.pg_type();
        array.bind(args)?;
        params.push(format!("${}::{pg_type}[]", args.len()));
    }
    Ok((format!("UNNEST({})", params.join(", ")), json))
}

fn sqlite_insert<'a, R, const N: usize>(
    tenant: TenantId,
    columns: &Columns<N>,
    tail: &str,
    chunk: &'a [R],
    values: &impl Fn(&'a R) -> [Value<'a>; N],
) -> StoreResult<(String, SqliteArguments<'a>)> {
    let mut args = SqliteArguments::default();
    for row in chunk {
        add(&mut args, tenant)?;
        for value in values(row) {
            bind_sqlite(&mut args, value)?;
        }
    }
    let sql = format!(
        "INSERT INTO {} (tenant_id, {}) VALUES {}{tail}",
        columns.table,
        columns.names.join(", "),
        sqlite_placeholders(chunk.len(), N + 1)
    );
    Ok((sql, args))
}

fn bind_sqlite<'a>(args: &mut SqliteArguments<'a>, value: Value<'a>) -> StoreResult<()> {
    match value {
        Value::Uuid(v) => add(args, v),
        Value::Text(v) => add(args, v),
        Value::Json(v) => add(args, v),
        Value::Int(v) => add(args, v),
        Value::Bool(v) => add(args, v),
        Value::Date(v) => add(args, v),
        Value::At(v) => add(args, v),
    }
}

fn add<'q, A, T>(args: &mut A, value: T) -> StoreResult<()>
where
    A: Arguments<'q>,
    T: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database> + 'q,
{
    args.add(value)
        .map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))
}

/// One column of a chunk, as the PostgreSQL array it is bound as.
enum Array<'a> {
    Uuid(Vec<Option<uuid::Uuid>>),
    Text(Vec<Option<&'a str>>),
    Json(Vec<Option<String>>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
    Date(Vec<Option<Date>>),
    At(Vec<OffsetDateTime>),
}

impl<'a> Array<'a> {
    fn of(value: &Value<'a>, capacity: usize) -> Self {
        match value {
            Value::Uuid(_) => Self::Uuid(Vec::with_capacity(capacity)),
            Value::Text(_) => Self::Text(Vec::with_capacity(capacity)),
            Value::Json(_) => Self::Json(Vec::with_capacity(capacity)),
            Value::Int(_) => Self::Int(Vec::with_capacity(capacity)),
            Value::Bool(_) => Self::Bool(Vec::with_capacity(capacity)),
            Value::Date(_) => Self::Date(Vec::with_capacity(capacity)),
            Value::At(_) => Self::At(Vec::with_capacity(capacity)),
        }
    }

    fn push(&mut self, value: Value<'a>) -> StoreResult<()> {
        match (self, value) {
            (Self::Uuid(a), Value::Uuid(v)) => a.push(v),
            (Self::Text(a), Value::Text(v)) => a.push(v),
            (Self::Json(a), Value::Json(v)) => a.push(v),
            (Self::Int(a), Value::Int(v)) => a.push(v),
            (Self::Bool(a), Value::Bool(v)) => a.push(v),
            (Self::Date(a), Value::Date(v)) => a.push(v),
            (Self::At(a), Value::At(v)) => a.push(v),
            _ => {
                return Err(StoreError::Database(sqlx::Error::Protocol(
                    "a bulk write's column holds values of different types".to_owned(),
                )));
            }
        }
        Ok(())
    }

    /// JSON travels as text and is cast where it is read.
    fn pg_type(&self) -> &'static str {
        match self {
            Self::Uuid(_) => "uuid",
            Self::Text(_) | Self::Json(_) => "text",
            Self::Int(_) => "int8",
            Self::Bool(_) => "bool",
            Self::Date(_) => "date",
            Self::At(_) => "timestamptz",
        }
    }

    fn bind(self, args: &mut PgArguments) -> StoreResult<()> {
        match self {
            Self::Uuid(a) => add(args, a),
            Self::Text(a) => add(args, a),
            Self::Json(a) => add(args, a),
            Self::Int(a) => add(args, a),
            Self::Bool(a) => add(args, a),
            Self::Date(a) => add(args, a),
            Self::At(a) => add(args, a),
        }
    }
}
