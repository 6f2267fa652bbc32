//! SQL assembled from optional filters: the text grows with the conditions a request sets,
//! and each parameter is numbered (`$n`) as it is added, the same on both backends.

use time::{Date, OffsetDateTime};

use super::Tx;
use crate::ids::TenantId;

/// A parameter of an assembled query.
pub(super) enum Arg {
    Uuid(uuid::Uuid),
    Date(Date),
    Int(i64),
    Text(String),
    At(OffsetDateTime),
}

/// SQL text plus its parameters; `$1` is always the tenant.
pub(super) struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(tenant: TenantId) -> Self {
        Self {
            text: String::new(),
            args: vec![Arg::Uuid(tenant.0)],
        }
    }

    /// Adds a parameter and returns its placeholder.
    pub fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    pub fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// A whole-second instant to compare a timestamp column with. SQLite keeps timestamps
    /// as RFC 3339 text with a variable-length fraction (`…00.5Z`), so its bound is the
    /// shorter `YYYY-MM-DDTHH:MM:SS`, which sorts before every fraction of that second.
    pub fn instant(&mut self, tx: &Tx, at: OffsetDateTime) -> String {
        match tx {
            Tx::Postgres(_) => self.arg(Arg::At(at)),
            Tx::Sqlite(_) => {
                let at = at.to_offset(time::UtcOffset::UTC);
                self.arg(Arg::Text(format!(
                    "{}T{:02}:{:02}:{:02}",
                    at.date(),
                    at.hour(),
                    at.minute(),
                    at.second()
                )))
            }
        }
    }
}

/// Binds a [`Sql`]'s parameters to any sqlx query (`query`, `query_as`, `query_scalar`).
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            use $crate::store::query::Arg;
            query = match arg {
                Arg::Uuid(v) => query.bind(*v),
                Arg::Date(v) => query.bind(*v),
                Arg::Int(v) => query.bind(*v),
                Arg::Text(v) => query.bind(v.clone()),
                Arg::At(v) => query.bind(*v),
            };
        }
        query
    }};
}

/// Runs a [`Sql`] on either backend and fetches every row as `$row`.
macro_rules! fetch_all {
    ($tx:expr, $row:ty, $sql:expr) => {{
        let sql = $sql;
        $crate::store::on_tx!($tx, |conn| {
            $crate::store::query::bind_args!(sqlx::query_as::<_, $row>(&sql.text), &sql.args)
                .fetch_all(conn)
                .await?
        })
    }};
}
pub(super) use {bind_args, fetch_all};

/// Runs a [`Sql`] on SQLite and returns every row as `T`, read from one JSON array that
/// SQLite builds of `columns` (expressions over the query's output columns, in `T`'s field
/// order; ids as `hex(…)`, which reads back as a UUID).
///
/// For reads of many rows. sqlx hands SQLite's rows from its worker thread one at a time,
/// every value copied, and wakes the reader for each: for a dashboard's 10,000 lines that
/// costs several times the SQL itself. One value is one hand-off.
pub(super) async fn sqlite_rows_as_json<T: serde::de::DeserializeOwned>(
    conn: &mut sqlx::SqliteConnection,
    sql: &Sql,
    columns: &str,
) -> super::StoreResult<Vec<T>> {
    let text = format!(
        "SELECT json_group_array(json_array({columns})) FROM ({})",
        sql.text
    );
    let query = bind_args!(sqlx::query_scalar::<_, String>(&text), &sql.args);
    let json = query.fetch_one(conn).await?;
    serde_json::from_str(&json).map_err(|e| super::StoreError::corrupt("report rows", e))
}
