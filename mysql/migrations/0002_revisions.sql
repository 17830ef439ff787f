-- Revisions of the change feeds (see instachat.Feeds). A chat's revision
-- counts the committed changes to its messages; each message keeps the
-- revision of its creation and of its latest change. An application's
-- revision counts the changes to its chats; each chat keeps the application
-- revision of its creation and of its latest change. Every write takes the
-- next revision in the transaction that stores it, under the row lock of
-- the feed's chat or application (see apply.go and store.go).
--
-- MySQL 8 has no ADD COLUMN IF NOT EXISTS, and a migration cut short runs
-- again from its first statement, so each change is made only if
-- information_schema does not show it made already. Processes of the
-- previous version cannot write once this ran (their rows would all take
-- revision 0, which the unique indexes refuse): stop them first.

SET @ddl = IF((SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'applications' AND column_name = 'revision') = 0,
	'ALTER TABLE applications ADD COLUMN revision BIGINT NOT NULL DEFAULT 0 AFTER chats_count', 'DO 0');
PREPARE ddl FROM @ddl;
EXECUTE ddl;
DEALLOCATE PREPARE ddl;

SET @ddl = IF((SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'chats' AND column_name = 'revision') = 0,
	'ALTER TABLE chats ADD COLUMN revision BIGINT NOT NULL DEFAULT 0 AFTER messages_count, ADD COLUMN app_revision BIGINT NOT NULL DEFAULT 0 AFTER revision, ADD COLUMN created_app_revision BIGINT NOT NULL DEFAULT 0 AFTER app_revision', 'DO 0');
PREPARE ddl FROM @ddl;
EXECUTE ddl;
DEALLOCATE PREPARE ddl;

SET @ddl = IF((SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'messages' AND column_name = 'revision') = 0,
	'ALTER TABLE messages ADD COLUMN revision BIGINT NOT NULL DEFAULT 0 AFTER body, ADD COLUMN created_revision BIGINT NOT NULL DEFAULT 0 AFTER revision', 'DO 0');
PREPARE ddl FROM @ddl;
EXECUTE ddl;
DEALLOCATE PREPARE ddl;

-- What is stored becomes the history of a feed that created it in number
-- order, one revision per row: a client reading a feed from 0 gets every
-- row once, as created, in its current state. Ranks rather than numbers,
-- because numbers may skip (a tail lost in a crash) and revisions may not.
-- Run again, each statement writes what it wrote the first time.
UPDATE messages m JOIN (SELECT id, ROW_NUMBER() OVER (PARTITION BY app_token, chat_number ORDER BY number) AS seq FROM messages) r ON r.id = m.id
SET m.revision = r.seq, m.created_revision = r.seq;

UPDATE chats c JOIN (SELECT id, ROW_NUMBER() OVER (PARTITION BY app_token ORDER BY number) AS seq FROM chats) r ON r.id = c.id
SET c.app_revision = r.seq, c.created_app_revision = r.seq;

UPDATE chats c SET c.revision = COALESCE((SELECT MAX(m.revision) FROM messages m WHERE m.app_token = c.app_token AND m.chat_number = c.number), 0);

UPDATE applications a SET a.revision = COALESCE((SELECT MAX(c.app_revision) FROM chats c WHERE c.app_token = a.token), 0);

-- A feed's page is a range of these: a keyset scan from the revision a
-- client resumes after; the current revision of a chat without a row (its
-- messages came first) is one seek to the end of its range. Unique,
-- because one revision is one change of one row.
SET @ddl = IF((SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'messages' AND index_name = 'app_token_chat_number_revision') = 0,
	'CREATE UNIQUE INDEX app_token_chat_number_revision ON messages (app_token, chat_number, revision)', 'DO 0');
PREPARE ddl FROM @ddl;
EXECUTE ddl;
DEALLOCATE PREPARE ddl;

SET @ddl = IF((SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'chats' AND index_name = 'app_token_app_revision') = 0,
	'CREATE UNIQUE INDEX app_token_app_revision ON chats (app_token, app_revision)', 'DO 0');
PREPARE ddl FROM @ddl;
EXECUTE ddl;
DEALLOCATE PREPARE ddl;
