-- Deletes (see instachat.Store.DeleteMessage, DeleteChat, DeleteApplication).
-- A deleted row stays as a tombstone with deleted_at set: a message keeps
-- its number and revisions with its body erased, so the number is never
-- issued again (the Redis recovery reads it back) and the chat feed can tell
-- a resuming client; a chat keeps its number and application revisions; an
-- application keeps its token. Every read skips tombstones, and whatever is
-- under a deleted chat or application (see liveChat, liveApp in store.go).
-- As in 0002, each column is added only if information_schema does not show
-- it; adding a NULL column is an instant change in MySQL 8 and MariaDB.

SET @ddl = IF((SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'applications' AND column_name = 'deleted_at') = 0,
	'ALTER TABLE applications ADD COLUMN deleted_at DATETIME(6) NULL', 'DO 0');
PREPARE ddl FROM @ddl;
EXECUTE ddl;
DEALLOCATE PREPARE ddl;

SET @ddl = IF((SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'chats' AND column_name = 'deleted_at') = 0,
	'ALTER TABLE chats ADD COLUMN deleted_at DATETIME(6) NULL', 'DO 0');
PREPARE ddl FROM @ddl;
EXECUTE ddl;
DEALLOCATE PREPARE ddl;

SET @ddl = IF((SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'messages' AND column_name = 'deleted_at') = 0,
	'ALTER TABLE messages ADD COLUMN deleted_at DATETIME(6) NULL', 'DO 0');
PREPARE ddl FROM @ddl;
EXECUTE ddl;
DEALLOCATE PREPARE ddl;

-- What a deleted chat (chat_number > 0) or application (chat_number = 0)
-- left to erase: written in the transaction of the deletion, deleted by
-- Reclaim once its rows are gone, so a crash in the middle of a large
-- delete resumes at the next start, in any worker.
CREATE TABLE IF NOT EXISTS reclaims (
	id          BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
	app_token   VARCHAR(32) NOT NULL,
	chat_number BIGINT      NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
