-- Challenges: a goal over a window that members join (or are enrolled in
-- automatically), counted over purchases or events; the spec is kept as JSON.
CREATE TABLE challenges (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,
    -- What the write decides a step on (also in the spec).
    measure TEXT NOT NULL,
    target INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- A member taking part: joined, or completed (once; `rewarded` once
-- challenge_completed was posted to her). `progress` as of her last counted step.
CREATE TABLE challenge_members (
    challenge_id TEXT NOT NULL REFERENCES challenges (id),
    member_id TEXT NOT NULL REFERENCES members (id),
    status TEXT NOT NULL CHECK (status IN ('joined', 'completed')),
    progress INTEGER NOT NULL DEFAULT 0,
    joined_at INTEGER NOT NULL,
    completed_at INTEGER,
    rewarded SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (member_id, challenge_id)
);
-- What the scheduled run still has to post.
CREATE INDEX challenge_members_unrewarded ON challenge_members (completed_at)
    WHERE status = 'completed' AND rewarded = 0;

-- The purchases and events a member's progress counts (`source_id`: the transaction or
-- event); `undone` once the purchase was returned in full before completion.
CREATE TABLE challenge_steps (
    member_id TEXT NOT NULL,
    challenge_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    key TEXT NOT NULL,
    amount INTEGER NOT NULL,
    counted_at INTEGER NOT NULL,
    undone SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (member_id, challenge_id, source_id)
);
CREATE INDEX challenge_steps_by_source ON challenge_steps (source_id);

-- Badges stay on the member's profile: one per challenge completed (two challenges may
-- give a badge of the same code).
CREATE TABLE badges (
    member_id TEXT NOT NULL REFERENCES members (id),
    code TEXT NOT NULL,
    challenge_id TEXT NOT NULL,
    earned_at INTEGER NOT NULL,
    PRIMARY KEY (member_id, challenge_id)
);

INSERT INTO event_types (name, description, created_at) VALUES
    ('challenge_completed', 'Posted by Tally to a member who completes a challenge', 0)
    ON CONFLICT (name) DO NOTHING;
