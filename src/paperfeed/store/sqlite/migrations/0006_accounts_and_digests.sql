-- Accounts, their votes and collections, e-mail subscriptions and the digest-run ledger.
-- Deleting a user deletes everything that is theirs (ON DELETE CASCADE); papers are shared
-- and stay.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email         TEXT UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,          -- argon2id, encoded with its parameters
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

-- Server-side sessions: the cookie holds a random token, the table only its SHA-256.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);

-- Personal API tokens, hashed at rest like sessions; shown once when created.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Failed log-ins per key (a login name, an address): the rate limiter counts recent rows.
CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at  TEXT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);

CREATE TABLE votes (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    paper_pk   INTEGER NOT NULL REFERENCES papers (pk) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, paper_pk)
) WITHOUT ROWID;
CREATE INDEX votes_paper ON votes (paper_pk);

CREATE TABLE collections (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    is_public  INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE collection_items (
    collection_id INTEGER NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    paper_pk      INTEGER NOT NULL REFERENCES papers (pk) ON DELETE CASCADE,
    note          TEXT NOT NULL DEFAULT '',
    added_at      TEXT NOT NULL,
    PRIMARY KEY (collection_id, paper_pk)
) WITHOUT ROWID;

-- One subscription per address. user_id is NULL for the anonymous subscribe box.
CREATE TABLE subscriptions (
    id              INTEGER PRIMARY KEY,
    user_id         INTEGER REFERENCES users (id) ON DELETE CASCADE,
    email           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    frequency       TEXT NOT NULL CHECK (frequency IN ('daily', 'weekly')),
    contents        TEXT NOT NULL,        -- JSON: trending, for_you, searches, authors, categories
    max_items       INTEGER NOT NULL DEFAULT 10,
    created_at      TEXT NOT NULL,
    confirmed_at    TEXT,                 -- double opt-in: NULL until the link is followed
    unsubscribed_at TEXT
);
CREATE INDEX subscriptions_user ON subscriptions (user_id);

-- The ledger that makes every digest go out once per subscription and period: a row is
-- claimed before sending and marked sent right after the SMTP server accepts the message.
CREATE TABLE digest_runs (
    id              INTEGER PRIMARY KEY,
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    period          TEXT NOT NULL,        -- 2026-03-14 (daily) or 2026-W11 (weekly)
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at TEXT,
    message_id      TEXT NOT NULL,        -- the same on every attempt: a resend is recognizable
    items           INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    sent_at         TEXT,
    UNIQUE (subscription_id, period)
);
CREATE INDEX digest_runs_status ON digest_runs (status, next_attempt_at);
