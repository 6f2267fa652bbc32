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

/// Runs a [`Sql`] on either backend and fetches every row as `$row`.
macro_rules! fetch_all {
    ($tx:expr, $row:ty, $sql:expr) => {{
        let sql = $sql;
        $crate::store::on_tx!($tx, |conn| {
            let mut query = sqlx::query_as::<_, $row>(&sql.text);
            for arg in &sql.args {
                use $crate::store::query::Arg;
                query = match arg {
                    Arg::Uuid(v) => query.bind(*v),
                    Arg::Date(v) => query.bind(*v),
                    Arg::Int(v) => query.bind(*v),
                    Arg::Text(v) => query.bind(v.clone()),
                    Arg::At(v) => query.bind(*v),
                };
            }
            query.fetch_all(conn).await?
        })
    }};
}
pub(super) use fetch_all;
