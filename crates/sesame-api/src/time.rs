//! Time on the wire: whole seconds, UTC, ISO 8601 (`2026-11-28T12:00:00Z`), and rotation
//! intervals written `integer[d|h|m|s]`.

use std::fmt;

/// Seconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn seconds(self) -> i64 {
        self.0
    }

    pub fn plus_seconds(self, s: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(s))
    }

    /// Parses `YYYY-MM-DDTHH:MM:SSZ`, optionally with fractional seconds (`.123Z`), which the
    /// SDKs send in `x-acs-date` and `Timestamp`.
    pub fn parse_iso8601(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let rest = s.get(19..)?;
        let rest = match rest.strip_prefix('.') {
            Some(frac) => {
                let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
                if digits == 0 {
                    return None;
                }
                frac.get(digits..)?
            }
            None => rest,
        };
        if rest != "Z" || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
            return None;
        }
        let days = days_from_civil(y, mo, d);
        Some(Timestamp(days * 86_400 + h * 3600 + mi * 60 + se))
    }
}

/// As its ISO 8601 text, written where it is serialised.
impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let (h, mi, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
        if !(0..=9999).contains(&y) {
            return write!(f, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
        }
        // Written digit by digit: every response and audit event carries timestamps, and the
        // formatting machinery cost about 900 instructions a call.
        let mut out = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, width: usize, mut v: i64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, y);
        put(5, 2, m);
        put(8, 2, d);
        put(11, 2, h);
        put(14, 2, mi);
        put(17, 2, s);
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses a period written `integer[unit]`, unit one of `d h m s` (no unit means seconds), as
/// `RotationInterval` is written. Returns seconds.
pub fn parse_interval(s: &str) -> Option<i64> {
    let s = s.trim();
    let (digits, mult) = match s.as_bytes().last()? {
        b'd' => (&s[..s.len() - 1], 86_400),
        b'h' => (&s[..s.len() - 1], 3_600),
        b'm' => (&s[..s.len() - 1], 60),
        b's' => (&s[..s.len() - 1], 1),
        c if c.is_ascii_digit() => (s, 1),
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) || digits.len() > 12 {
        return None;
    }
    digits.parse::<i64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_and_parses_known_instants() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
        let t = Timestamp::parse_iso8601("2026-11-28T12:00:01Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-28T12:00:01Z");
        assert_eq!(Timestamp::parse_iso8601("2026-11-28T12:00:01.250Z"), Some(t));
        assert_eq!(Timestamp::parse_iso8601("2024-02-29T00:00:00Z").unwrap().to_string(), "2024-02-29T00:00:00Z");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2026-11-28T12:00:01Z\"", "serialised as its text");
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for bad in [
            "",
            "2026-11-28",
            "2026-11-28T12:00:01",
            "2026-13-01T00:00:00Z",
            "2026-11-28T12:00:01+08:00",
            "abcd-11-28T12:00:01Z",
            "2026-11-28T12:00:01.Z",
            "２０26-11-28T12:00:01Z",
        ] {
            assert_eq!(Timestamp::parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_intervals_in_every_unit() {
        assert_eq!(parse_interval("7d"), Some(604_800));
        assert_eq!(parse_interval("6h"), Some(21_600));
        assert_eq!(parse_interval("30m"), Some(1_800));
        assert_eq!(parse_interval("604800s"), Some(604_800));
        assert_eq!(parse_interval("3600"), Some(3_600));
        for bad in ["", "d", "7w", "-7d", "7.5d", "99999999999999d"] {
            assert_eq!(parse_interval(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn timestamps_format_as_the_formatting_machinery_does(secs in -200_000_000_000i64..400_000_000_000) {
            let t = Timestamp(secs);
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let s = secs.rem_euclid(86_400);
            let expected = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s % 3600 / 60, s % 60);
            prop_assert_eq!(t.to_string(), expected);
        }

        #[test]
        fn timestamps_round_trip(secs in -62_135_596_800i64..253_402_300_799) {
            let t = Timestamp(secs);
            prop_assert_eq!(Timestamp::parse_iso8601(&t.to_string()), Some(t));
        }

        #[test]
        fn timestamp_parser_never_panics(s in ".{0,40}") {
            let _ = Timestamp::parse_iso8601(&s);
            let _ = parse_interval(&s);
        }
    }
}
