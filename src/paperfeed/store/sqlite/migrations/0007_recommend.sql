-- The recommender: feedback, per-user models and their training queue, topics and the
-- papers' topic labels, and the 2-D map. Arrays are .npy bytes, metadata JSON.

-- +1 (liked / saved to the tag) or -1 (disliked / not interested) per user, tag and paper.
-- tag '' is the user's general taste ("for you").
CREATE TABLE feedback (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tag        TEXT NOT NULL DEFAULT '',
    paper_pk   INTEGER NOT NULL REFERENCES papers (pk) ON DELETE CASCADE,
    label      INTEGER NOT NULL CHECK (label IN (1, -1)),
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, tag, paper_pk)
) WITHOUT ROWID;
CREATE INDEX feedback_paper ON feedback (paper_pk);

-- The training queue: every feedback change bumps `version`; the trainer retrains the
-- tags whose `trained_version` is behind and records the version it trained on.
CREATE TABLE feedback_versions (
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tag             TEXT NOT NULL,
    version         INTEGER NOT NULL,
    trained_version INTEGER NOT NULL DEFAULT 0,
    changed_at      TEXT NOT NULL,
    PRIMARY KEY (user_id, tag)
) WITHOUT ROWID;

CREATE TABLE recommend_models (
    user_id          INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tag              TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('logistic', 'nearest')),
    encoder_model_id TEXT NOT NULL,
    weights          BLOB NOT NULL,       -- .npy bytes (float32 vector)
    bias             REAL NOT NULL,
    version          INTEGER NOT NULL,    -- the feedback version it was trained on
    trained_at       TEXT NOT NULL,
    metadata         TEXT NOT NULL,       -- JSON: positives, negatives, parameters, metrics
    PRIMARY KEY (user_id, tag)
) WITHOUT ROWID;

CREATE TABLE topics (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    grp         TEXT NOT NULL,           -- arxiv-cs | ml | user
    owner_id    INTEGER REFERENCES users (id) ON DELETE CASCADE,
    threshold   REAL,                    -- calibrated cosine threshold
    created_at  TEXT NOT NULL
);
CREATE INDEX topics_owner ON topics (owner_id);

CREATE TABLE paper_topics (
    paper_pk INTEGER NOT NULL REFERENCES papers (pk) ON DELETE CASCADE,
    topic_id INTEGER NOT NULL REFERENCES topics (id) ON DELETE CASCADE,
    score    REAL NOT NULL,
    PRIMARY KEY (paper_pk, topic_id)
) WITHOUT ROWID;
CREATE INDEX paper_topics_topic ON paper_topics (topic_id, score);

-- One map at a time: the keys and coordinates as .npy bytes, with the model and vector
-- generation they were computed from.
CREATE TABLE map_layout (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    keys       BLOB NOT NULL,
    xy         BLOB NOT NULL,
    metadata   TEXT NOT NULL,
    created_at TEXT NOT NULL
);
