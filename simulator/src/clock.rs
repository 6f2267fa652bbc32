use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, Month, OffsetDateTime};

/// Simulated time: real UTC plus an offset moved by `/_sim/clock/advance`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimClock {
    offset: Duration,
}

impl SimClock {
    pub fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc() + self.offset;
        // Millisecond precision keeps timestamps stable across JSON round trips.
        now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
            .unwrap_or(now)
    }

    pub fn advance(&mut self, seconds: i64) {
        self.offset += Duration::seconds(seconds);
    }

    /// The offset in whole milliseconds, as persisted in a state file.
    pub fn offset_ms(&self) -> i64 {
        i64::try_from(self.offset.whole_milliseconds()).unwrap_or(i64::MAX)
    }

    pub fn with_offset_ms(offset_ms: i64) -> Self {
        Self {
            offset: Duration::milliseconds(offset_ms),
        }
    }

    pub fn offset_seconds(&self) -> i64 {
        self.offset.whole_seconds()
    }
}

pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

pub fn rfc3339_opt(at: Option<OffsetDateTime>) -> serde_json::Value {
    at.map_or(serde_json::Value::Null, |at| rfc3339(at).into())
}

pub fn parse_rfc3339(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

pub fn parse_date(text: &str) -> Option<Date> {
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

/// Calendar month arithmetic, clamping the day (Jan 31 + 1 month = Feb 28/29).
pub fn add_months(at: OffsetDateTime, months: u32) -> OffsetDateTime {
    let total = at.year() * 12 + i32::from(u8::from(at.month())) - 1 + months as i32;
    let year = total.div_euclid(12);
    let month = Month::try_from((total.rem_euclid(12) + 1) as u8).unwrap_or(Month::January);
    let day = at.day().min(time::util::days_in_month(month, year));
    let date = Date::from_calendar_date(year, month, day).unwrap_or(at.date());
    at.replace_date(date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn month_addition_clamps_the_day() {
        assert_eq!(
            add_months(datetime!(2024-01-31 10:00 UTC), 1),
            datetime!(2024-02-29 10:00 UTC)
        );
        assert_eq!(
            add_months(datetime!(2024-12-15 00:00 UTC), 1),
            datetime!(2025-01-15 00:00 UTC)
        );
    }
}
