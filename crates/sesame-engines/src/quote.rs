//! SQL quoting per dialect. Account names and passwords cannot be bound as parameters in
//! `CREATE ROLE`/`CREATE USER`/`ALTER USER`, so they are quoted here, by each engine's own rules,
//! and nothing else pastes text into SQL. NUL is refused everywhere: no dialect can carry it.

use crate::EngineError;

fn refuse_nul(what: &str, s: &str) -> Result<(), EngineError> {
    if s.contains('\0') {
        return Err(EngineError::InvalidInput(format!("{what} must not contain a NUL character")));
    }
    Ok(())
}

/// PostgreSQL identifier: `"name"`, with `"` doubled.
pub fn pg_ident(s: &str) -> Result<String, EngineError> {
    refuse_nul("an identifier", s)?;
    Ok(format!("\"{}\"", s.replace('"', "\"\"")))
}

/// PostgreSQL string literal, valid whatever `standard_conforming_strings` says: `E'…'` with
/// `\` and `'` escaped.
pub fn pg_literal(s: &str) -> Result<String, EngineError> {
    refuse_nul("a string", s)?;
    Ok(format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")))
}

/// MySQL/MariaDB identifier: `` `name` ``, with `` ` `` doubled.
pub fn my_ident(s: &str) -> Result<String, EngineError> {
    refuse_nul("an identifier", s)?;
    Ok(format!("`{}`", s.replace('`', "``")))
}

/// MySQL/MariaDB string literal: `'` doubled, and `\` doubled as well when the session treats
/// backslashes as escapes (the default; not under `NO_BACKSLASH_ESCAPES`).
pub fn my_literal(s: &str, backslash_escapes: bool) -> Result<String, EngineError> {
    refuse_nul("a string", s)?;
    let body = if backslash_escapes { s.replace('\\', "\\\\").replace('\'', "''") } else { s.replace('\'', "''") };
    Ok(format!("'{body}'"))
}

/// An account as MySQL names it: `'user'@'host'`.
pub fn my_account(user: &str, host: &str, backslash_escapes: bool) -> Result<String, EngineError> {
    Ok(format!("{}@{}", my_literal(user, backslash_escapes)?, my_literal(host, backslash_escapes)?))
}

/// SQL Server identifier: `[name]`, with `]` doubled.
pub fn mssql_ident(s: &str) -> Result<String, EngineError> {
    refuse_nul("an identifier", s)?;
    Ok(format!("[{}]", s.replace(']', "]]")))
}

/// SQL Server Unicode string literal: `N'…'` with `'` doubled.
pub fn mssql_literal(s: &str) -> Result<String, EngineError> {
    refuse_nul("a string", s)?;
    Ok(format!("N'{}'", s.replace('\'', "''")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Reference unquoting, written independently of the quoting above: reads one quoted token
    // and returns its value and whatever follows it.
    fn unquote(s: &str, open: &str, close: char, double: bool, backslash: bool) -> Option<(String, String)> {
        let mut chars = s.strip_prefix(open)?.chars().peekable();
        let mut out = String::new();
        while let Some(c) = chars.next() {
            if backslash && c == '\\' {
                out.push(chars.next()?);
            } else if c == close {
                if double && chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    return Some((out, chars.collect()));
                }
            } else {
                out.push(c);
            }
        }
        None
    }

    proptest! {
        #[test]
        fn postgres_identifiers_round_trip(s in "[^\u{0}]{0,40}") {
            let q = pg_ident(&s).unwrap();
            prop_assert_eq!(unquote(&q, "\"", '"', true, false), Some((s, String::new())));
        }

        #[test]
        fn postgres_literals_round_trip(s in "[^\u{0}]{0,40}") {
            let q = pg_literal(&s).unwrap();
            prop_assert_eq!(unquote(&q, "E'", '\'', true, true), Some((s, String::new())));
        }

        #[test]
        fn mysql_identifiers_round_trip(s in "[^\u{0}]{0,40}") {
            let q = my_ident(&s).unwrap();
            prop_assert_eq!(unquote(&q, "`", '`', true, false), Some((s, String::new())));
        }

        #[test]
        fn mysql_literals_round_trip_in_both_modes(s in "[^\u{0}]{0,40}") {
            let q = my_literal(&s, true).unwrap();
            prop_assert_eq!(unquote(&q, "'", '\'', true, true), Some((s.clone(), String::new())));
            let q = my_literal(&s, false).unwrap();
            prop_assert_eq!(unquote(&q, "'", '\'', true, false), Some((s, String::new())));
        }

        /// MySQL sessions ask the server's mode only for a string that holds a backslash.
        #[test]
        fn a_mysql_literal_without_a_backslash_reads_alike_in_both_modes(s in "[^\u{0}\\\\]{0,40}") {
            let q = my_literal(&s, true).unwrap();
            prop_assert_eq!(&q, &my_literal(&s, false).unwrap());
            prop_assert_eq!(unquote(&q, "'", '\'', true, true), Some((s.clone(), String::new())));
            prop_assert_eq!(unquote(&q, "'", '\'', true, false), Some((s, String::new())));
        }

        #[test]
        fn mssql_quoting_round_trips(s in "[^\u{0}]{0,40}") {
            prop_assert_eq!(unquote(&mssql_ident(&s).unwrap(), "[", ']', true, false), Some((s.clone(), String::new())));
            prop_assert_eq!(unquote(&mssql_literal(&s).unwrap(), "N'", '\'', true, false), Some((s, String::new())));
        }

        #[test]
        fn nul_is_refused_everywhere(a in "[a-z]{0,5}", b in "[a-z]{0,5}") {
            let s = format!("{a}\0{b}");
            prop_assert!(pg_ident(&s).is_err() && pg_literal(&s).is_err() && my_ident(&s).is_err());
            prop_assert!(my_literal(&s, true).is_err() && mssql_ident(&s).is_err() && mssql_literal(&s).is_err());
        }
    }

    #[test]
    fn hostile_names_stay_inside_their_quotes() {
        assert_eq!(pg_ident("a\"; DROP ROLE x; --").unwrap(), "\"a\"\"; DROP ROLE x; --\"");
        assert_eq!(pg_literal("it's \\ fine").unwrap(), "E'it\\'s \\\\ fine'");
        assert_eq!(my_literal("o'k\\", true).unwrap(), "'o''k\\\\'");
        assert_eq!(my_account("bob", "%", true).unwrap(), "'bob'@'%'");
        assert_eq!(mssql_ident("we]ird").unwrap(), "[we]]ird]");
    }
}
