//! Calendar months and spans of whole months: the billing periods usage, caps and reports
//! are counted in (`YYYY-MM`).

use time::{Date, Duration, Month as CalendarMonth};

use crate::error::{CoreError, CoreResult};

/// A calendar month, held as its first day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(Date);

impl Month {
    pub fn containing(day: Date) -> Self {
        Self(day.replace_day(1).expect("day 1 exists"))
    }

    /// `2026-01`.
    pub fn parse(text: &str) -> Option<Self> {
        let (year, month) = text.trim().split_once('-')?;
        if year.len() != 4 || month.len() != 2 {
            return None;
        }
        let month = CalendarMonth::try_from(month.parse::<u8>().ok()?).ok()?;
        Date::from_calendar_date(year.parse().ok()?, month, 1)
            .ok()
            .map(Self)
    }

    pub fn first_day(self) -> Date {
        self.0
    }

    pub fn last_day(self) -> Date {
        self.next().0 - Duration::days(1)
    }

    pub fn next(self) -> Self {
        Self(self.0 + Duration::days(32)).first()
    }

    pub fn previous(self) -> Self {
        Self(self.0 - Duration::days(1)).first()
    }

    fn first(self) -> Self {
        Self::containing(self.0)
    }

    /// Months since year 0, to count months between two.
    pub(crate) fn index(self) -> i32 {
        self.0.year() * 12 + i32::from(u8::from(self.0.month())) - 1
    }

    /// `YYYY-MM`, the billing period name used across Lineup.
    pub fn period(self) -> String {
        self.to_string()
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.0.year(), u8::from(self.0.month()))
    }
}

/// Longest period a report covers, so one request cannot ask for decades.
pub const MAX_MONTHS: usize = 36;

/// Whole months, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Month,
    pub to: Month,
}

impl Period {
    pub fn new(from: Month, to: Month) -> CoreResult<Self> {
        if from > to {
            return Err(CoreError::invalid(
                "from",
                format!("{from} is after {to}; pick a start before the end"),
            ));
        }
        let period = Self { from, to };
        if period.months().count() > MAX_MONTHS {
            return Err(CoreError::invalid(
                "from",
                format!("a report covers at most {MAX_MONTHS} months"),
            ));
        }
        Ok(period)
    }

    /// The `count` months ending with the one containing `today`.
    pub fn last_months(today: Date, count: usize) -> Self {
        let to = Month::containing(today);
        let from = (1..count).fold(to, |m, _| m.previous());
        Self { from, to }
    }

    pub fn months(self) -> impl Iterator<Item = Month> {
        std::iter::successors(Some(self.from), move |m| {
            Some(m.next()).filter(|n| *n <= self.to)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn months_parse_step_and_print() {
        let jan = Month::parse("2026-01").unwrap();
        assert_eq!(jan.first_day(), date!(2026 - 01 - 01));
        assert_eq!(jan.last_day(), date!(2026 - 01 - 31));
        assert_eq!(jan.previous().to_string(), "2025-12");
        assert_eq!(Month::parse("2025-12").unwrap().next(), jan);
        assert_eq!(
            Month::parse("2024-02").unwrap().last_day(),
            date!(2024 - 02 - 29)
        );
        for bad in ["2026-13", "2026-1", "26-01", "january", ""] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
        let period = Period::last_months(date!(2026 - 03 - 15), 6);
        assert_eq!(period.from.to_string(), "2025-10");
        assert_eq!(period.months().count(), 6);
        assert!(Period::new(jan, jan.previous()).is_err());
    }
}
