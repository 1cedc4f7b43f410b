//! A small TDS 7.4 test server for the SQL Server engine. It speaks the real wire protocol:
//! PRELOGIN (no encryption), LOGIN7 with the password de-obfuscated and checked against the
//! logins it keeps (error 18456 otherwise), and SQL batches. It interprets the statements the
//! engine sends (logins, users, role memberships, the catalog lookups), keeps that state, and
//! records every statement and every logon attempt, so a test can check over the real protocol
//! that an old password is refused and a new one accepted.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default, Debug)]
pub struct State {
    pub logins: BTreeMap<String, String>,
    pub databases: BTreeSet<String>,
    /// (database, user)
    pub users: BTreeSet<(String, String)>,
    /// (database, role, user)
    pub db_roles: BTreeSet<(String, String, String)>,
    /// (role, login)
    pub server_roles: BTreeSet<(String, String)>,
    pub statements: Vec<String>,
    /// (login, accepted)
    pub logons: Vec<(String, bool)>,
}

pub struct TdsServer {
    pub port: u16,
    pub state: Arc<Mutex<State>>,
}

impl TdsServer {
    /// Listens on 127.0.0.1 with one administrator login and the given databases.
    pub async fn start(admin: &str, password: &str, databases: &[&str]) -> TdsServer {
        let mut s = State::default();
        s.logins.insert(admin.into(), password.into());
        s.server_roles.insert(("sysadmin".into(), admin.into()));
        s.databases.extend(["master".to_string()].into_iter().chain(databases.iter().map(|d| d.to_string())));
        let state = Arc::new(Mutex::new(s));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = Session { sock, state: st, db: "master".into() }.run().await;
                });
            }
        });
        TdsServer { port, state }
    }
}

struct Session {
    sock: TcpStream,
    state: Arc<Mutex<State>>,
    db: String,
}

// ---- encoding -------------------------------------------------------------------------------

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn b_varchar(out: &mut Vec<u8>, s: &str) {
    out.push(s.encode_utf16().count() as u8);
    out.extend(utf16(s));
}

fn us_varchar(out: &mut Vec<u8>, s: &str) {
    out.extend((s.encode_utf16().count() as u16).to_le_bytes());
    out.extend(utf16(s));
}

const DONE_MORE: u16 = 0x01;
const DONE_ERROR: u16 = 0x02;
const DONE_COUNT: u16 = 0x10;

fn done(out: &mut Vec<u8>, status: u16, rows: u64) {
    out.push(0xFD);
    out.extend(status.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out.extend(rows.to_le_bytes());
}

fn error(out: &mut Vec<u8>, number: u32, class: u8, message: &str) {
    let mut body = Vec::new();
    body.extend(number.to_le_bytes());
    body.push(1); // state
    body.push(class);
    us_varchar(&mut body, message);
    b_varchar(&mut body, "sesame-tds-test");
    b_varchar(&mut body, "");
    body.extend(1u32.to_le_bytes());
    out.push(0xAA);
    out.extend((body.len() as u16).to_le_bytes());
    out.extend(body);
}

/// One NVARCHAR(4000) column called `name`, and its rows.
fn result_set(out: &mut Vec<u8>, rows: &[String]) {
    out.push(0x81);
    out.extend(1u16.to_le_bytes());
    out.extend(0u32.to_le_bytes()); // user type
    out.extend(0x0001u16.to_le_bytes()); // nullable
    out.push(0xE7); // NVARCHAR
    out.extend(8000u16.to_le_bytes());
    out.extend([0x09, 0x04, 0xD0, 0x00, 0x34]); // Latin1_General_CI_AS
    b_varchar(out, "name");
    for r in rows {
        out.push(0xD1);
        let b = utf16(r);
        out.extend((b.len() as u16).to_le_bytes());
        out.extend(b);
    }
}

fn login_ack(out: &mut Vec<u8>) {
    let mut body = vec![1u8]; // interface: SQL
    body.extend(0x7400_0004u32.to_be_bytes()); // TDS 7.4
    b_varchar(&mut body, "Microsoft SQL Server");
    body.extend(0x0F00_0000u32.to_be_bytes());
    out.push(0xAD);
    out.extend((body.len() as u16).to_le_bytes());
    out.extend(body);
}

fn prelogin_response() -> Vec<u8> {
    // VERSION (6 bytes) and ENCRYPTION (1 byte: not supported), then the terminator.
    let header_len = 5 + 5 + 1;
    let mut out = vec![0x00];
    out.extend((header_len as u16).to_be_bytes());
    out.extend(6u16.to_be_bytes());
    out.push(0x01);
    out.extend((header_len as u16 + 6).to_be_bytes());
    out.extend(1u16.to_be_bytes());
    out.push(0xFF);
    out.extend([15, 0, 0x07, 0xD0, 0, 0]);
    out.push(0x02);
    out
}

// ---- parsing ----------------------------------------------------------------------------------

fn read_utf16(payload: &[u8], offset: usize, chars: usize) -> String {
    let bytes = &payload[offset..offset + chars * 2];
    String::from_utf16_lossy(&bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect::<Vec<_>>())
}

/// LOGIN7: user name, password (obfuscated: each byte had its nibbles swapped, then was
/// XORed with 0xA5) and database.
fn parse_login7(p: &[u8]) -> (String, String, String) {
    let field = |at: usize| (u16::from_le_bytes([p[at], p[at + 1]]) as usize, u16::from_le_bytes([p[at + 2], p[at + 3]]) as usize);
    let (uo, ul) = field(40);
    let (po, pl) = field(44);
    let (dbo, dbl) = field(68);
    let pw_bytes: Vec<u8> = p[po..po + pl * 2].iter().map(|b| (b ^ 0xA5).rotate_left(4)).collect();
    let password = String::from_utf16_lossy(&pw_bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect::<Vec<_>>());
    (read_utf16(p, uo, ul), password, read_utf16(p, dbo, dbl))
}

/// Splits a batch into statements on `;` outside `[…]` and `N'…'`.
fn statements(sql: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote) = (Vec::new(), String::new(), None::<char>);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        cur.push(c);
        match (quote, c) {
            (None, '\'') => quote = Some('\''),
            (None, '[') => quote = Some(']'),
            (Some(q), c) if c == q => {
                if chars.peek() == Some(&q) {
                    cur.push(chars.next().unwrap());
                } else {
                    quote = None;
                }
            }
            (None, ';') => {
                cur.pop();
                out.push(std::mem::take(&mut cur));
            }
            _ => {}
        }
    }
    out.push(cur);
    out.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// Reads a `[ident]` or `N'literal'` at the start of `s`; returns it and the rest.
fn token(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let (body, close) = if let Some(r) = s.strip_prefix('[') { (r, ']') } else { (s.strip_prefix("N'")?, '\'') };
    let mut out = String::new();
    let mut it = body.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c == close {
            if it.peek().map(|(_, n)| *n) == Some(close) {
                it.next();
                out.push(close);
            } else {
                return Some((out, &body[i + c.len_utf8()..]));
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// The literal after the last `= ` in a lookup.
fn last_literal(s: &str) -> Option<String> {
    token(&s[s.rfind("= ")? + 2..]).map(|(v, _)| v)
}

enum Outcome {
    Done(u64),
    Rows(Vec<String>),
    Error(u32, String),
}

impl Session {
    async fn read_message(&mut self) -> std::io::Result<(u8, Vec<u8>)> {
        let mut payload = Vec::new();
        loop {
            let mut h = [0u8; 8];
            self.sock.read_exact(&mut h).await?;
            let len = u16::from_be_bytes([h[2], h[3]]) as usize;
            let mut body = vec![0u8; len.saturating_sub(8)];
            self.sock.read_exact(&mut body).await?;
            payload.extend(body);
            if h[1] & 0x01 != 0 {
                return Ok((h[0], payload));
            }
        }
    }

    async fn reply(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let chunks: Vec<&[u8]> = payload.chunks(4096 - 8).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut h = vec![0x04, if i + 1 == chunks.len() { 0x01 } else { 0x00 }];
            h.extend(((chunk.len() + 8) as u16).to_be_bytes());
            h.extend([0, 0, (i + 1) as u8, 0]);
            h.extend(*chunk);
            self.sock.write_all(&h).await?;
        }
        Ok(())
    }

    async fn run(mut self) -> std::io::Result<()> {
        loop {
            let (ty, payload) = self.read_message().await?;
            let mut out = Vec::new();
            match ty {
                0x12 => {
                    self.reply(&prelogin_response()).await?;
                    continue;
                }
                0x10 => {
                    let (user, password, db) = parse_login7(&payload);
                    let ok = {
                        let mut st = self.state.lock().unwrap();
                        let ok = st.logins.get(&user) == Some(&password) && (db.is_empty() || st.databases.contains(&db));
                        st.logons.push((user.clone(), ok));
                        ok
                    };
                    if ok {
                        if !db.is_empty() {
                            self.db = db;
                        }
                        login_ack(&mut out);
                        done(&mut out, 0, 0);
                    } else {
                        error(&mut out, 18456, 14, &format!("Login failed for user '{user}'."));
                        done(&mut out, DONE_ERROR, 0);
                    }
                    self.reply(&out).await?;
                    if !ok {
                        return Ok(());
                    }
                }
                0x01 => {
                    let headers = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
                    let sql = read_utf16(&payload, headers, (payload.len() - headers) / 2);
                    let stmts = statements(&sql);
                    for (i, s) in stmts.iter().enumerate() {
                        let more = if i + 1 < stmts.len() { DONE_MORE } else { 0 };
                        match self.execute(s) {
                            Outcome::Done(n) => done(&mut out, more | DONE_COUNT, n),
                            Outcome::Rows(rows) => {
                                result_set(&mut out, &rows);
                                done(&mut out, more | DONE_COUNT, rows.len() as u64);
                            }
                            Outcome::Error(n, msg) => {
                                error(&mut out, n, 16, &msg);
                                done(&mut out, DONE_ERROR, 0);
                                break;
                            }
                        }
                    }
                    self.reply(&out).await?;
                }
                other => {
                    error(&mut out, 50000, 16, &format!("message type {other:#x} is not supported by the test server"));
                    done(&mut out, DONE_ERROR, 0);
                    self.reply(&out).await?;
                }
            }
        }
    }

    fn execute(&mut self, s: &str) -> Outcome {
        let mut st = self.state.lock().unwrap();
        st.statements.push(s.to_string());
        let db = self.db.clone();
        let ident = |prefix: &str| s.strip_prefix(prefix).and_then(token);
        if s == "SELECT 1" {
            return Outcome::Done(1);
        }
        if let Some((name, rest)) = ident("CREATE LOGIN ") {
            let Some((pw, _)) = rest.trim_start().strip_prefix("WITH PASSWORD =").and_then(token) else {
                return Outcome::Error(102, "syntax".into());
            };
            if st.logins.contains_key(&name) {
                return Outcome::Error(15025, format!("The server principal '{name}' already exists."));
            }
            st.logins.insert(name, pw);
            return Outcome::Done(0);
        }
        if let Some((name, rest)) = ident("ALTER LOGIN ") {
            let Some((pw, _)) = rest.trim_start().strip_prefix("WITH PASSWORD =").and_then(token) else {
                return Outcome::Error(102, "syntax".into());
            };
            return match st.logins.get_mut(&name) {
                Some(p) => {
                    *p = pw;
                    Outcome::Done(0)
                }
                None => Outcome::Error(15151, format!("Cannot alter the login '{name}'.")),
            };
        }
        if let Some((name, _)) = ident("DROP LOGIN ") {
            if st.users.iter().any(|(_, u)| *u == name) {
                return Outcome::Error(15434, "the login still has database users".into());
            }
            st.server_roles.retain(|(_, l)| *l != name);
            return if st.logins.remove(&name).is_some() {
                Outcome::Done(0)
            } else {
                Outcome::Error(15151, format!("Cannot drop the login '{name}'."))
            };
        }
        if let Some((name, _)) = ident("USE ") {
            if !st.databases.contains(&name) {
                return Outcome::Error(911, format!("Database '{name}' does not exist."));
            }
            drop(st);
            self.db = name;
            return Outcome::Done(0);
        }
        if let Some((name, rest)) = ident("CREATE USER ") {
            let Some((login, _)) = rest.trim_start().strip_prefix("FOR LOGIN").and_then(token) else {
                return Outcome::Error(102, "syntax".into());
            };
            if !st.logins.contains_key(&login) || !st.users.insert((db, name)) {
                return Outcome::Error(15023, "the user exists or its login does not".into());
            }
            return Outcome::Done(0);
        }
        if let Some((name, _)) = ident("DROP USER ") {
            st.db_roles.retain(|(d, _, u)| !(*d == db && *u == name));
            return if st.users.remove(&(db, name)) { Outcome::Done(0) } else { Outcome::Error(15151, "no such user".into()) };
        }
        for (prefix, server) in [("ALTER SERVER ROLE ", true), ("ALTER ROLE ", false)] {
            if let Some((role, rest)) = ident(prefix) {
                let rest = rest.trim_start();
                let (add, rest) = match (rest.strip_prefix("ADD MEMBER"), rest.strip_prefix("DROP MEMBER")) {
                    (Some(r), _) => (true, r),
                    (_, Some(r)) => (false, r),
                    _ => return Outcome::Error(102, "syntax".into()),
                };
                let Some((member, _)) = token(rest) else { return Outcome::Error(102, "syntax".into()) };
                if server {
                    let key = (role, member);
                    if add {
                        st.server_roles.insert(key)
                    } else {
                        st.server_roles.remove(&key)
                    };
                } else {
                    if !st.users.contains(&(db.clone(), member.clone())) {
                        return Outcome::Error(15151, format!("user {member} is not in {db}"));
                    }
                    let key = (db, role, member);
                    if add {
                        st.db_roles.insert(key)
                    } else {
                        st.db_roles.remove(&key)
                    };
                }
                return Outcome::Done(0);
            }
        }
        let lit = last_literal(s);
        let rows: Vec<String> = if s == "SELECT name FROM sys.sql_logins ORDER BY name" {
            st.logins.keys().cloned().collect()
        } else if s == "SELECT name FROM sys.databases" {
            st.databases.iter().cloned().collect()
        } else if s.starts_with("SELECT name FROM sys.sql_logins WHERE name = ") {
            lit.filter(|l| st.logins.contains_key(l)).into_iter().collect()
        } else if s.starts_with("SELECT name FROM sys.databases WHERE name = ") {
            lit.filter(|l| st.databases.contains(l)).into_iter().collect()
        } else if s.starts_with("SELECT name FROM sys.database_principals WHERE name = ") {
            lit.filter(|l| st.users.contains(&(db.clone(), l.clone()))).into_iter().collect()
        } else if s.starts_with("SELECT r.name FROM sys.database_role_members ") {
            let user = lit.unwrap_or_default();
            st.db_roles.iter().filter(|(d, _, u)| *d == db && *u == user).map(|(_, r, _)| r.clone()).collect()
        } else if s.starts_with("SELECT r.name FROM sys.server_role_members ") {
            let login = lit.unwrap_or_default();
            st.server_roles.iter().filter(|(_, l)| *l == login).map(|(r, _)| r.clone()).collect()
        } else {
            return Outcome::Error(102, format!("the test server does not understand: {s}"));
        };
        Outcome::Rows(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_outside_quotes() {
        assert_eq!(
            statements("USE [a;b]; CREATE LOGIN [x] WITH PASSWORD = N'p;''w'"),
            vec!["USE [a;b]", "CREATE LOGIN [x] WITH PASSWORD = N'p;''w'"]
        );
        assert_eq!(token("[we]]ird] rest").unwrap(), ("we]ird".to_string(), " rest"));
        assert_eq!(token("N'it''s'").unwrap().0, "it's");
    }
}
