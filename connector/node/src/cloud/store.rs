//! The cloud's SQLite store of users and meetings, under its data directory, so a restarted
//! cloud keeps them. Without a data directory it uses an in-memory database (same code).

use mc_core::cloud::management::{Meeting, Role, Store, StoreError, StoreStep, User, UserId};
use mc_wire::MeetingId;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

pub struct SqliteStore {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    key_sha256 TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meetings (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    host INTEGER REFERENCES users(id),
    created_at_ms INTEGER NOT NULL,
    ended TEXT,
    expected_participants INTEGER
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";
const SCHEMA_VERSION: &str = "2";
/// Brings a version 1 database (before meetings had a size hint) to version 2: its meetings
/// keep no hint.
const FROM_VERSION_1: &str = "
ALTER TABLE meetings ADD COLUMN expected_participants INTEGER;
UPDATE meta SET value = '2' WHERE key = 'schema';
";

fn opening(e: rusqlite::Error) -> StoreError {
    StoreStep::Opening.failed(e)
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/cloud.sqlite3`, or an in-memory database.
    pub fn open(dir: Option<&Path>) -> Result<SqliteStore, StoreError> {
        let conn = match dir {
            Some(d) => {
                std::fs::create_dir_all(d)
                    .map_err(|e| StoreStep::Opening.failed(format!("{}: {e}", d.display())))?;
                Connection::open(d.join("cloud.sqlite3"))
            }
            None => Connection::open_in_memory(),
        }
        .map_err(opening)?;
        // One connection, one writer: no lock contention, so SQLite's busy handler never sleeps.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(opening)?;
        conn.execute_batch(SCHEMA).map_err(opening)?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(opening)?;
        match version.as_deref() {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                    [SCHEMA_VERSION],
                )
                .map_err(opening)?;
            }
            Some(SCHEMA_VERSION) => {}
            Some("1") => conn
                .execute_batch(&format!("BEGIN; {FROM_VERSION_1} COMMIT;"))
                .map_err(opening)?,
            Some(v) => {
                return Err(StoreStep::Opening.failed(format!(
                    "the database has schema version {v}; this cloud understands {SCHEMA_VERSION}"
                )))
            }
        }
        Ok(SqliteStore { conn })
    }
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

impl Store for SqliteStore {
    fn save_user(&mut self, u: &User) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO users (id, email, display_name, role, key_sha256, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(id) DO UPDATE SET email = ?2, display_name = ?3, role = ?4, key_sha256 = ?5",
                params![u.id.0 as i64, u.email, u.display_name, role_str(u.role), u.key_sha256, u.created_at_ms as i64],
            )
            .map(|_| ())
            .map_err(|e| StoreStep::SavingUser.failed(e))
    }

    fn save_meeting(&mut self, m: &Meeting) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO meetings (id, topic, host, created_at_ms, ended, expected_participants) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(id) DO UPDATE SET topic = ?2, host = ?3, ended = ?5, expected_participants = ?6",
                params![m.id.0 as i64, m.topic, m.host.map(|h| h.0 as i64), m.created_at_ms as i64, m.ended, m.expected_participants],
            )
            .map(|_| ())
            .map_err(|e| StoreStep::SavingMeeting.failed(e))
    }

    fn load(&mut self) -> Result<(Vec<User>, Vec<Meeting>), StoreError> {
        let err = |e: rusqlite::Error| StoreStep::Loading.failed(e);
        let mut q = self.conn.prepare("SELECT id, email, display_name, role, key_sha256, created_at_ms FROM users ORDER BY id").map_err(err)?;
        let users = q
            .query_map([], |r| {
                let role: String = r.get(3)?;
                Ok(User {
                    id: UserId(r.get::<_, i64>(0)? as u64),
                    email: r.get(1)?,
                    display_name: r.get(2)?,
                    role: if role == "admin" {
                        Role::Admin
                    } else {
                        Role::Member
                    },
                    key_sha256: r.get(4)?,
                    created_at_ms: r.get::<_, i64>(5)? as u64,
                })
            })
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let mut q = self
            .conn
            .prepare("SELECT id, topic, host, created_at_ms, ended, expected_participants FROM meetings ORDER BY id")
            .map_err(err)?;
        let meetings = q
            .query_map([], |r| {
                Ok(Meeting {
                    id: MeetingId(r.get::<_, i64>(0)? as u64),
                    topic: r.get(1)?,
                    host: r.get::<_, Option<i64>>(2)?.map(|h| UserId(h as u64)),
                    created_at_ms: r.get::<_, i64>(3)? as u64,
                    ended: r.get(4)?,
                    expected_participants: r.get(5)?,
                })
            })
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        Ok((users, meetings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_saved_is_loaded_after_reopening() {
        let dir = std::env::temp_dir().join(format!(
            "mc-store-{}-{}",
            std::process::id(),
            mc_rt::fresh_seed()
        ));
        let user = User {
            id: UserId(1),
            email: "a@b.c".into(),
            display_name: "A".into(),
            role: Role::Admin,
            key_sha256: "00".into(),
            created_at_ms: 5,
        };
        let meeting = Meeting {
            id: MeetingId(3),
            topic: "t".into(),
            host: Some(UserId(1)),
            created_at_ms: 6,
            ended: None,
            expected_participants: Some(500),
        };
        {
            let mut s = SqliteStore::open(Some(&dir)).unwrap();
            s.save_user(&user).unwrap();
            s.save_meeting(&meeting).unwrap();
            s.save_meeting(&Meeting {
                ended: Some("done".into()),
                ..meeting.clone()
            })
            .unwrap();
        }
        let (users, meetings) = SqliteStore::open(Some(&dir)).unwrap().load().unwrap();
        assert_eq!(users, vec![user]);
        assert_eq!(
            meetings,
            vec![Meeting {
                ended: Some("done".into()),
                ..meeting
            }]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_version_1_database_is_upgraded_and_its_meetings_load_without_a_hint() {
        let dir = std::env::temp_dir().join(format!(
            "mc-store-v1-{}-{}",
            std::process::id(),
            mc_rt::fresh_seed()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        {
            // The schema as version 1 made it.
            let c = Connection::open(dir.join("cloud.sqlite3")).unwrap();
            c.execute_batch(
                "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL, role TEXT NOT NULL, key_sha256 TEXT NOT NULL, created_at_ms INTEGER NOT NULL);
                 CREATE TABLE meetings (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, host INTEGER REFERENCES users(id), created_at_ms INTEGER NOT NULL, ended TEXT);
                 CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO meta VALUES ('schema', '1');
                 INSERT INTO meetings VALUES (4, 'old', NULL, 7, NULL);",
            )
            .unwrap();
        }
        let mut s = SqliteStore::open(Some(&dir)).unwrap();
        let old = Meeting {
            id: MeetingId(4),
            topic: "old".into(),
            host: None,
            created_at_ms: 7,
            ended: None,
            expected_participants: None,
        };
        assert_eq!(s.load().unwrap().1, vec![old.clone()]);
        let hinted = Meeting {
            id: MeetingId(5),
            expected_participants: Some(300),
            ..old.clone()
        };
        s.save_meeting(&hinted).unwrap();
        drop(s);
        let (_, meetings) = SqliteStore::open(Some(&dir)).unwrap().load().unwrap();
        assert_eq!(meetings, vec![old, hinted]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
