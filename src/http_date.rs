//! IMF-fixdate (RFC 9110 §5.6.7), the one HTTP-date form senders must
//! generate: `Sun, 06 Nov 1994 08:49:37 GMT`.
//!
//! The obsolete RFC 850 and asctime forms are not accepted; a provider's
//! `Retry-After` in one of them falls back to the retry policy's own backoff.

const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Seconds since the Unix epoch of an IMF-fixdate, or `None` for anything
/// else (including dates before 1970 and impossible ones like 30 Feb).
pub(crate) fn parse(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let shape = b.len() == 29
        && &b[3..5] == b", "
        && b[7] == b' '
        && b[11] == b' '
        && b[16] == b' '
        && b[19] == b':'
        && b[22] == b':'
        && &b[25..] == b" GMT";
    if !shape || !DAYS.contains(&&b[..3]) {
        return None;
    }
    let number = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0u64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
        })
    };
    let day = number(5, 7)?;
    let month = MONTHS.iter().position(|m| *m == &b[8..11])? as u64 + 1;
    let year = number(12, 16)?;
    let (hour, minute, second) = (number(17, 19)?, number(20, 22)?, number(23, 25)?);
    // 60: a leap second.
    if year < 1970
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_since_epoch(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date on or after it (the civil-from-days
/// algorithm run backwards, with years starting in March so the leap day
/// comes last).
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let (era, year_of_era) = (y / 400, y % 400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(parse("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse("Wed, 21 Oct 2015 07:28:00 GMT"), Some(1_445_412_480));
        assert_eq!(parse("Thu, 29 Feb 2024 12:00:00 GMT"), Some(1_709_208_000));
        assert_eq!(parse("Wed, 01 Mar 2100 00:00:00 GMT"), Some(4_107_542_400));
        assert_eq!(parse("Tue, 29 Feb 2000 23:59:60 GMT"), Some(951_868_800));
    }

    #[test]
    fn every_day_of_a_leap_and_a_common_year_is_one_day_apart() {
        let mut previous = None;
        for (year, leap) in [(2023u64, false), (2024, true)] {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    let days = days_since_epoch(year, month, day);
                    if let Some(p) = previous {
                        assert_eq!(days, p + 1, "{year}-{month}-{day}");
                    }
                    previous = Some(days);
                }
            }
            assert_eq!(days_in_month(year, 2) == 29, leap);
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 GMT ",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT",
            "Fri, 30 Feb 2024 00:00:00 GMT",
            "Thu, 29 Feb 2023 00:00:00 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:61 GMT",
            "Sun, 06 Nov +994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
