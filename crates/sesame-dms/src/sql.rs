//! Just enough SQL lexing to label audit entries: where a script's statements end, and what
//! kind each is. The server runs the script as sent; this never changes what runs.

/// The statements of a script, split at `;` outside quotes, quoted identifiers, comments and
/// PostgreSQL dollar quotes; empty statements are dropped.
pub fn split(script: &str) -> Vec<&str> {
    let b = script.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'\\' && q == b'\'' {
                        i += 2;
                        continue;
                    }
                    if b[i] == q {
                        // A doubled quote is an escaped one; the loop reads it as a close and a reopen.
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'$' => {
                // $tag$ … $tag$, where tag is empty or an identifier.
                let tag_end = b[i + 1..].iter().position(|&c| !(c.is_ascii_alphanumeric() || c == b'_')).map(|p| i + 1 + p);
                match tag_end {
                    Some(e) if b[e] == b'$' && !b[i + 1..e].first().is_some_and(u8::is_ascii_digit) => {
                        let tag = &script[i..=e];
                        i = match script[e + 1..].find(tag) {
                            Some(p) => e + 1 + p + tag.len(),
                            None => b.len(),
                        };
                    }
                    _ => i += 1,
                }
            }
            b';' => {
                push(&mut out, &script[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    push(&mut out, &script[start.min(script.len())..]);
    out
}

fn push<'a>(out: &mut Vec<&'a str>, stmt: &'a str) {
    let t = stmt.trim();
    if !t.is_empty() && !only_comments(t) {
        out.push(t);
    }
}

fn only_comments(s: &str) -> bool {
    strip_comments(s).is_empty()
}

fn strip_comments(mut s: &str) -> &str {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.find('\n').map_or("", |p| &rest[p..]);
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.find("*/").map_or("", |p| &rest[p + 2..]);
        } else {
            return s;
        }
    }
}

/// The statement's first keyword, upper-case (`SELECT`, `INSERT`, …), as DMS's `SqlType`.
pub fn kind(stmt: &str) -> String {
    strip_comments(stmt).split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or_default().to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn statements_split_outside_quotes_and_comments() {
        assert_eq!(split("select 1; select 2"), vec!["select 1", "select 2"]);
        assert_eq!(split("select ';'; select \"a;b\" from `t;`;"), vec!["select ';'", "select \"a;b\" from `t;`"]);
        assert_eq!(split("select 'it''s; fine'; -- a; comment\nselect 2"), vec!["select 'it''s; fine'", "-- a; comment\nselect 2"]);
        assert_eq!(split("/* ; */ select 1;;  ; -- only\n"), vec!["/* ; */ select 1"]);
        assert_eq!(
            split("create function f() returns int as $body$ select 1; $body$ language sql; select $1"),
            vec!["create function f() returns int as $body$ select 1; $body$ language sql", "select $1"]
        );
        assert_eq!(split("select 'a\\'; b'; select 2"), vec!["select 'a\\'; b'", "select 2"]);
    }

    #[test]
    fn kinds_are_first_keywords() {
        assert_eq!(kind("  select 1"), "SELECT");
        assert_eq!(kind("-- why\n/* how */ Insert into t values (1)"), "INSERT");
        assert_eq!(kind("(select 1)"), "");
    }

    proptest! {
        #[test]
        fn splitting_never_panics_and_keeps_text(s in "[ -~\\n$'\";/*-]{0,80}") {
            for stmt in split(&s) {
                prop_assert!(s.contains(stmt));
                let _ = kind(stmt);
            }
        }
    }
}
