-- Revisions of the change feeds (see instachat.Feeds). A chat's revision
-- counts the committed changes to its messages; each message keeps the
-- revision of its creation and of its latest change. An application's
-- revision counts the changes to its chats; each chat keeps the application
-- revision of its creation and of its latest change. Every write takes the
-- next revision in the transaction that stores it (see store.go).
--
-- Adding a column with a constant default rewrites nothing; the backfill
-- below does, once.

ALTER TABLE applications ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN app_revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN created_app_revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN created_revision INTEGER NOT NULL DEFAULT 0;

-- What is stored becomes the history of a feed that created it in number
-- order, one revision per row: a client reading a feed from 0 gets every
-- row once, as created, in its current state. Ranks rather than numbers,
-- because numbers may skip (a tail lost in a crash) and revisions may not.
UPDATE messages SET revision = r.rank, created_revision = r.rank
FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY app_token, chat_number ORDER BY number) AS rank FROM messages) AS r
WHERE messages.id = r.id;

UPDATE chats SET app_revision = r.rank, created_app_revision = r.rank
FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY app_token ORDER BY number) AS rank FROM chats) AS r
WHERE chats.id = r.id;

UPDATE chats SET revision = COALESCE((SELECT MAX(revision) FROM messages
	WHERE app_token = chats.app_token AND chat_number = chats.number), 0);

UPDATE applications SET revision = COALESCE((SELECT MAX(app_revision) FROM chats
	WHERE app_token = applications.token), 0);

-- A feed's page is a range of these: a keyset scan from the revision a
-- client resumes after, and the current revision of a chat without a row
-- (its messages came first) is one seek to the end of its range. Unique,
-- because one revision is one change of one row.
CREATE UNIQUE INDEX messages_app_token_chat_number_revision ON messages (app_token, chat_number, revision);
CREATE UNIQUE INDEX chats_app_token_app_revision ON chats (app_token, app_revision);
